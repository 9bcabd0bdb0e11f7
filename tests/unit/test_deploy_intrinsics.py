"""CloudFormation's intrinsic functions, parameters and conditions as lambdad deploy resolves them
(lambdad/deploy/intrinsics.py), and the short-form tags read by the template loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdad.deploy.intrinsics import NO_VALUE, Resolver, ResolveError, parameter_values, references
from lambdad.deploy.template import load_template

PSEUDO = {"AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012", "AWS::StackName": "st"}
ATTRS = {("Fn", "Arn"): "arn:aws:lambda:eu-west-1:123456789012:function:st-Fn", ("Fn", None): "st-Fn"}


def resolver(parameters=None, conditions=None, mappings=None) -> Resolver:
    def lookup(logical, attr):
        try:
            return ATTRS[(logical, attr)]
        except KeyError:
            raise ResolveError(f"no {logical}.{attr}") from None

    return Resolver(parameters or {}, PSEUDO, mappings or {}, conditions or {}, lookup,
                    lambda name: {"shared-Arn": "arn:x"}[name])


def test_sub_refs_getatt_and_literals() -> None:
    r = resolver({"Env": "dev"})
    assert r.resolve({"Fn::Sub": "${AWS::StackName}-${Env}-${Fn.Arn}-${!Keep}"}) == \
        f"st-dev-{ATTRS[('Fn', 'Arn')]}-${{Keep}}"
    assert r.resolve({"Fn::Sub": ["${A}/${Fn}", {"A": {"Ref": "AWS::Region"}}]}) == "eu-west-1/st-Fn"


def test_if_with_no_value_removes_the_property() -> None:
    r = resolver({"Stage": "dev"}, {"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}})
    out = r.resolve({"A": {"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]}, "B": [1, {"Ref": "AWS::NoValue"}]})
    assert out == {"B": [1]}
    assert r.resolve({"Ref": "AWS::NoValue"}) is NO_VALUE


def test_conditions_combine() -> None:
    conditions = {"A": {"Fn::Equals": ["x", "x"]}, "B": {"Fn::Not": [{"Condition": "A"}]},
                  "C": {"Fn::Or": [{"Condition": "B"}, {"Fn::And": [{"Condition": "A"}, True]}]}}
    r = resolver(conditions=conditions)
    assert (r.condition("A"), r.condition("B"), r.condition("C")) == (True, False, True)
    with pytest.raises(ResolveError):
        r.condition("Missing")


def test_join_select_split_findinmap_base64_import() -> None:
    r = resolver(mappings={"M": {"dev": {"Size": 256}}})
    assert r.resolve({"Fn::Join": [",", ["a", {"Ref": "AWS::AccountId"}]]}) == "a,123456789012"
    assert r.resolve({"Fn::Select": [1, {"Fn::Split": ["/", "a/b/c"]}]}) == "b"
    assert r.resolve({"Fn::FindInMap": ["M", "dev", "Size"]}) == 256
    assert r.resolve({"Fn::FindInMap": ["M", "prod", "Size", {"DefaultValue": 128}]}) == 128
    assert r.resolve({"Fn::Base64": "hi"}) == "aGk="
    assert r.resolve({"Fn::ImportValue": "shared-Arn"}) == "arn:x"
    with pytest.raises(ResolveError):
        r.resolve({"Fn::FindInMap": ["M", "prod", "Size"]})


def test_parameters_are_checked_as_cloudformation_checks_them() -> None:
    declared = {"Stage": {"Type": "String", "AllowedValues": ["dev", "prod"], "Default": "dev"},
                "Size": {"Type": "Number", "Default": 128}, "Names": {"Type": "CommaDelimitedList", "Default": "a,b"},
                "Need": {"Type": "String"}}
    assert parameter_values(declared, {"Need": "x"}) == {"Stage": "dev", "Size": "128", "Names": ["a", "b"],
                                                         "Need": "x"}
    for overrides, message in (({}, "Need] must have values"), ({"Need": "x", "Stage": "qa"}, "AllowedValues"),
                               ({"Need": "x", "Size": "big"}, "must be a number"),
                               ({"Need": "x", "Nope": "1"}, "[Nope] do not exist")):
        with pytest.raises(ResolveError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parameter_values(declared, overrides)


def test_references_name_what_a_resource_depends_on() -> None:
    props = {"A": {"Ref": "Role"}, "B": {"Fn::GetAtt": "Fn.Arn"}, "C": {"Fn::Sub": "${Layer}-${Fn2.Arn}-${!No}"},
             "D": {"Fn::Sub": ["${X}", {"X": {"Ref": "Param"}}]}}
    assert references(props) == {"Role", "Fn", "Layer", "Fn2", "Param"}


def test_short_form_tags_read_as_long_forms(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("Resources:\n  F:\n    Type: AWS::Lambda::Function\n    Properties:\n"
                    "      Role: !GetAtt R.Arn\n      Handler: !Sub '${AWS::Region}'\n"
                    "      Description: !If [C, !Ref P, !Ref 'AWS::NoValue']\n"
                    "      Layers: !Split [',', !Join [',', [a, b]]]\n      Tags: !FindInMap [M, a, b]\n"
                    "      When: 2026-01-01\n")
    props = load_template(path).raw["Resources"]["F"]["Properties"]
    assert props["Role"] == {"Fn::GetAtt": ["R", "Arn"]}
    assert props["Handler"] == {"Fn::Sub": "${AWS::Region}"}
    assert props["Description"] == {"Fn::If": ["C", {"Ref": "P"}, {"Ref": "AWS::NoValue"}]}
    assert props["Layers"] == {"Fn::Split": [",", {"Fn::Join": [",", ["a", "b"]]}]}
    assert props["Tags"] == {"Fn::FindInMap": ["M", "a", "b"]}
    assert props["When"] == "2026-01-01"


def test_parameter_overrides_are_read_as_sam_deploy_reads_them() -> None:
    import click

    from lambdad.cli_deploy import _overrides

    assert _overrides(("Schedule=rate(5 minutes)",)) == {"Schedule": "rate(5 minutes)"}
    assert _overrides(("A=1 B=2", "C=x y", "D=")) == {"A": "1", "B": "2", "C": "x y", "D": ""}
    assert _overrides(("ParameterKey=K,ParameterValue=a=b",)) == {"K": "a=b"}
    with pytest.raises(click.UsageError):
        _overrides(("novalue",))
