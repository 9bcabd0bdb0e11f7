"""Pure logic behind versions, aliases and tags: qualifier shapes, function ARNs, the PublishVersion fingerprint,
and the alias and config records as the store keeps them."""

from __future__ import annotations

import pytest

from lambdad.arn import FunctionRef, is_alias_name, is_version_number, parse_function_arn
from lambdad.errors import ResourceNotFoundException
from lambdad.functions.model import Alias, FunctionConfig

REGION, ACCOUNT = "us-east-1", "123456789012"


@pytest.mark.parametrize("qualifier, version, alias", [
    ("1", True, False), ("0042", True, False), ("$LATEST", False, False), ("live", False, True),
    ("v1", False, True), ("1a", False, True), ("a.b", False, False), ("", False, False),
])
def test_qualifier_shapes(qualifier, version, alias):
    assert is_version_number(qualifier) is version
    assert is_alias_name(qualifier) is alias


def test_parse_function_arn():
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn"
    assert parse_function_arn(arn, region=REGION, account_id=ACCOUNT) == FunctionRef("fn", None)
    assert parse_function_arn(arn + ":7", region=REGION, account_id=ACCOUNT) == FunctionRef("fn", "7")
    assert parse_function_arn(arn + ":$LATEST", region=REGION, account_id=ACCOUNT) == FunctionRef("fn", "$LATEST")
    assert parse_function_arn("fn", region=REGION, account_id=ACCOUNT) is None
    assert parse_function_arn(f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:l", region=REGION, account_id=ACCOUNT) is None
    with pytest.raises(ResourceNotFoundException):
        parse_function_arn(f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:fn", region=REGION, account_id=ACCOUNT)
    with pytest.raises(ResourceNotFoundException):
        parse_function_arn(f"arn:aws:lambda:{REGION}:000000000000:function:fn", region=REGION, account_id=ACCOUNT)


def _config(**changes) -> FunctionConfig:
    base = FunctionConfig(
        name="fn", version="$LATEST", runtime="python3.12", handler="app.handler",
        role=f"arn:aws:iam::{ACCOUNT}:role/r", code_sha256="c2hh", code_hash="ab" * 32, code_size=10,
        last_modified="2026-01-01T00:00:00.000+0000", revision_id="r1",
    )
    return base.replace(**changes)


def test_fingerprint_ignores_what_changes_on_every_write():
    config = _config()
    same = config.replace(version="3", revision_id="r2", last_modified="2027-01-01T00:00:00.000+0000")
    assert same.fingerprint() == config.fingerprint()
    for change in ({"memory_size": 256}, {"code_sha256": "b3RoZXI="}, {"description": "d"},
                   {"environment": {"A": "1"}}, {"handler": "other.handler"}):
        assert config.replace(**change).fingerprint() != config.fingerprint(), change


def test_records_round_trip():
    alias = Alias(function_name="fn", name="live", function_version="1", revision_id="r", description="d",
                  weights={"2": 0.25})
    assert Alias.from_json(alias.to_json()) == alias
    assert alias.versions() == {"1", "2"}
    assert alias.to_api(REGION, ACCOUNT)["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}
    config = _config(version="4", environment={"A": "1"})
    assert FunctionConfig.from_json(config.to_json()) == config
    assert config.to_api(REGION, ACCOUNT)["FunctionArn"].endswith(":function:fn:4")
    assert _config().to_api(REGION, ACCOUNT)["FunctionArn"].endswith(":function:fn")
    assert _config().to_api(REGION, ACCOUNT, "live")["FunctionArn"].endswith(":function:fn:live")
