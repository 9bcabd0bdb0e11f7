"""Reserved concurrency and the account's concurrency figures, with Lambda's rules.

- A reservation of N for a function caps its concurrent executions (all its versions and aliases together) at N
  and sets N aside from the account's pool; 0 throttles every invocation of it.
- The sum of reservations must leave ``unreserved_minimum`` of the account limit to the functions without one.
  Lambda's minimum is 100 of a default limit of 1000; lambdad scales it with the limit setting:
  ``max(1, min(100, limit // 10))`` (100 at the default, 1 for a limit below 20), so a small test server can
  still reserve.
- Reservations are written to the store before the call returns and live in memory for the invoke path
  (``reserved(name)``, ``reserved_total``); deleting the function deletes its reservation.

The environment pool enforces them (see ``sandbox/pool.py``); this module only decides and records them.
"""

from __future__ import annotations

from lambdad.errors import InvalidParameterValueException
from lambdad.functions.service import FunctionService
from lambdad.store.interfaces import ConcurrencyStore

__all__ = ["ConcurrencyService", "unreserved_minimum"]

# Lambda's documented quotas (bytes): 75 GB of code per region, 250 MB unzipped, 50 MB zipped upload.
TOTAL_CODE_SIZE_LIMIT = 80530636800
CODE_SIZE_UNZIPPED_LIMIT = 262144000
CODE_SIZE_ZIPPED_LIMIT = 52428800


def unreserved_minimum(account_limit: int) -> int:
    """How much of ``account_limit`` reservations must leave unreserved (Lambda: 100 of 1000)."""
    return max(1, min(100, account_limit // 10))


class ConcurrencyService:
    def __init__(self, functions: FunctionService, store: ConcurrencyStore, account_limit: int) -> None:
        self._functions = functions
        self._store = store
        self.account_limit = account_limit
        self._reserved: dict[str, int] = {}
        functions.on_change(self._function_changed)

    async def load(self) -> None:
        self._reserved = await self._store.load_reserved_concurrency()

    async def _function_changed(self, name: str, version: str | None) -> None:
        if version is None:  # the function is gone (the store dropped its row with it)
            self._reserved.pop(name, None)

    # -- reads (hot path: memory only) -----------------------------------------------------------------------

    def reserved(self, name: str) -> int | None:
        return self._reserved.get(name)

    @property
    def reserved_total(self) -> int:
        return sum(self._reserved.values())

    @property
    def unreserved(self) -> int:
        """What the functions without a reservation share (GetAccountSettings' UnreservedConcurrentExecutions)."""
        return self.account_limit - self.reserved_total

    def account_settings(self) -> dict[str, dict[str, int]]:
        """GetAccountSettings: Lambda's code-size quotas, this server's concurrency, and real usage. Like Lambda,
        TotalCodeSize counts the zip of $LATEST and of every published version."""
        functions = self._functions.all()
        return {
            "AccountLimit": {
                "TotalCodeSize": TOTAL_CODE_SIZE_LIMIT,
                "CodeSizeUnzipped": CODE_SIZE_UNZIPPED_LIMIT,
                "CodeSizeZipped": CODE_SIZE_ZIPPED_LIMIT,
                "ConcurrentExecutions": self.account_limit,
                "UnreservedConcurrentExecutions": self.unreserved,
            },
            "AccountUsage": {
                "TotalCodeSize": sum(c.code_size for f in functions for c in f.sorted_versions()),
                "FunctionCount": len(functions),
            },
        }

    def get(self, name: str) -> int | None:
        self._functions.function(name)
        return self._reserved.get(name)

    # -- writes ----------------------------------------------------------------------------------------------

    async def put(self, name: str, reserved: int) -> int:
        minimum = unreserved_minimum(self.account_limit)
        async with self._functions.lock(name):
            self._functions.function(name)
            others = self.reserved_total - self._reserved.get(name, 0)
            too_much = InvalidParameterValueException(
                "Specified ReservedConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{minimum}].")
            if self.account_limit - others - reserved < minimum:
                raise too_much
            # the store decides again over every reservation (another node may have reserved meanwhile)
            if not await self._store.put_reserved_concurrency(name, reserved, self.account_limit - minimum):
                await self.load()
                raise too_much
            self._reserved[name] = reserved
        return reserved

    async def delete(self, name: str) -> None:
        async with self._functions.lock(name):
            self._functions.function(name)
            await self._store.delete_reserved_concurrency(name)
            self._reserved.pop(name, None)
