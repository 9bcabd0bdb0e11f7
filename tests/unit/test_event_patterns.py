"""EventBridge event patterns (``esm/filtering.py``'s ``compile_event_pattern``): the examples of AWS's "Content
filtering in Amazon EventBridge event patterns" and "Comparison operators for use in event patterns" pages, as
(pattern, event, expected); patterns EventBridge refuses, with the reason it gives; and the input transformer's
quoting rules (``events/transform.py``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdad.esm.filtering import InvalidFilterCriteria, compile_event_pattern, parse_event_json
from lambdad.events.delivery import target_input


def event(detail: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    base = {"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
            "account": "123456789012", "time": "2017-10-02T18:43:48Z", "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-1234567890abcdef0"],
            "detail": detail if detail is not None else {}}
    base.update(top)
    return base


def matches(pattern: dict[str, Any], ev: dict[str, Any]) -> bool:
    return compile_event_pattern(json.dumps(pattern))(parse_event_json(json.dumps(ev)))


CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # exact values, arrays of the event matching any element, AND over fields
    ("exact", {"source": ["aws.ec2"]}, event(), True),
    ("exact other", {"source": ["aws.s3"]}, event(), False),
    ("exact one of", {"source": ["aws.s3", "aws.ec2"]}, event(), True),
    ("resources any element", {"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-1234567890abcdef0"]},
     event(resources=["x", "arn:aws:ec2:us-east-1:123456789012:instance/i-1234567890abcdef0"]), True),
    ("and", {"source": ["aws.ec2"], "detail-type": ["nope"]}, event(), False),
    ("nested", {"detail": {"state": ["running"]}}, event({"state": "running"}), True),
    ("nested miss", {"detail": {"state": ["running"]}}, event({"state": "stopped"}), False),
    ("number", {"detail": {"x": [300]}}, event({"x": 300}), True),
    ("null", {"detail": {"responseElements": [None]}}, event({"responseElements": None}), True),
    ("empty string", {"detail": {"eventVersion": [""]}}, event({"eventVersion": ""}), True),
    ("case sensitive", {"detail": {"state": ["Running"]}}, event({"state": "running"}), False),
    # prefix
    ("prefix", {"time": [{"prefix": "2017-10-02"}]}, event(), True),
    ("prefix miss", {"time": [{"prefix": "2017-10-03"}]}, event(), False),
    ("prefix ignoring case", {"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}},
     event({"service": "eventbridge"}), True),
    ("prefix ignoring case 2", {"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}},
     event({"service": "EVENTBRIDGE"}), True),
    # suffix
    ("suffix", {"detail": {"FileName": [{"suffix": ".png"}]}}, event({"FileName": "image.png"}), True),
    ("suffix miss", {"detail": {"FileName": [{"suffix": ".png"}]}}, event({"FileName": "image.PNG"}), False),
    ("suffix ignoring case", {"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}},
     event({"FileName": "image.PNG"}), True),
    # anything-but
    ("anything-but string", {"detail": {"state": [{"anything-but": "initializing"}]}}, event({"state": "running"}),
     True),
    ("anything-but string miss", {"detail": {"state": [{"anything-but": "initializing"}]}},
     event({"state": "initializing"}), False),
    ("anything-but number", {"detail": {"x-limit": [{"anything-but": 123}]}}, event({"x-limit": 456}), True),
    ("anything-but number miss", {"detail": {"x-limit": [{"anything-but": 123}]}}, event({"x-limit": 123}), False),
    ("anything-but list", {"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}},
     event({"state": "overloaded"}), False),
    ("anything-but number list", {"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}},
     event({"x-limit": 301}), True),
    ("anything-but absent", {"detail": {"state": [{"anything-but": "initializing"}]}}, event({}), False),
    ("anything-but prefix", {"detail": {"state": [{"anything-but": {"prefix": "init"}}]}},
     event({"state": "initializing"}), False),
    ("anything-but prefix other", {"detail": {"state": [{"anything-but": {"prefix": "init"}}]}},
     event({"state": "running"}), True),
    ("anything-but suffix", {"detail": {"FileName": [{"anything-but": {"suffix": ".txt"}}]}},
     event({"FileName": "notes.txt"}), False),
    ("anything-but suffix other", {"detail": {"FileName": [{"anything-but": {"suffix": ".txt"}}]}},
     event({"FileName": "image.png"}), True),
    ("anything-but ignoring case", {"detail": {"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]}},
     event({"state": "INITIALIZING"}), False),
    ("anything-but ignoring case list",
     {"detail": {"state": [{"anything-but": {"equals-ignore-case": ["initializing", "stopped"]}}]}},
     event({"state": "Stopped"}), False),
    ("anything-but ignoring case other",
     {"detail": {"state": [{"anything-but": {"equals-ignore-case": ["initializing", "stopped"]}}]}},
     event({"state": "running"}), True),
    ("anything-but wildcard", {"detail": {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}},
     event({"FilePath": "/usr/lib/x.so"}), False),
    ("anything-but wildcard other", {"detail": {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}},
     event({"FilePath": "/usr/bin/x"}), True),
    ("anything-but wildcard list", {"detail": {"FilePath": [{"anything-but": {"wildcard": ["*/lib/*", "*/bin/*"]}}]}},
     event({"FilePath": "/usr/bin/x"}), False),
    # numeric
    ("numeric", {"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}],
                            "x-limit": [{"numeric": ["=", 3.018e2]}]}},
     event({"c-count": 5, "d-count": 7, "x-limit": 301.8}), True),
    ("numeric out of range", {"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}, event({"c-count": 6}), False),
    ("numeric not a number", {"detail": {"c-count": [{"numeric": [">", 0]}]}}, event({"c-count": "5"}), False),
    # IP addresses
    ("cidr", {"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}}, event({"sourceIPAddress": "10.0.0.255"}),
     True),
    ("cidr miss", {"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}}, event({"sourceIPAddress": "10.0.1.1"}),
     False),
    ("cidr v6", {"detail": {"sourceIPAddress": [{"cidr": "2001:db8::/64"}]}},
     event({"sourceIPAddress": "2001:db8::1"}), True),
    ("cidr not an address", {"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}},
     event({"sourceIPAddress": "example.com"}), False),
    # exists
    ("exists", {"detail": {"state": [{"exists": True}]}}, event({"state": "running"}), True),
    ("exists absent", {"detail": {"state": [{"exists": True}]}}, event({}), False),
    ("not exists", {"detail": {"c-count": [{"exists": False}]}}, event({}), True),
    ("not exists present", {"detail": {"c-count": [{"exists": False}]}}, event({"c-count": 1}), False),
    ("exists on an object", {"detail": {"state": [{"exists": True}]}}, event({"state": {"a": 1}}), False),
    # equals-ignore-case
    ("equals-ignore-case", {"detail-type": [{"equals-ignore-case": "ec2 instance state-change notification"}]},
     event(), True),
    # wildcard
    ("wildcard", {"detail": {"eventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]}},
     event({"eventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/default"}), True),
    ("wildcard miss", {"detail": {"eventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]}},
     event({"eventBusArn": "arn:aws:events:us-west-2:123456789012:event-bus/default"}), False),
    ("wildcard dir", {"detail": {"FileName": [{"wildcard": "dir/*.png"}]}}, event({"FileName": "dir/abc.png"}), True),
    ("wildcard empty run", {"detail": {"FileName": [{"wildcard": "dir/*.png"}]}}, event({"FileName": "dir/.png"}),
     True),
    ("wildcard escaped star", {"detail": {"x": [{"wildcard": "a\\*b"}]}}, event({"x": "a*b"}), True),
    ("wildcard escaped star miss", {"detail": {"x": [{"wildcard": "a\\*b"}]}}, event({"x": "aXb"}), False),
    # $or
    ("$or", {"detail": {"$or": [{"c-count": [{"numeric": [">", 0, "<=", 5]}]}, {"d-count": [{"numeric": ["<", 10]}]},
                                {"x-limit": [{"numeric": ["=", 3.018e2]}]}]}},
     event({"c-count": 50, "d-count": 7}), True),
    ("$or none", {"detail": {"$or": [{"c-count": [{"numeric": [">", 0, "<=", 5]}]},
                                     {"d-count": [{"numeric": ["<", 10]}]}]}},
     event({"c-count": 50, "d-count": 70}), False),
    ("$or top level", {"$or": [{"source": ["aws.s3"]}, {"detail-type": ["EC2 Instance State-change Notification"]}]},
     event(), True),
    # arrays of objects: a nested pattern matches within one element
    ("array of objects", {"detail": {"items": {"name": ["b"], "n": [2]}}},
     event({"items": [{"name": "a", "n": 2}, {"name": "b", "n": 2}]}), True),
    ("array of objects across elements", {"detail": {"items": {"name": ["b"], "n": [1]}}},
     event({"items": [{"name": "a", "n": 1}, {"name": "b", "n": 2}]}), False),
    ("array of values", {"detail": {"tags": ["blue"]}}, event({"tags": ["red", "blue"]}), True),
]


@pytest.mark.parametrize("name,pattern,ev,expected", CASES, ids=[c[0] for c in CASES])
def test_pattern(name: str, pattern: dict[str, Any], ev: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, ev) is expected


INVALID: list[tuple[str, str]] = [
    ('{"source": "aws.ec2"}', '"source" must be an object or an array'),
    ('{"source": ["aws.ec2"], "detail": {}}', "Empty objects are not allowed"),
    ('{}', "Empty objects are not allowed"),
    ('[1]', "Filter is not an object"),
    ('{"a": []}', "Empty arrays are not allowed"),
    ('{"a": [{"suffix": ["x"]}]}', "suffix match pattern must be a string"),
    ('{"a": [{"prefix": 1}]}', "prefix match pattern must be a string"),
    ('{"a": [{"nope": 1}]}', "Unrecognized match type nope"),
    ('{"a": [{"wildcard": "a**b"}]}', "Consecutive wildcard characters at pos 2"),
    ('{"a": [{"cidr": "10.0.0.300/8"}]}', "Nonstandard IP address: 10.0.0.300/8"),
    ('{"a": [{"exists": "yes"}]}', "exists match pattern must be either true or false."),
    ('{"a": [{"numeric": [">", "x"]}]}', "numeric operator > needs a number"),
    ('{"$or": [{"a": [1]}]}', "Or relationship must be a list of at least two objects"),
    ('{"a": [{"anything-but": {"prefix": "x", "suffix": "y"}}]}', "Inside anything-but, exactly one of"),
    ('{"a": [{"anything-but": [true]}]}', "Inside anything but list"),
    ('{"a": ', "Expecting value"),
]


@pytest.mark.parametrize("text,reason", INVALID, ids=[i[0] for i in INVALID])
def test_invalid_patterns(text: str, reason: str) -> None:
    with pytest.raises(InvalidFilterCriteria) as caught:
        compile_event_pattern(text)
    assert caught.value.detail.startswith(reason), caught.value.detail


EC2 = event({"instance-id": "i-0123456789", "state": "RUNNING"})


def transform(template: str, paths: dict[str, str]) -> str:
    target = {"InputTransformer": {"InputPathsMap": paths, "InputTemplate": template}}
    return target_input(target, "arn:aws:events:us-east-1:123456789012:rule/r", "r", EC2, 0.0)


def test_transformer_json_template_quotes_strings_outside_strings() -> None:
    """AWS's example: {"instance": <instance>, "state": [9, <state>, true]} gives the strings their quotes."""
    out = transform('{"instance": <instance>, "state": [9, <state>, true]}',
                    {"instance": "$.detail.instance-id", "state": "$.detail.state"})
    assert json.loads(out) == {"instance": "i-0123456789", "state": [9, "RUNNING", True]}


def test_transformer_string_template() -> None:
    out = transform('"<instance> is in state <state>"',
                    {"instance": "$.detail.instance-id", "state": "$.detail.state"})
    assert json.loads(out) == "i-0123456789 is in state RUNNING"


def test_transformer_plain_text_template() -> None:
    """The API reference's examples without JSON: values as text; the function gets the text as a JSON string."""
    out = transform('<instance> is in state "<state>"', {"instance": "$.detail.instance-id", "state": "$.detail.state"})
    assert json.loads(out) == 'i-0123456789 is in state "RUNNING"'


def test_transformer_inside_a_json_string_and_escaped_quotes() -> None:
    out = transform('{"myInstance": <instance>, "myStatus": "<instance> is in state \\"<state>\\""}',
                    {"instance": "$.detail.instance-id", "state": "$.detail.state"})
    assert json.loads(out) == {"myInstance": "i-0123456789", "myStatus": 'i-0123456789 is in state "RUNNING"'}


def test_transformer_objects_and_predefined_variables() -> None:
    out = transform('{"detail": <d>, "text": "d is <d>", "rule": "<aws.events.rule-name>", "all": <aws.events.event>,'
                    ' "missing": <nope>, "in": "[<nope>]"}', {"d": "$.detail", "nope": "$.detail.absent"})
    got = json.loads(out)
    assert got["detail"] == {"instance-id": "i-0123456789", "state": "RUNNING"}
    assert got["text"] == "d is {instance-id:i-0123456789,state:RUNNING}"  # inner quotes removed, as AWS
    assert got["rule"] == "r" and "detail" not in got["all"] and got["all"]["source"] == "aws.ec2"
    assert got["missing"] is None and got["in"] == "[]"


def test_input_path_and_input() -> None:
    assert json.loads(target_input({"InputPath": "$.detail.state"}, "arn", "r", EC2, 0.0)) == "RUNNING"
    assert json.loads(target_input({"InputPath": "$.resources[0]"}, "arn", "r", EC2, 0.0)).startswith("arn:aws:ec2")
    assert target_input({"Input": '{"fixed": 1}'}, "arn", "r", EC2, 0.0) == '{"fixed": 1}'
    assert json.loads(target_input({}, "arn", "r", EC2, 0.0)) == EC2
