"""lambdad.api.protocol against botocore's own client code.

Requests are built by botocore's rest-json serializer (what boto3 sends), routed and parsed by us, and must give
back the caller's parameters; our responses are parsed by botocore's rest-json parser (what boto3 reads) and
must give back what we rendered.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.session
import pytest
from botocore.awsrequest import HeadersDict, prepare_request_dict
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from lambdad.api.protocol import member_pattern, parse_request, serialize_error, serialize_response
from lambdad.api.router import Router
from lambdad.errors import (
    InvalidRequestContentException,
    LambdaError,
    ResourceNotFoundException,
    TooManyRequestsException,
    UnknownOperationException,
    ValidationException,
)

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:my-function"
ROLE_ARN = "arn:aws:iam::123456789012:role/lambda-role"
LAYER_ARN = "arn:aws:lambda:us-east-1:123456789012:layer:my-layer"
ENDPOINT = "https://lambda.us-east-1.amazonaws.com"


@pytest.fixture(scope="module")
def model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("lambda")


@pytest.fixture(scope="module")
def router(model: ServiceModel) -> Router:
    return Router(model)


class Sent:
    """One request as boto3 puts it on the wire."""

    def __init__(self, model: ServiceModel, operation: str, params: dict[str, Any], validate: bool = True) -> None:
        serializer = create_serializer("rest-json", include_validation=validate)
        request = serializer.serialize_to_request(params, model.operation_model(operation))
        prepare_request_dict(request, ENDPOINT)
        url = urlsplit(request["url"])
        self.method: str = request["method"]
        self.path = url.path
        self.query = parse_qs(url.query, keep_blank_values=True)
        self.headers = HeadersDict(request["headers"])
        body = request["body"]
        self.body: bytes = body if isinstance(body, bytes) else (body or b"")


def receive(router: Router, sent: Sent) -> tuple[OperationModel, dict[str, Any]]:
    op, labels = router.match(sent.method, sent.path, sent.query)
    return op, parse_request(op, labels, sent.query, sent.headers, sent.body)


def roundtrip(model: ServiceModel, router: Router, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    op, parsed = receive(router, Sent(model, operation, params))
    assert op.name == operation
    return parsed


def parse_response(op: OperationModel, rendered: tuple[int, dict[str, str], bytes]) -> dict[str, Any]:
    status, headers, body = rendered
    parsed: dict[str, Any] = create_parser("rest-json").parse(
        {"status_code": status, "headers": HeadersDict(headers), "body": body}, op.output_shape
    )
    parsed.pop("ResponseMetadata", None)
    return parsed


# ------------------------------------------------------------------------------------------ request round trips

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    (
        "CreateFunction",
        {
            "FunctionName": "my-function",
            "Runtime": "python3.12",
            "Role": ROLE_ARN,
            "Handler": "app.handler",
            "Code": {"ZipFile": b"PK\x03\x04 not really a zip \xff\x00"},
            "Timeout": 30,
            "MemorySize": 256,
            "Publish": True,
            "Environment": {"Variables": {"STAGE": "prod", "EMPTY": ""}},
            "Tags": {"team": "core", "cost-center": "42"},
            "Architectures": ["arm64"],
            "Layers": [f"{LAYER_ARN}:3"],
            "EphemeralStorage": {"Size": 1024},
            "LoggingConfig": {"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"},
        },
    ),
    (
        "Invoke",
        {
            "FunctionName": "my-function",
            "InvocationType": "RequestResponse",
            "LogType": "Tail",
            "ClientContext": "eyJjdXN0b20iOnsiYSI6MX19",
            "Qualifier": "prod",
            "Payload": b'{"key": "value", "n": [1, 2, 3]}',
        },
    ),
    ("Invoke", {"FunctionName": FUNCTION_ARN, "InvocationType": "Event", "Payload": b"\x00\x01 not json"}),
    ("Invoke", {"FunctionName": f"{FUNCTION_ARN}:7"}),
    ("InvokeAsync", {"FunctionName": "my-function", "InvokeArgs": b'{"a": 1}'}),
    ("ListFunctions", {"Marker": "opaque/+=marker==", "MaxItems": 50, "FunctionVersion": "ALL"}),
    ("ListFunctions", {}),
    ("GetFunction", {"FunctionName": FUNCTION_ARN}),
    ("GetFunction", {"FunctionName": "my-function", "Qualifier": "$LATEST"}),
    (
        "PublishLayerVersion",
        {
            "LayerName": "my-layer",
            "Description": "shared code",
            "Content": {"ZipFile": b"layer bytes"},
            "CompatibleRuntimes": ["python3.11", "python3.12"],
            "CompatibleArchitectures": ["x86_64"],
            "LicenseInfo": "MIT",
        },
    ),
    ("GetLayerVersion", {"LayerName": LAYER_ARN, "VersionNumber": 3}),
    ("GetLayerVersionByArn", {"Arn": f"{LAYER_ARN}:3"}),
    ("ListLayers", {"CompatibleRuntime": "python3.12", "MaxItems": 10}),
    ("TagResource", {"Resource": FUNCTION_ARN, "Tags": {"a": "1", "b": "2"}}),
    ("UntagResource", {"Resource": FUNCTION_ARN, "TagKeys": ["a", "b"]}),
    ("ListTags", {"Resource": FUNCTION_ARN}),
    ("PutFunctionConcurrency", {"FunctionName": "my-function", "ReservedConcurrentExecutions": 0}),
    ("GetFunctionConcurrency", {"FunctionName": FUNCTION_ARN}),
    ("DeleteFunctionConcurrency", {"FunctionName": "my-function"}),
    (
        "CreateFunctionUrlConfig",
        {
            "FunctionName": "my-function",
            "Qualifier": "live",
            "AuthType": "NONE",
            "Cors": {"AllowOrigins": ["*"], "AllowMethods": ["GET", "POST"], "MaxAge": 300, "AllowCredentials": False},
            "InvokeMode": "BUFFERED",
        },
    ),
    ("DeleteFunction", {"FunctionName": "my-function", "Qualifier": "3"}),
    ("ListProvisionedConcurrencyConfigs", {"FunctionName": "my-function", "MaxItems": 5}),
    ("GetProvisionedConcurrencyConfig", {"FunctionName": "my-function", "Qualifier": "live"}),
    (
        "AddPermission",
        {
            "FunctionName": "my-function",
            "StatementId": "s3-invoke",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
            "SourceArn": "arn:aws:s3:::bucket",
            "Qualifier": "prod",
        },
    ),
    ("RemovePermission", {"FunctionName": "my-function", "StatementId": "s3-invoke", "RevisionId": "r-1"}),
    ("UpdateAlias", {"FunctionName": "my-function", "Name": "live", "FunctionVersion": "4", "RevisionId": "abc"}),
    (
        "ListDurableExecutionsByFunction",
        {
            "FunctionName": "my-function",
            "Statuses": ["RUNNING", "FAILED"],
            "StartedAfter": datetime(2024, 5, 1, 12, 30, 15, tzinfo=timezone.utc),
            "ReverseOrder": True,
            "MaxItems": 0,
        },
    ),
    (
        "StopDurableExecution",
        {"DurableExecutionArn": f"{FUNCTION_ARN}/durable/x", "Error": {"ErrorMessage": "stop", "ErrorType": "E"}},
    ),
    ("SendDurableExecutionCallbackSuccess", {"CallbackId": "cb-1", "Result": b"\x00done"}),
]


@pytest.mark.parametrize(
    ("operation", "params"), REQUESTS, ids=[f"{name}-{i}" for i, (name, _) in enumerate(REQUESTS)]
)
def test_request_roundtrip(model: ServiceModel, router: Router, operation: str, params: dict[str, Any]) -> None:
    assert roundtrip(model, router, operation, params) == params


def test_arn_labels_are_percent_decoded(model: ServiceModel, router: Router) -> None:
    sent = Sent(model, "GetFunction", {"FunctionName": FUNCTION_ARN})
    assert "%3A" in sent.path  # boto3 encodes ':' inside a label
    op, labels = router.match(sent.method, sent.path)
    assert (op.name, labels) == ("GetFunction", {"FunctionName": FUNCTION_ARN})
    op, labels = router.match("GET", "/2015-03-31/functions/a%2Fb/configuration")
    assert (op.name, labels) == ("GetFunctionConfiguration", {"FunctionName": "a/b"})
    for raw in ("%e2%82%AC-%41", "100%", "a%zz%2", "%ff", "plain"):
        assert router.match("GET", f"/2015-03-31/functions/{raw}")[1] == {"FunctionName": unquote(raw)}


def test_same_path_different_methods(router: Router) -> None:
    path = "/2015-03-31/functions/f/versions"
    assert router.match("POST", path)[0].name == "PublishVersion"
    assert router.match("get", path)[0].name == "ListVersionsByFunction"
    url = "/2021-10-31/functions/f/url"
    names = {method: router.match(method, url)[0].name for method in ("POST", "GET", "PUT", "DELETE")}
    assert names == {
        "POST": "CreateFunctionUrlConfig",
        "GET": "GetFunctionUrlConfig",
        "PUT": "UpdateFunctionUrlConfig",
        "DELETE": "DeleteFunctionUrlConfig",
    }


def test_literal_query_in_request_uri(router: Router) -> None:
    assert router.match("GET", "/2018-10-31/layers")[0].name == "ListLayers"
    assert router.match("GET", "/2018-10-31/layers", {"find": ["LayerVersion"]})[0].name == "GetLayerVersionByArn"
    assert router.match("GET", "/2018-10-31/layers", {"find": ["Other"]})[0].name == "ListLayers"
    path = "/2019-09-30/functions/f/provisioned-concurrency"
    assert router.match("GET", path, {"Qualifier": ["1"]})[0].name == "GetProvisionedConcurrencyConfig"
    assert router.match("GET", path, {"List": ["ALL"]})[0].name == "ListProvisionedConcurrencyConfigs"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/2015-03-31/nothing"),
        ("GET", "/2015-03-31/functions/f/invocations"),  # Invoke is POST only
        ("PATCH", "/2015-03-31/functions/f"),
        ("GET", "/2015-03-31/functions/f/configuration/extra"),
        ("GET", "2015-03-31/functions"),
        ("GET", ""),
    ],
)
def test_unknown_operation(router: Router, method: str, path: str) -> None:
    with pytest.raises(UnknownOperationException) as caught:
        router.match(method, path)
    assert caught.value.status == 404
    assert path in caught.value.message


def synthetic_model() -> ServiceModel:
    """Templates Lambda's model lacks: a literal beside a label, greedy labels with and without a suffix."""
    routes = {
        "GetThing": "/things/{Id}",
        "GetSpecial": "/things/special",
        "GetObject": "/objects/{Key+}",
        "GetObjectMeta": "/objects/{Key+}/meta",
    }
    operations: dict[str, Any] = {}
    shapes: dict[str, Any] = {"S": {"type": "string"}}
    for name, uri in routes.items():
        labels = [label.rstrip("+") for label in re.findall(r"{([^}]+)}", uri)]
        members = {label: {"shape": "S", "location": "uri", "locationName": label} for label in labels}
        operations[name] = {"name": name, "http": {"method": "GET", "requestUri": uri}, "input": {"shape": name}}
        shapes[name] = {"type": "structure", "required": labels, "members": members}
    return ServiceModel(
        {
            "metadata": {"protocol": "rest-json", "apiVersion": "2020-01-01", "endpointPrefix": "x"},
            "operations": operations,
            "shapes": shapes,
        }
    )


def test_literal_segment_beats_label_and_greedy_labels() -> None:
    router = Router(synthetic_model())
    op, labels = router.match("GET", "/things/special")
    assert (op.name, labels) == ("GetSpecial", {})
    op, labels = router.match("GET", "/things/spe%63ial2")
    assert (op.name, labels) == ("GetThing", {"Id": "special2"})
    op, labels = router.match("GET", "/objects/a/b%20c/d")
    assert (op.name, labels) == ("GetObject", {"Key": "a/b c/d"})
    op, labels = router.match("GET", "/objects/a/b/meta")
    assert (op.name, labels) == ("GetObjectMeta", {"Key": "a/b"})


def test_header_maps_and_typed_headers_roundtrip() -> None:
    """Lambda's model has no ``headers`` prefix maps or typed headers; other rest-json models do."""
    headers = {
        "Meta": {"shape": "Meta", "location": "headers", "locationName": "x-meta-"},
        "Count": {"shape": "Int", "location": "header", "locationName": "X-Count"},
        "Flag": {"shape": "Bool", "location": "header", "locationName": "X-Flag"},
        "When": {"shape": "Time", "location": "header", "locationName": "X-When"},
    }
    model = ServiceModel(
        {
            "metadata": {"protocol": "rest-json", "apiVersion": "2020-01-01", "endpointPrefix": "x"},
            "operations": {
                "PutMeta": {
                    "name": "PutMeta",
                    "http": {"method": "PUT", "requestUri": "/meta", "responseCode": 200},
                    "input": {"shape": "Headers"},
                    "output": {"shape": "Headers"},
                }
            },
            "shapes": {
                "Headers": {"type": "structure", "members": headers},
                "Meta": {"type": "map", "key": {"shape": "S"}, "value": {"shape": "S"}},
                "S": {"type": "string"},
                "Int": {"type": "integer", "max": 10},
                "Bool": {"type": "boolean"},
                "Time": {"type": "timestamp"},
            },
        }
    )
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    params = {"Meta": {"color": "blue"}, "Count": 7, "Flag": False, "When": when}
    op, parsed = receive(Router(model), Sent(model, "PutMeta", params))
    assert parsed == params
    assert parse_response(op, serialize_response(op, params)) == params
    with pytest.raises(ValidationException, match="Value '11' at 'count'"):
        parse_request(op, {}, {}, {"x-count": "11"}, b"")


def minimal_value(shape: Shape, depth: int = 0) -> Any:
    """A value for ``shape`` that satisfies its required members and length/range constraints."""
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure":
        return {name: minimal_value(shape.members[name], depth + 1) for name in shape.required_members}
    if kind == "list":
        return [minimal_value(shape.member, depth + 1) for _ in range(max(meta.get("min", 1), 1))]
    if kind == "map":
        return {"k": minimal_value(shape.value, depth + 1)}
    if kind in ("integer", "long"):
        return int(meta.get("min", 1))
    if kind in ("float", "double"):
        return float(meta.get("min", 1))
    if kind == "boolean":
        return True
    if kind == "blob":
        return b"x" * max(meta.get("min", 1), 1)
    if kind == "timestamp":
        return datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    if meta.get("enum"):
        return meta["enum"][0]
    return "a" * max(meta.get("min", 1), 1)


def test_every_operation_is_routable(model: ServiceModel, router: Router) -> None:
    assert len(model.operation_names) >= 85
    for name in model.operation_names:
        op = model.operation_model(name)
        params = minimal_value(op.input_shape) if op.input_shape is not None else {}
        got_op, parsed = receive(router, Sent(model, name, params))
        assert got_op.name == name
        assert parsed == params, name


# ------------------------------------------------------------------------------------------------- validation


def rejected(model: ServiceModel, router: Router, operation: str, params: dict[str, Any]) -> str:
    """The message for a request boto3 sends with parameter_validation=False (or any other client sends)."""
    with pytest.raises(ValidationException) as caught:
        receive(router, Sent(model, operation, params, validate=False))
    assert caught.value.status == 400
    return caught.value.message


def test_missing_required_member(model: ServiceModel, router: Router) -> None:
    message = rejected(model, router, "CreateFunction", {"FunctionName": "f", "Code": {"ZipFile": b"z"}})
    assert message == (
        "1 validation error detected: Value null at 'role' failed to satisfy constraint: Member must not be null"
    )


def test_missing_nested_required_member(model: ServiceModel, router: Router) -> None:
    params = {"FunctionName": "f", "Role": ROLE_ARN, "Code": {"ZipFile": b"z"}, "EphemeralStorage": {}}
    message = rejected(model, router, "CreateFunction", params)
    assert message.endswith(
        "Value null at 'ephemeralStorage.size' failed to satisfy constraint: Member must not be null"
    )


def test_name_too_long(model: ServiceModel, router: Router) -> None:
    name = "f" * 141
    message = rejected(model, router, "CreateFunction", {"FunctionName": name, "Role": ROLE_ARN, "Code": {}})
    assert message == (
        f"1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: "
        "Member must have length less than or equal to 140"
    )


def test_empty_uri_label(router: Router) -> None:
    op, labels = router.match("GET", "/2015-03-31/functions//configuration")
    with pytest.raises(ValidationException) as caught:
        parse_request(op, labels, {}, {}, b"")
    assert caught.value.message == (
        "1 validation error detected: Value '' at 'functionName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_memory_out_of_range(model: ServiceModel, router: Router) -> None:
    params = {"FunctionName": "f", "Role": ROLE_ARN, "Code": {}, "MemorySize": 64}
    assert rejected(model, router, "CreateFunction", params) == (
        "1 validation error detected: Value '64' at 'memorySize' failed to satisfy constraint: "
        "Member must have value greater than or equal to 128"
    )


def test_several_errors_at_once(model: ServiceModel, router: Router) -> None:
    params = {"FunctionName": "", "Code": {}, "MemorySize": 40000, "Timeout": 0, "Architectures": []}
    message = rejected(model, router, "CreateFunction", params)
    assert message == (
        "5 validation errors detected: "
        "Value '' at 'functionName' failed to satisfy constraint: Member must have length greater than or equal to 1; "
        "Value null at 'role' failed to satisfy constraint: Member must not be null; "
        "Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1; "
        "Value '40000' at 'memorySize' failed to satisfy constraint: "
        "Member must have value less than or equal to 32768; "
        "Value '[]' at 'architectures' failed to satisfy constraint: Member must have length greater than or equal to 1"
    )


def test_query_and_header_members_are_validated(model: ServiceModel, router: Router) -> None:
    assert rejected(model, router, "ListFunctions", {"MaxItems": 0}) == (
        "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )
    message = rejected(model, router, "Invoke", {"FunctionName": "f", "TenantId": "t" * 257, "Qualifier": ""})
    assert message.startswith("2 validation errors detected: ")
    assert "Value '' at 'qualifier' failed to satisfy constraint" in message
    assert "at 'tenantId' failed to satisfy constraint: Member must have length less than or equal to 256" in message


def test_list_element_failure_is_reported_at_the_list(model: ServiceModel, router: Router) -> None:
    params = {"FunctionName": "f", "Role": ROLE_ARN, "Code": {}, "Layers": [""]}
    message = rejected(model, router, "CreateFunction", params)
    pattern = member_pattern(model.operation_model("CreateFunction"), "Layers")
    assert message == (
        "1 validation error detected: Value '[]' at 'layers' failed to satisfy constraint: Member must satisfy "
        "constraint: [Member must have length less than or equal to 140, Member must have length greater than or "
        f"equal to 1, Member must satisfy regular expression pattern: {pattern}, Member must not be null]"
    )


def test_sensitive_values_are_not_echoed(model: ServiceModel, router: Router) -> None:
    secret = b"s" * 262145
    message = rejected(model, router, "SendDurableExecutionCallbackSuccess", {"CallbackId": "c", "Result": secret})
    assert message == (
        "1 validation error detected: Value at 'result' failed to satisfy constraint: "
        "Member must have length less than or equal to 262144"
    )


def test_patterns_and_enums_are_left_to_the_service(model: ServiceModel, router: Router) -> None:
    params = {"FunctionName": "not a valid name!", "Role": "role", "Code": {}, "Runtime": "cobol85"}
    assert roundtrip(model, router, "CreateFunction", params) == params
    op = model.operation_model("CreateFunction")
    assert member_pattern(op, "FunctionName") == op.input_shape.members["FunctionName"].metadata["pattern"]
    assert member_pattern(op, "Code.S3Bucket") is not None
    assert member_pattern(op, "Description") is None
    with pytest.raises(KeyError):
        member_pattern(op, "Code.Nope")


def raw_create_function(router: Router, body: bytes) -> dict[str, Any]:
    op, labels = router.match("POST", "/2015-03-31/functions")
    return parse_request(op, labels, {}, {"content-type": "application/json"}, body)


@pytest.mark.parametrize("body", [b"{not json", b'{"FunctionName": "f",}', b"\xff\xfe", b"[]", b'"text"'])
def test_body_that_is_not_a_json_object(router: Router, body: bytes) -> None:
    with pytest.raises(InvalidRequestContentException) as caught:
        raw_create_function(router, body)
    assert caught.value.message.startswith("Could not parse request body into json: ")


@pytest.mark.parametrize(
    "members",
    [
        {"MemorySize": "big"},
        {"MemorySize": True},
        {"MemorySize": 2**40},
        {"FunctionName": 5},
        {"Publish": "true"},
        {"Code": "zip"},
        {"Code": {"ZipFile": "***not base64***"}},
        {"Tags": ["a"]},
        {"Layers": "arn"},
    ],
)
def test_wrong_json_types(router: Router, members: dict[str, Any]) -> None:
    body = {"FunctionName": "f", "Role": ROLE_ARN, "Code": {}, **members}
    with pytest.raises(InvalidRequestContentException):
        raw_create_function(router, json.dumps(body).encode())


def test_unknown_json_members_are_ignored(router: Router) -> None:
    body = {"FunctionName": "f", "Role": ROLE_ARN, "Code": {"ZipFile": "UEs=", "Extra": 1}, "Surprise": [1]}
    assert raw_create_function(router, json.dumps(body).encode()) == {
        "FunctionName": "f",
        "Role": ROLE_ARN,
        "Code": {"ZipFile": b"PK"},
    }


def test_unparsable_query_values(router: Router) -> None:
    op, labels = router.match("GET", "/2015-03-31/functions")
    with pytest.raises(ValidationException) as caught:
        parse_request(op, labels, {"MaxItems": ["ten"]}, {}, b"")
    assert "Value 'ten' at 'maxItems'" in caught.value.message


# ------------------------------------------------------------------------------------------ response round trips


def test_invoke_response(model: ServiceModel) -> None:
    op = model.operation_model("Invoke")
    output: dict[str, Any] = {
        "StatusCode": 200,
        "FunctionError": "Unhandled",
        "LogResult": "U1RBUlQgUmVxdWVzdElk",
        "ExecutedVersion": "$LATEST",
        "Payload": b'{"errorMessage": "boom"}',
    }
    status, headers, body = rendered = serialize_response(op, output)
    assert (status, body) == (200, b'{"errorMessage": "boom"}')
    parsed = parse_response(op, rendered)
    assert parsed == {**output, "Payload": output["Payload"].decode()}


def test_async_invoke_status_code(model: ServiceModel) -> None:
    op = model.operation_model("Invoke")
    rendered = serialize_response(op, {"StatusCode": 202, "Payload": b""})
    assert rendered[0] == 202
    assert parse_response(op, rendered)["StatusCode"] == 202
    op = model.operation_model("DeleteFunction")
    status, headers, body = serialize_response(op, {"StatusCode": 204})
    assert (status, body) == (204, b"")


FUNCTION_CONFIGURATION: dict[str, Any] = {
    "FunctionName": "my-function",
    "FunctionArn": FUNCTION_ARN,
    "Runtime": "python3.12",
    "Role": ROLE_ARN,
    "Handler": "app.handler",
    "CodeSize": 1234,
    "Description": "",
    "Timeout": 3,
    "MemorySize": 128,
    "LastModified": "2024-05-01T12:00:00.000+0000",
    "CodeSha256": "abc=",
    "Version": "$LATEST",
    "Environment": {"Variables": {"STAGE": "prod"}},
    "Layers": [{"Arn": f"{LAYER_ARN}:3", "CodeSize": 10}],
    "State": "Active",
    "Architectures": ["x86_64"],
    "EphemeralStorage": {"Size": 512},
}


def test_get_function_response(model: ServiceModel) -> None:
    op = model.operation_model("GetFunction")
    output = {
        "Configuration": FUNCTION_CONFIGURATION,
        "Code": {"RepositoryType": "S3", "Location": "https://example.invalid/code.zip?sig=1"},
        "Tags": {"team": "core"},
        "Concurrency": {"ReservedConcurrentExecutions": 5},
    }
    rendered = serialize_response(op, {**output, "NotInModel": "dropped", "Tags": {"team": "core"}, "Extra": None})
    assert rendered[0] == 200
    assert rendered[1]["Content-Type"] == "application/json"
    assert parse_response(op, rendered) == output


def test_list_functions_response_omits_none(model: ServiceModel) -> None:
    op = model.operation_model("ListFunctions")
    functions = [FUNCTION_CONFIGURATION, {**FUNCTION_CONFIGURATION, "Version": "1"}]
    output = {"Functions": functions, "NextMarker": "m"}
    rendered = serialize_response(op, {**output, "Functions": [{**f, "KMSKeyArn": None} for f in functions]})
    assert b"null" not in rendered[2]
    assert parse_response(op, rendered) == output


def test_timestamps_and_blobs_in_responses(model: ServiceModel) -> None:
    op = model.operation_model("StopDurableExecution")
    stopped = datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=timezone.utc)
    assert parse_response(op, serialize_response(op, {"StopTimestamp": stopped})) == {"StopTimestamp": stopped}
    op = model.operation_model("GetAccountSettings")
    output = {"AccountLimit": {"TotalCodeSize": 80530636800, "ConcurrentExecutions": 1000}, "AccountUsage": {}}
    assert parse_response(op, serialize_response(op, output)) == output


def test_empty_response_bodies(model: ServiceModel) -> None:
    status, headers, body = serialize_response(model.operation_model("DeleteFunctionConcurrency"), {})
    assert (status, headers, body) == (204, {}, b"")
    status, headers, body = serialize_response(model.operation_model("TagResource"), {})
    assert (status, body) == (204, b"")


@pytest.mark.parametrize(
    "error",
    [
        ResourceNotFoundException(f"Function not found: {FUNCTION_ARN}"),
        ValidationException("1 validation error detected: ..."),
        TooManyRequestsException("Rate Exceeded.", "ReservedFunctionConcurrentInvocationLimitExceeded"),
        UnknownOperationException("Unknown operation: GET /x"),
    ],
)
def test_errors_parse_in_botocore(model: ServiceModel, error: LambdaError) -> None:
    status, headers, body = rendered = serialize_error(error)
    assert status == error.status
    assert headers["Content-Type"] == "application/json"
    parsed = create_parser("rest-json").parse(
        {"status_code": status, "headers": HeadersDict(headers), "body": body},
        model.operation_model("Invoke").output_shape,
    )
    assert parsed["Error"]["Code"] == error.name
    assert parsed["Error"]["Message"] == error.message
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == error.status
    assert json.loads(rendered[2]) == error.body()
