"""Alias routing weights (issue 11 item 6), through the in-process app: the share of invocations each version of
a weighted alias gets, its edges (weight 0 and 1) and the draw being made per invocation."""

from __future__ import annotations

import json
import math
import urllib.error

import pytest
from botocore.exceptions import ClientError

from lambdad.arn import FunctionRef
from tests.server import create_python_function

CODE = "def handler(event, context):\n    return context.function_version\n"


@pytest.fixture
def lam(inproc):
    client = inproc.client()
    yield client
    client.close()  # not left to the garbage collector, in the middle of another test


def _two_versions(lam, name: str) -> None:
    create_python_function(lam, name, CODE, Publish=True)
    lam.update_function_configuration(FunctionName=name, Description="two")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert lam.publish_version(FunctionName=name)["Version"] == "2"


def _shares(inproc, name: str, alias: str, draws: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _ in range(draws):
        version = inproc.app.functions.route(FunctionRef(name, alias)).version
        counts[version] = counts.get(version, 0) + 1
    return counts


@pytest.mark.parametrize("weight", [0.1, 0.5, 0.9])
def test_a_weight_sends_its_share_of_invocations(inproc, lam, fname, weight) -> None:
    _two_versions(lam, fname)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": weight}})
    draws = 20_000
    counts = _shares(inproc, fname, "live", draws)
    # binomial: within 5 standard deviations (a false failure once in ~3.5 million runs)
    bound = 5 * math.sqrt(draws * weight * (1 - weight))
    assert abs(counts.get("2", 0) - draws * weight) < bound, counts
    assert set(counts) == {"1", "2"}


def test_weights_at_their_edges(inproc, lam, fname) -> None:
    _two_versions(lam, fname)
    lam.create_alias(FunctionName=fname, Name="none", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.0}})
    lam.create_alias(FunctionName=fname, Name="all", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}})
    assert _shares(inproc, fname, "none", 2000) == {"1": 2000}
    assert _shares(inproc, fname, "all", 2000) == {"2": 2000}


def test_an_invocation_reports_the_version_the_draw_chose(inproc, lam, fname) -> None:
    _two_versions(lam, fname)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    seen = set()
    for _ in range(40):
        out = lam.invoke(FunctionName=fname, Qualifier="live")
        ran = out["Payload"].read().decode().strip('"')
        assert out["ExecutedVersion"] == ran  # the version that ran is the one reported
        seen.add(ran)
    assert seen == {"1", "2"}  # 40 fair draws all one way: one chance in 5e11


def test_a_weight_out_of_range_is_refused(inproc, lam, fname) -> None:
    _two_versions(lam, fname)
    with pytest.raises(ClientError) as refused:
        lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1",
                         RoutingConfig={"AdditionalVersionWeights": {"2": 1.5}})
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Member must have value less than or equal to 1" in str(refused.value)  # a map value: AWS lists all


def test_a_weight_that_is_not_a_number_is_refused(inproc, lam, fname) -> None:
    """NaN and Infinity are not JSON, but Python's parser takes them, and NaN passes every range check (each
    comparison with it is false): sent raw, such a weight is refused as AWS refuses the body."""
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from tests.server import ACCESS_KEY, SECRET_KEY

    _two_versions(lam, fname)
    for token in ("NaN", "Infinity", "-Infinity"):
        body = ('{"Name": "live", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": '
                + token + "}}}").encode()
        url = f"{inproc.endpoint}/2015-03-31/functions/{fname}/aliases"
        request = AWSRequest("POST", url, data=body, headers={"Content-Type": "application/json"})
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", "us-east-1").add_auth(request)
        try:
            urllib.request.urlopen(urllib.request.Request(url, body, dict(request.headers), method="POST"))
            raise AssertionError(f"a weight of {token} was taken")
        except urllib.error.HTTPError as exc:
            with exc:  # the answer's connection is closed here, not by the garbage collector in a later test
                assert exc.code == 400 and exc.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
                assert token in json.loads(exc.read())["Message"]
    assert lam.list_aliases(FunctionName=fname)["Aliases"] == []


# A weight outside 0.0–1.0, NaN among them, is refused as AWS's front end refuses it. botocore checks only the
# minimum (and sends NaN and the infinities as the strings "NaN", "Infinity"), so the client here does not check.
# (As bare JSON tokens they are not JSON at all: refused with the body, test_a_weight_that_is_not_a_number...)
_BARE: dict[float, str] = {}
_OUT_OF_RANGE = [
    (1.5, "1.5"), (-0.5, "-0.5"), (1.0000001, "1.0000001"),
    (math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity"),  # sent as the strings "NaN", ...
]


def _refusal(shown: str) -> str:
    return ("1 validation error detected: Value '{2=" + shown + "}' at 'routingConfig.additionalVersionWeights' "
            "failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or "
            "equal to 1.0, Member must have value greater than or equal to 0.0]")


@pytest.fixture
def unchecked(inproc):
    """A client that leaves validation to the server; a weight of ``_BARE`` is sent as its bare JSON token."""
    client = inproc.client(parameter_validation=False)

    def bare_tokens(request, **_) -> None:
        for marker, token in _BARE.items():
            request.data = request.data.replace(repr(marker).encode(), token.encode())

    client.meta.events.register("before-sign.lambda.CreateAlias", bare_tokens)
    client.meta.events.register("before-sign.lambda.UpdateAlias", bare_tokens)
    yield client
    client.close()


@pytest.mark.parametrize("weight, shown", _OUT_OF_RANGE, ids=[f"bare {s}" if w in _BARE else repr(w)
                                                              for w, s in _OUT_OF_RANGE])
def test_a_weight_outside_zero_to_one_is_refused_with_aws_message(lam, unchecked, fname, weight, shown) -> None:
    _two_versions(lam, fname)
    routing = {"AdditionalVersionWeights": {"2": weight}}
    with pytest.raises(ClientError) as created:
        unchecked.create_alias(FunctionName=fname, Name="live", FunctionVersion="1", RoutingConfig=routing)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}})
    with pytest.raises(ClientError) as updated:
        unchecked.update_alias(FunctionName=fname, Name="live", RoutingConfig=routing)
    for refused in (created.value, updated.value):
        assert refused.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert refused.response["Error"]["Code"] == "ValidationException"
        assert refused.response["Error"]["Message"] == _refusal(shown)
    aliases = lam.list_aliases(FunctionName=fname)["Aliases"]
    assert [(a["Name"], a["RoutingConfig"]) for a in aliases] == [("live", {"AdditionalVersionWeights": {"2": 0.25}})]
