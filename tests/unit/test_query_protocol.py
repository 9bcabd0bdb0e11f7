"""The query protocol's codec (api/query.py) against botocore's own serializer and parser, for every operation of
IAM and STS: what botocore sends is decoded to the parameters it was given, and what is encoded parses back to the
result it was made from."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs

import botocore.session
import pytest
import regex
from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from lambdad.api.query import QueryValidationError, decode, encode, encode_error

SESSION = botocore.session.get_session()
MODELS = {name: SESSION.get_service_model(name) for name in ("iam", "sts")}
WHEN = dt.datetime(2026, 12, 5, 16, 40, 1, tzinfo=dt.timezone.utc)


def example(shape: Shape, depth: int = 0) -> Any:
    """A value of ``shape`` that meets its constraints (two members for lists and maps)."""
    if isinstance(shape, StructureShape):
        return {name: example(member, depth + 1) for name, member in shape.members.items() if depth < 4}
    if isinstance(shape, ListShape):
        return [example(shape.member, depth + 1) for _ in range(2)]
    if isinstance(shape, MapShape):
        return {f"k{i}": example(shape.value, depth + 1) for i in range(2)}
    kind = shape.type_name
    if kind in ("integer", "long"):
        return max(int(shape.metadata.get("min", 1)), 1)
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return WHEN
    if kind == "blob":
        return b"\x00blob"
    if kind in ("float", "double"):
        return 1.5
    if shape.metadata.get("enum"):
        return shape.metadata["enum"][0]
    low, high = int(shape.metadata.get("min", 1)), int(shape.metadata.get("max", 10_000))
    pattern = shape.metadata.get("pattern")
    for candidate in ("a" * max(low, 1), "1" * max(low, 12), "/", "/a/", "https://a", "arn:aws:iam::123456789012:a",
                      "a" * max(low, 20), "A" * max(low, 16), "a@b.c", "v1", "123456", "o-aaaaaaaaaa/r-aaaa",
                      "o-aaaaaaaaaa", "p-aaaaaaaa"):
        if low <= len(candidate) <= high and (pattern is None or regex.fullmatch(pattern, candidate, regex.DOTALL)):
            return candidate
    raise AssertionError(f"no example string for {shape.name} ({pattern})")


def operations() -> list[tuple[str, str]]:
    return [(service, op) for service, model in MODELS.items() for op in model.operation_names]


@pytest.mark.parametrize(("service", "operation"), operations())
def test_what_botocore_sends_is_decoded_to_its_parameters(service: str, operation: str) -> None:
    op = MODELS[service].operation_model(operation)
    params = example(op.input_shape) if op.input_shape is not None else {}
    request = create_serializer("query").serialize_to_request(params, op)
    form = parse_qs(request["body"] if isinstance(request["body"], str) else
                    "&".join(f"{k}={v}" for k, v in request["body"].items()), keep_blank_values=True)
    if isinstance(request["body"], dict):
        form = {k: [str(v)] for k, v in request["body"].items()}
    assert decode(op, form) == params


@pytest.mark.parametrize(("service", "operation"), operations())
def test_what_is_encoded_parses_back_with_botocore(service: str, operation: str) -> None:
    op = MODELS[service].operation_model(operation)
    result = example(op.output_shape) if op.output_shape is not None else {}
    body = encode(op, result, "rid-1")
    parsed = create_parser("query").parse({"body": body, "headers": {}, "status_code": 200}, op.output_shape)
    assert parsed.pop("ResponseMetadata")["RequestId"] == "rid-1"
    assert parsed == result


def test_an_error_parses_as_botocore_reads_it() -> None:
    op = MODELS["iam"].operation_model("GetUser")
    body = encode_error("NoSuchEntity", "The user with name bob cannot be found.", 404, "rid-2",
                        xmlns="https://iam.amazonaws.com/doc/2010-05-08/")
    parsed = create_parser("query").parse({"body": body, "headers": {}, "status_code": 404}, op.output_shape)
    assert parsed["Error"] == {"Code": "NoSuchEntity", "Message": "The user with name bob cannot be found.",
                               "Type": "Sender"}
    assert parsed["ResponseMetadata"]["RequestId"] == "rid-2"


def test_violations_are_reported_at_once_in_aws_words() -> None:
    op = MODELS["iam"].operation_model("CreateUser")
    with pytest.raises(QueryValidationError) as caught:
        decode(op, {"Path": ["no-slashes"], "UserName": ["x" * 65]})
    message = caught.value.message
    assert message.startswith("2 validation errors detected: ")
    assert "Value at 'userName' failed to satisfy constraint: Member must have length less than or equal to 64" \
        in message
    assert "Value 'no-slashes' at 'path' failed to satisfy constraint: Member must satisfy regular expression " \
        "pattern" in message
    with pytest.raises(QueryValidationError) as caught:
        decode(op, {})
    assert caught.value.message == ("1 validation error detected: Value null at 'userName' failed to satisfy "
                                    "constraint: Member must not be null")
    with pytest.raises(QueryValidationError) as caught:
        decode(MODELS["iam"].operation_model("ListUsers"), {"MaxItems": ["many"]})
    assert "Value 'many' at 'maxItems'" in caught.value.message
