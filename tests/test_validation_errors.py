"""AWS's validation messages through the in-process app (tests/inprocess.py): one place words them
(``errors.validation_error``), as Lambda does — ``N validation error(s) detected: Value '<v>' at '<path>' failed to
satisfy constraint: <constraint>`` joined with ``; ``, HTTP 400, ValidationException."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.server import ROLE, make_zip


def refused(call, **params) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as e:
        call(**params)
    err = e.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def test_one_violation(inproc):
    lam = inproc.client()
    assert refused(lam.list_functions, FunctionVersion="SOME") == (
        "ValidationException", 400,
        "1 validation error detected: Value 'SOME' at 'functionVersion' failed to satisfy constraint: "
        "Member must satisfy enum value set: [ALL]")
    code, status, message = refused(lam.get_function, FunctionName="a" * 65)
    assert (code, status) == ("ValidationException", 400)
    assert message == (f"1 validation error detected: Value '{'a' * 65}' at 'functionName' failed to satisfy "
                       "constraint: Member must have length less than or equal to 64")


def test_several_violations_are_counted_and_joined(inproc):
    lam = inproc.client(parameter_validation=False)
    code, status, message = refused(
        lam.create_function, FunctionName="v", Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return 1\n"})}, MemorySize=64, Timeout=0)
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith("2 validation errors detected: ")
    violations = message.removeprefix("2 validation errors detected: ").split("; ")
    assert violations == [  # in the order of the operation's members in the model
        "Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1",
        "Value '64' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128",
    ]
