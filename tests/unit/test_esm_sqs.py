"""The SQS source's pure parts: Lambda's record of a message, and reading a ReportBatchItemFailures response."""

from __future__ import annotations

import pytest

from lambdad.errors import InvalidParameterValueException
from lambdad.esm.mappings import compile_filters
from lambdad.esm.sqs import batch_failures, sqs_record

ARN = "arn:aws:sqs:us-east-1:123456789012:orders"


def test_a_message_becomes_lambdas_record() -> None:
    message = {
        "MessageId": "m1", "ReceiptHandle": "rh", "Body": "hello", "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "MD5OfMessageAttributes": "abc",
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1", "SenderId": "AID",
                       "ApproximateFirstReceiveTimestamp": "2", "MessageGroupId": "g", "SequenceNumber": "7",
                       "MessageDeduplicationId": "d", "VisibilityTimeout": "30"},
        "MessageAttributes": {"s": {"DataType": "String", "StringValue": "v"},
                              "b": {"DataType": "Binary.gz", "BinaryValue": b"\x01"},
                              "n": {"DataType": "Number", "StringValue": "3"}},
    }
    record = sqs_record(message, ARN, "us-east-1")
    assert list(record) == ["messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                            "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion"]
    assert record["attributes"] == {"ApproximateReceiveCount": "1", "SentTimestamp": "1", "SenderId": "AID",
                                    "ApproximateFirstReceiveTimestamp": "2", "SequenceNumber": "7",
                                    "MessageGroupId": "g", "MessageDeduplicationId": "d"}
    assert record["messageAttributes"]["s"] == {"stringValue": "v", "stringListValues": [], "binaryListValues": [],
                                                "dataType": "String"}
    assert record["messageAttributes"]["b"] == {"binaryValue": "AQ==", "stringListValues": [],
                                                "binaryListValues": [], "dataType": "Binary.gz"}
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == ("aws:sqs", ARN, "us-east-1")
    plain = sqs_record({"MessageId": "m", "ReceiptHandle": "r", "Body": "", "MD5OfBody": "x"}, ARN, "us-east-1")
    assert "md5OfMessageAttributes" not in plain and plain["messageAttributes"] == {}


@pytest.mark.parametrize("payload, failed", [
    (b"", set()), (b"null", set()), (b"{}", set()), (b'{"batchItemFailures": null}', set()),
    (b'{"batchItemFailures": []}', set()), (b'{"batchItemFailures": [{"itemIdentifier": "a"}]}', {"a"}),
    (b"not json", None), (b'"text"', None), (b'{"batchItemFailures": [{"itemIdentifier": ""}]}', None),
    (b'{"batchItemFailures": [{"itemIdentifier": null}]}', None),
    (b'{"batchItemFailures": [{"id": "a"}]}', None), (b'{"batchItemFailures": [{"itemIdentifier": "zz"}]}', None),
    (b'{"batchItemFailures": "a"}', None),
])
def test_batch_item_failures(payload: bytes, failed: set[str] | None) -> None:
    assert batch_failures(payload, ["a", "b"]) == failed


def test_filters_are_compiled_for_the_mappings_source() -> None:
    arn = "arn:aws:sqs:us-east-1:000000000000:q"
    assert compile_filters(None, arn) is None and compile_filters({"Filters": []}, arn) is None
    matcher = compile_filters({"Filters": [{"Pattern": '{"body": {"a": [1]}}'}]}, arn)
    assert matcher is not None
    assert matcher({"body": '{"a": 1}'}) and not matcher({"body": '{"a": 2}'})
    with pytest.raises(InvalidParameterValueException, match="Invalid filter pattern definition"):
        compile_filters({"Filters": [{"Pattern": "{not json"}]}, arn)