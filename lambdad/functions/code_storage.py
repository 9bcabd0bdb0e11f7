"""Code storage: a function's .zip checked, stored as a blob and unpacked into its tree, once per code hash.

``CodeStorage.store`` refuses a package that is not a .zip upload or too big (alone, or unzipped with the
function's layers: Lambda's 250 MB), stores it in the blob store and unpacks it (``functions/code.py``
``CodeTrees``) under the blob store's guard, so the code collector never deletes code being stored.
``ensure_tree`` unpacks code uploaded on another node of a cluster the first time this node runs it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdad.errors import InvalidParameterValueException
from lambdad.functions.code import MAX_UNZIPPED_BYTES, CodeTrees, check_zip, unzipped_size
from lambdad.functions.commands import CodeSource
from lambdad.functions.model import FunctionConfig
from lambdad.store.interfaces import BlobStore

if TYPE_CHECKING:
    from lambdad.functions.layers import LayerService

__all__ = ["CodeStorage", "zip_of"]


class CodeStorage:
    def __init__(self, blobs: BlobStore, trees: CodeTrees, layers: LayerService | None) -> None:
        self._blobs = blobs
        self._trees = trees
        self._layers = layers

    def blob_path(self, code_hash: str) -> Path:
        return self._blobs.path(code_hash)

    def tree(self, config: FunctionConfig) -> str:
        return str(self._trees.path(config.code_hash))

    async def unzipped_size(self, code_hash: str) -> int:
        return await asyncio.to_thread(lambda: unzipped_size(self._blobs.path(code_hash)))

    async def ensure_opt_tree(self, layer_hashes: tuple[str, ...]) -> None:
        if self._layers is not None:
            await self._layers.ensure_opt_tree(layer_hashes)

    async def ensure_tree(self, config: FunctionConfig) -> None:
        """Unpack ``config``'s code here if it is not yet (in a cluster, code uploaded on another node is unpacked
        by the first node to run it; its zip comes from the shared blob store)."""
        if not self._trees.path(config.code_hash).is_dir():
            code_hash = config.code_hash
            await asyncio.to_thread(lambda: self._trees.ensure(code_hash, self._blobs.get(code_hash)))
        await self.ensure_opt_tree(config.layer_hashes)

    def check_total_size(self, code_size: int, layers: tuple[str, ...]) -> None:
        """Code and layers together, unzipped, must fit Lambda's 250 MB (deleted layer versions still count)."""
        if not layers or self._layers is None:
            return
        total = code_size + sum(self._layers.for_function(arn, include_deleted=True).unzipped_size for arn in layers)
        if total > MAX_UNZIPPED_BYTES:
            raise InvalidParameterValueException(
                f"Function code combined with layers exceeds the maximum allowed size of {MAX_UNZIPPED_BYTES} "
                f"bytes. The actual size is {total} bytes."
            )

    async def store(self, data: bytes, operation: str, layers: tuple[str, ...] = ()) -> dict[str, Any]:
        """Check, store and unpack a code zip; with ``layers``, the function's, refuse code too big with them."""
        self.check_total_size(await asyncio.to_thread(check_zip, data, operation), layers)
        code_hash = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())  # 50 MB: ~40 ms, off the loop
        async with self._blobs.guard:  # not while the collector deletes (it could be deleting this very code)
            existed = await asyncio.to_thread(self._blobs.exists, code_hash)
            await asyncio.to_thread(self._blobs.put, data, code_hash)
            try:
                await asyncio.to_thread(self._trees.ensure, code_hash, data)
            except BaseException:
                if not existed:  # refused after all: no blob is left behind for it
                    await asyncio.to_thread(self._blobs.delete, code_hash)
                raise
        return {
            "code_hash": code_hash,
            "code_sha256": base64.b64encode(bytes.fromhex(code_hash)).decode(),
            "code_size": len(data),
        }


def zip_of(code: CodeSource) -> bytes:
    """Code must come as a .zip upload (CreateFunction's Code.ZipFile, or UpdateFunctionCode's ZipFile): its bytes."""
    if code.image_uri:
        raise InvalidParameterValueException("lambdad runs .zip file archives only; container images are not supported.")
    if code.from_s3:
        raise InvalidParameterValueException(
            "lambdad cannot fetch code from S3 yet; upload the .zip file directly with ZipFile."
        )
    if code.zip_file is None:
        raise InvalidParameterValueException("Please provide a source for function code.")
    return code.zip_file
