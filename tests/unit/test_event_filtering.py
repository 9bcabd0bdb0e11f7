"""Event filtering of event source mappings (lambdad/esm/filtering.py): every example of AWS's pages "Control which
events Lambda sends to your function" (the filter rule syntax table and its notes), "Using event filtering with an
Amazon SQS event source", "... with a Kinesis event source", "... with a DynamoDB event source" and "Filter events
from an Amazon MQ event source", as (pattern, record, expected); the SQS body format table; patterns Lambda refuses.

Speed (2-core dev machine, load average ~3, Python 3.11; one compile, then 20,000 matches; timeit, not asserted):
    SQS, JSON body, two fields (RequestCode, numeric RecordNumber)   ~3 us per record (json.loads is half of it)
    SQS, plain body, prefix                                           ~1.7 us
    SQS, metadata only (awsRegion prefix; the body is not parsed)     ~1.5 us
    Kinesis, base64 JSON data, nested field                           ~4 us
    DynamoDB, NewImage attribute                                      ~2 us
"""

from __future__ import annotations

import base64
import json
import timeit
from typing import Any

import pytest

from lambdad.esm.filtering import InvalidFilterCriteria, compile_filter_criteria


def criteria(*patterns: Any) -> dict[str, Any]:
    return {"Filters": [{"Pattern": p if isinstance(p, str) else json.dumps(p)} for p in patterns]}


def sqs(body: str, **extra: Any) -> dict[str, Any]:
    return {
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183",
                       "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1545082649185"},
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:my-queue",
        "awsRegion": "us-east-2",
        **extra,
    }


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kinesis(data: str, partition_key: str = "1") -> dict[str, Any]:
    return {
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": partition_key,
                    "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                    "data": b64(data), "approximateArrivalTimestamp": 1545084650.987},
        "eventSource": "aws:kinesis", "eventVersion": "1.0",
        "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
        "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
        "awsRegion": "us-east-2", "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream",
    }


def ddb(new_image: dict[str, Any], old_image: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventID": "1", "eventVersion": "1.0", "eventName": "MODIFY",
        "dynamodb": {"ApproximateCreationDateTime": "1678831218.0",
                     "Keys": {"CustomerName": {"S": "AnyCompany Industries"}},
                     "NewImage": new_image, "SequenceNumber": "111", "SizeBytes": 26,
                     "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }
    if old_image is not None:
        record["dynamodb"]["OldImage"] = old_image
    record.update(extra)
    return record


def rmq(data: str) -> dict[str, Any]:
    return {"basicProperties": {"contentType": "text/plain", "deliveryMode": 1, "priority": 34,
                                "headers": {"header1": {"bytes": [118, 97, 108, 117, 101, 49]}, "numberInHeader": 10},
                                "timestamp": "Jan 1, 1970, 12:33:41 AM", "bodySize": 80},
            "redelivered": False, "data": b64(data)}


# --- "Filter rule syntax": each row of the table, on an SQS JSON body ---------------------------------------------

RULES = [
    # Null
    ({"UserID": [None]}, {"UserID": None}, True),
    ({"UserID": [None]}, {"UserID": "u1"}, False),
    ({"UserID": [None]}, {}, False),
    # Empty
    ({"LastName": [""]}, {"LastName": ""}, True),
    ({"LastName": [""]}, {"LastName": "Doe"}, False),
    # Equals
    ({"Name": ["Alice"]}, {"Name": "Alice"}, True),
    ({"Name": ["Alice"]}, {"Name": "alice"}, False),
    # Equals (ignore case)
    ({"Name": [{"equals-ignore-case": "alice"}]}, {"Name": "ALICE"}, True),
    ({"Name": [{"equals-ignore-case": "alice"}]}, {"Name": "Alicia"}, False),
    # And
    ({"Location": ["New York"], "Day": ["Monday"]}, {"Location": "New York", "Day": "Monday"}, True),
    ({"Location": ["New York"], "Day": ["Monday"]}, {"Location": "New York", "Day": "Tuesday"}, False),
    # Or
    ({"PaymentType": ["Credit", "Debit"]}, {"PaymentType": "Debit"}, True),
    ({"PaymentType": ["Credit", "Debit"]}, {"PaymentType": "Cash"}, False),
    # Or (multiple fields)
    ({"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]}, {"Location": "Boston", "Day": "Monday"}, True),
    ({"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]}, {"Location": "New York", "Day": "Friday"}, True),
    ({"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]}, {"Location": "Boston", "Day": "Friday"}, False),
    # Not
    ({"Weather": [{"anything-but": ["Raining"]}]}, {"Weather": "Sunny"}, True),
    ({"Weather": [{"anything-but": ["Raining"]}]}, {"Weather": "Raining"}, False),
    ({"Weather": [{"anything-but": ["Raining"]}]}, {}, False),
    ({"Weather": [{"anything-but": "Raining"}]}, {"Weather": "Snow"}, True),
    ({"Code": [{"anything-but": [1, 2]}]}, {"Code": 3}, True),
    ({"Code": [{"anything-but": [1, 2]}]}, {"Code": 2}, False),
    # Numeric (equals)
    ({"Price": [{"numeric": ["=", 100]}]}, {"Price": 100}, True),
    ({"Price": [{"numeric": ["=", 100]}]}, {"Price": 100.0}, True),
    ({"Price": [{"numeric": ["=", 100]}]}, {"Price": "100"}, False),
    # Numeric (range)
    ({"Price": [{"numeric": [">", 10, "<=", 20]}]}, {"Price": 20}, True),
    ({"Price": [{"numeric": [">", 10, "<=", 20]}]}, {"Price": 10}, False),
    ({"Price": [{"numeric": [">", 10, "<=", 20]}]}, {"Price": 20.5}, False),
    ({"Price": [{"numeric": ["<", 0]}]}, {"Price": -1}, True),
    ({"Price": [{"numeric": [">=", 1.5]}]}, {"Price": 1.5}, True),
    # Exists / Does not exist
    ({"ProductName": [{"exists": True}]}, {"ProductName": "Widget"}, True),
    ({"ProductName": [{"exists": True}]}, {"Other": 1}, False),
    ({"ProductName": [{"exists": False}]}, {"Other": 1}, True),
    ({"ProductName": [{"exists": False}]}, {"ProductName": "Widget"}, False),
    # Begins with / Ends with
    ({"Region": [{"prefix": "us-"}]}, {"Region": "us-east-2"}, True),
    ({"Region": [{"prefix": "us-"}]}, {"Region": "eu-west-1"}, False),
    ({"FileName": [{"suffix": ".png"}]}, {"FileName": "cat.png"}, True),
    ({"FileName": [{"suffix": ".png"}]}, {"FileName": "cat.jpg"}, False),
    # "300, 300.0, and 3.0e2 are not considered equal"
    ({"n": [300]}, {"n": 300}, True),
    ({"n": [300]}, {"n": 300.0}, False),
    ({"n": [300.0]}, {"n": 3.0e2}, True),  # both serialised by json.dumps as 300.0
    ("{\"n\": [300.0]}", "{\"n\": 3.0e2}", False),
    ("{\"n\": [3.0e2]}", "{\"n\": 3.0e2}", True),
    # booleans are not numbers
    ({"flag": [True]}, {"flag": True}, True),
    ({"flag": [True]}, {"flag": 1}, False),
    # "the Exists operator only works on leaf nodes"
    ({"person": {"address": [{"exists": True}]}},
     {"person": {"name": "John Doe", "age": 30,
                 "address": {"street": "123 Main St", "city": "Anytown", "country": "USA"}}}, False),
    ({"person": {"address": {"city": [{"exists": True}]}}},
     {"person": {"address": {"street": "123 Main St", "city": "Anytown"}}}, True),
    # arrays: a rule list matches any element; a nested pattern matches within one element
    ({"tags": ["red"]}, {"tags": ["blue", "red"]}, True),
    ({"tags": ["red"]}, {"tags": []}, False),
    ({"tags": [{"exists": False}]}, {"tags": []}, True),
    ({"items": {"sku": ["A"], "qty": [2]}}, {"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]}, False),
    ({"items": {"sku": ["A"], "qty": [2]}}, {"items": [{"sku": "B", "qty": 1}, {"sku": "A", "qty": 2}]}, True),
    # nested objects, missing intermediate objects
    ({"a": {"b": {"c": ["x"]}}}, {"a": {"b": {"c": "x"}}}, True),
    ({"a": {"b": {"c": ["x"]}}}, {"a": {}}, False),
    ({"a": {"b": [{"exists": False}]}}, {"z": 1}, True),
]


@pytest.mark.parametrize(("body_pattern", "body", "expected"), RULES)
def test_filter_rule_syntax(body_pattern: Any, body: Any, expected: bool) -> None:
    if isinstance(body_pattern, str):
        pattern = '{"body": ' + body_pattern + "}"
    else:
        pattern = json.dumps({"body": body_pattern})
    text = body if isinstance(body, str) else json.dumps(body)
    assert compile_filter_criteria(criteria(pattern), "sqs")(sqs(text)) is expected


# --- per source --------------------------------------------------------------------------------------------------

SQS_JSON_BODY = '{\n "RecordNumber": 1234,\n "TimeStamp": "yyyy-mm-ddThh:mm:ss",\n "RequestCode": "AAAA"\n}'

SOURCES = [
    # the SQS page
    ("sqs", {"body": {"RequestCode": ["BBBB"]}}, sqs(SQS_JSON_BODY), False),
    ("sqs", {"body": {"RequestCode": ["BBBB"]}}, sqs(SQS_JSON_BODY.replace("AAAA", "BBBB")), True),
    ("sqs", {"body": {"RecordNumber": [{"numeric": [">", 9999]}]}}, sqs(SQS_JSON_BODY), False),
    ("sqs", {"body": {"RecordNumber": [{"numeric": [">", 9999]}]}}, sqs(SQS_JSON_BODY.replace("1234", "12345")), True),
    # the SQS body format table
    ("sqs", {"body": [{"prefix": "Hello"}]}, sqs("Hello, world"), True),                   # plain / plain
    ("sqs", {"body": ["Hello, world"]}, sqs("Hello, world"), True),
    ("sqs", {"awsRegion": ["us-east-2"]}, sqs("Hello, world"), True),                       # plain / no data pattern
    ("sqs", {"body": {"RequestCode": ["AAAA"]}}, sqs("RequestCode AAAA"), False),            # plain / JSON: dropped
    ("sqs", {"body": {"RequestCode": [{"exists": False}]}}, sqs("plain"), False),
    ("sqs", {"body": [{"prefix": "{"}]}, sqs(SQS_JSON_BODY), False),                         # JSON / plain: dropped
    ("sqs", {"body": [{"exists": False}]}, sqs(SQS_JSON_BODY), False),
    ("sqs", {"awsRegion": ["us-east-2"]}, sqs(SQS_JSON_BODY), True),                        # JSON / no data pattern
    ("sqs", {"awsRegion": ["eu-west-1"]}, sqs(SQS_JSON_BODY), False),
    ("sqs", {"body": {"RequestCode": ["AAAA"]}, "awsRegion": ["us-east-2"]}, sqs(SQS_JSON_BODY), True),
    ("sqs", {"body": ["123"]}, sqs("123"), True),  # a JSON scalar is a plain string here
    # the main page's metadata and data properties (an SQS record with a JSON body)
    ("sqs", {"body": {"City": ["Seattle"], "Temperature": ["46"]}},
     sqs('{\n "City": "Seattle",\n "State": "WA",\n "Temperature": "46"\n}'), True),
    # the Kinesis page, and the main page's example with partitionKey (a metadata property)
    ("kinesis", {"data": {"order": {"type": ["buy"]}}},
     kinesis('{"record": 12345, "order": {"type": "buy", "stock": "ANYCO", "quantity": 1000}}'), True),
    ("kinesis", {"data": {"order": {"type": ["buy"]}}},
     kinesis('{"record": 12345, "order": {"type": "sell", "stock": "ANYCO", "quantity": 1000}}'), False),
    ("kinesis", {"partitionKey": ["1"], "data": {"Location": ["Los Angeles"]}},
     kinesis('{"Location": "Los Angeles"}'), True),
    ("kinesis", {"partitionKey": ["1"], "data": {"Location": ["Los Angeles"]}},
     kinesis('{"Location": "Los Angeles"}', partition_key="2"), False),
    ("kinesis", {"data": {"Temperature": [{"numeric": [">", 50, "<=", 60]}]}}, kinesis('{"Temperature": 55}'), True),
    ("kinesis", {"data": {"Temperature": [{"numeric": [">", 50, "<=", 60]}]}}, kinesis('{"Temperature": 61}'), False),
    ("kinesis", {"data": {"Temperature": [{"exists": False}]}}, kinesis("not json"), False),  # non-JSON data: dropped
    ("kinesis", {"partitionKey": ["1"]}, kinesis("not json"), True),
    ("kinesis", {"eventName": ["aws:kinesis:record"]}, kinesis("{}"), True),
    ("kinesis", {"kinesis": {"partitionKey": ["1"]}}, kinesis("{}"), True),
    # the DynamoDB page
    ("dynamodb", {"dynamodb": {"Keys": {"CustomerName": {"S": ["AnyCompany Industries"]}}}},
     ddb({"AccountManager": {"S": "Pat Candella"}}), True),
    ("dynamodb", {"dynamodb": {"Keys": {"CustomerName": {"S": ["Example Corp"]}}}},
     ddb({"AccountManager": {"S": "Pat Candella"}}), False),
    ("dynamodb", {"dynamodb": {"NewImage": {"AccountManager": {"S": ["Pat Candella", "Shirley Rodriguez"]}}}},
     ddb({"AccountManager": {"S": "Shirley Rodriguez"}}), True),
    ("dynamodb", {"dynamodb": {"NewImage": {"AccountManager": {"S": ["Pat Candella", "Shirley Rodriguez"]}}}},
     ddb({"AccountManager": {"S": "Terry Whitlock"}}), False),
    # "Filtering with Boolean expressions": the page repeats the key "dynamodb"; the two objects are ANDed
    ("dynamodb", '{ "dynamodb" : { "NewImage" : { "AccountManager" : { "S" : [ "Pat Candella" ] } } } , '
                 '"dynamodb" : { "OldImage" : { "AccountManager" : { "S" : [ "Terry Whitlock" ] } } } }',
     ddb({"AccountManager": {"S": "Pat Candella"}}, {"AccountManager": {"S": "Terry Whitlock"}}), True),
    ("dynamodb", '{ "dynamodb" : { "NewImage" : { "AccountManager" : { "S" : [ "Pat Candella" ] } } } , '
                 '"dynamodb" : { "OldImage" : { "AccountManager" : { "S" : [ "Terry Whitlock" ] } } } }',
     ddb({"AccountManager": {"S": "Pat Candella"}}, {"AccountManager": {"S": "Shirley Rodriguez"}}), False),
    # "Using the Exists operator"
    ("dynamodb", {"dynamodb": {"NewImage": {"Organizations": [{"exists": True}]}}},
     ddb({"UserID": {"S": "12345"}, "Name": {"S": "John Doe"},
          "Organizations": {"L": [{"S": "Sales"}, {"S": "Marketing"}, {"S": "Support"}]}}), False),
    ("dynamodb", {"dynamodb": {"NewImage": {"Organizations": {"L": {"S": [{"exists": True}]}}}}},
     ddb({"UserID": {"S": "12345"}, "Name": {"S": "John Doe"},
          "Organizations": {"L": [{"S": "Sales"}, {"S": "Marketing"}, {"S": "Support"}]}}), True),
    # the main page's multi-level example (sort key Number is 4567)
    ("dynamodb", {"dynamodb": {"Keys": {"Number": {"N": ["4567"]}}}},
     {"dynamodb": {"Keys": {"ID": {"S": "ABCD"}, "Number": {"N": "1234"}}}}, False),
    ("dynamodb", {"dynamodb": {"Keys": {"Number": {"N": ["4567"]}}}},
     {"dynamodb": {"Keys": {"ID": {"S": "ABCD"}, "Number": {"N": "4567"}}}}, True),
    # "DynamoDB event filtering doesn't support the use of numeric operators": N values are strings
    ("dynamodb", {"dynamodb": {"Keys": {"Number": {"N": [{"numeric": ["=", 4567]}]}}}},
     {"dynamodb": {"Keys": {"Number": {"N": "4567"}}}}, False),
    ("dynamodb", {"eventName": ["INSERT"]}, ddb({}, eventName="INSERT"), True),
    # the Amazon MQ page, with a RabbitMQ record
    ("rmq", {"data": {"timeout": [{"numeric": [">", 0]}]}}, rmq('{"timeout": 5, "IPAddress": "203.0.113.254"}'), True),
    ("rmq", {"data": {"timeout": [{"numeric": [">", 0]}]}}, rmq('{"timeout": 0, "IPAddress": "203.0.113.254"}'), False),
    ("rmq", {"data": [{"prefix": "Result: "}]}, rmq("Result: 42"), True),
    ("rmq", {"data": [{"prefix": "Result: "}]}, rmq("Error: 42"), False),
    ("rmq", {"data": [{"prefix": "Result: "}]}, rmq('{"Result": 42}'), False),
    ("rmq", {"data": {"timeout": [{"exists": True}]}}, rmq("timeout"), False),
    ("rmq", {"redelivered": [False]}, rmq("anything"), True),
]


@pytest.mark.parametrize(("source", "pattern", "record", "expected"), SOURCES)
def test_sources(source: str, pattern: Any, record: dict[str, Any], expected: bool) -> None:
    assert compile_filter_criteria(criteria(pattern), source)(record) is expected


def test_filters_are_ored() -> None:
    match = compile_filter_criteria(criteria({"body": {"a": [1]}}, {"body": {"b": [2]}}), "sqs")
    assert match(sqs('{"a": 1}')) and match(sqs('{"b": 2}')) and not match(sqs('{"a": 2, "b": 1}'))


def test_json_and_plain_filters_together() -> None:
    match = compile_filter_criteria(criteria({"body": {"a": [1]}}, {"body": [{"prefix": "x"}]}), "sqs")
    assert match(sqs('{"a": 1}')) and match(sqs("xyz")) and not match(sqs('{"a": 2}')) and not match(sqs("y"))


def test_or_branches_check_the_body_format() -> None:
    match = compile_filter_criteria(criteria({"$or": [{"body": {"a": [1]}}, {"body": [{"prefix": "x"}]}]}), "sqs")
    assert match(sqs('{"a": 1}')) and match(sqs("xyz"))
    assert not match(sqs('{"a": 2}')) and not match(sqs("y")) and not match(sqs('["x"]'))


@pytest.mark.parametrize("empty", [{}, {"Filters": []}, {"Filters": None}])
def test_no_criteria_lets_everything_through(empty: dict[str, Any]) -> None:
    assert compile_filter_criteria(empty, "kinesis")(kinesis("anything"))


def test_unreadable_payloads_are_dropped_not_raised() -> None:
    match = compile_filter_criteria(criteria({"data": {"a": [1]}}), "kinesis")
    record = kinesis("{}")
    record["kinesis"]["data"] = "%%% not base64"
    assert match(record) is False
    not_utf8 = base64.b64encode(b"\xff\xfe").decode()
    assert compile_filter_criteria(criteria({"data": [{"prefix": "a"}]}), "rmq")({"data": not_utf8}) is False
    assert compile_filter_criteria(criteria({"body": [{"prefix": "a"}]}), "sqs")({"messageId": "m"}) is False


# --- patterns Lambda refuses -------------------------------------------------------------------------------------

INVALID = [
    ("sqs", "not json"),
    ("sqs", '{"body": '),
    ("sqs", "[]"),
    ("sqs", '"a string"'),
    ("sqs", "{}"),
    ("sqs", '{"a": "x"}'),                                   # a value must be a rule list or an object
    ("sqs", '{"a": 1}'),
    ("sqs", '{"a": []}'),                                    # empty rule list
    ("sqs", '{"a": {}}'),                                    # empty object
    ("sqs", '{"a": [[1]]}'),
    ("sqs", '{"a": [{"regex": "x"}]}'),                      # unknown operator
    ("sqs", '{"a": [{"cidr": "10.0.0.0/24"}]}'),              # EventBridge only
    ("sqs", '{"a": [{"wildcard": "*.png"}]}'),                # EventBridge only
    ("sqs", '{"a": [{"anything-but": {"prefix": "x"}}]}'),    # EventBridge only
    ("sqs", '{"a": [{"prefix": "x", "suffix": "y"}]}'),
    ("sqs", '{"a": [{"prefix": 1}]}'),
    ("sqs", '{"a": [{"suffix": null}]}'),
    ("sqs", '{"a": [{"equals-ignore-case": ["x"]}]}'),
    ("sqs", '{"a": [{"exists": "true"}]}'),
    ("sqs", '{"a": [{"anything-but": []}]}'),
    ("sqs", '{"a": [{"anything-but": ["x", 1]}]}'),
    ("sqs", '{"a": [{"anything-but": [true]}]}'),
    ("sqs", '{"a": [{"numeric": [">", "10"]}]}'),
    ("sqs", '{"a": [{"numeric": ["!=", 10]}]}'),
    ("sqs", '{"a": [{"numeric": [">"]}]}'),
    ("sqs", '{"a": [{"numeric": [">", 1, ">", 2]}]}'),
    ("sqs", '{"a": [{"numeric": ["=", 1, "<", 2]}]}'),
    ("sqs", '{"a": [{"numeric": [">", 5, "<", 2]}]}'),
    ("sqs", '{"a": [{"numeric": ["<", true]}]}'),
    ("sqs", '{"$or": {"a": [1]}}'),
    ("sqs", '{"$or": [{"a": [1]}]}'),
    ("sqs", '{"$or": [{"a": [1]}, "b"]}'),
    ("sqs", '{"a": ["x"], "a": ["y"]}'),                    # a repeated rule list
    ("kinesis", '{"data": [{"prefix": "x"}]}'),               # Kinesis and DynamoDB data patterns must be JSON
    ("dynamodb", '{"dynamodb": ["x"]}'),
    ("kinesis", '{"$or": [{"data": {"a": [1]}}, {"data": ["x"]}]}'),
    ("sqs", '{"a": [{"anything-but": [null]}]}'),
]


@pytest.mark.parametrize(("source", "pattern"), INVALID)
def test_invalid_patterns(source: str, pattern: str) -> None:
    with pytest.raises(InvalidFilterCriteria) as caught:
        compile_filter_criteria({"Filters": [{"Pattern": pattern}]}, source)
    assert str(caught.value) == "Invalid filter pattern definition."
    assert caught.value.detail


@pytest.mark.parametrize("bad", [{"Filters": "x"}, {"Filters": [{}]}, {"Filters": [{"Pattern": 5}]}])
def test_invalid_criteria(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidFilterCriteria):
        compile_filter_criteria(bad, "sqs")


def test_filter_count_limit() -> None:
    six = criteria(*({"a": [i]} for i in range(6)))
    with pytest.raises(InvalidFilterCriteria):
        compile_filter_criteria(six, "sqs")
    assert compile_filter_criteria(six, "sqs", max_filters=10)(sqs("x")) is False


def test_unknown_source() -> None:
    with pytest.raises(ValueError, match="unknown event source"):
        compile_filter_criteria(criteria({"a": [1]}), "kafka")


def test_match_is_fast() -> None:
    """Not a benchmark: guards against a per-record recompilation (a few microseconds per record expected)."""
    body = {"RequestCode": ["BBBB"], "RecordNumber": [{"numeric": [">", 1]}]}
    match = compile_filter_criteria(criteria({"body": body}, {"awsRegion": [{"prefix": "eu-"}]}), "sqs")
    record = sqs(SQS_JSON_BODY)
    per_record = min(timeit.repeat(lambda: match(record), number=2000, repeat=3)) / 2000
    assert per_record < 500e-6
