"""Fails when a setting or an implemented API operation is not documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from lambdad.config import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented():
    text = (DOCS / "configuration.md").read_text()
    for field in dataclasses.fields(Settings):
        assert f"LAMBDAD_{field.name.upper()}" in text, field.name


def test_every_implemented_operation_is_documented(inproc):
    operations = set(inproc.app.handlers())  # the server's own handler table
    assert {"CreateFunction", "Invoke", "ListFunctions"} <= operations
    text = (DOCS / "compatibility.md").read_text()
    for op in operations:
        assert f"| {op} |" in text, op


def test_every_iam_and_sts_operation_is_documented(inproc):
    """docs/iam.md's table names every IAM and STS operation the server has a handler for (``Put/Get/Delete/List
    of User, Group and Role policies`` standing for their twelve)."""
    from lambdad.iam.api import iam_handlers
    from lambdad.iam.sts import sts_handlers

    app = inproc.app
    text = (DOCS / "iam.md").read_text()
    for op in [*iam_handlers(app.iam, app.authorizer), *sts_handlers(app.iam, app.authorizer, app.sessions)]:
        words = re.fullmatch(r"(Put|Get|Delete|List|Attach|Detach|ListAttached)(User|Group|Role)(Policy|Policies)", op)
        if words and words.group(1) in ("Attach", "Detach", "ListAttached"):
            assert "Attach/Detach and ListAttached of User, Group and Role policies" in text, op
        elif words:
            assert "Put/Get/Delete/List of User, Group and Role policies" in text, op
        else:
            assert op in text, op


def test_readme_links_resolve():
    readme = (DOCS.parent / "README.md").read_text()
    for part in readme.split("](docs/")[1:]:
        assert (DOCS / part.split(")")[0]).exists(), part.split(")")[0]


def _implemented_features(operations: set[str], destinations: bool) -> dict[str, bool]:
    """Features the docs talk about, each with whether the code has it — read from the code, not the docs."""
    from lambdad.runtime_api import server as runtime_api

    features = {op: True for op in operations}
    features.update({
        "layers": "PublishLayerVersion" in operations,
        "Telemetry API": hasattr(runtime_api, "_TELEMETRY_PATH"),
        "Extensions API": hasattr(runtime_api, "_EXT_PREFIX"),
        "event-invoke config": "PutFunctionEventInvokeConfig" in operations,
        "destinations": destinations,
        "function URLs": "CreateFunctionUrlConfig" in operations,
    })
    return features


_NO_CLAUSE = r"(?:(?!\b(?:that|which|when|if|whose)\b)[^.])*?"  # the claim is about the feature, not a clause
_ABSENT = r"(?:do(?:es)? not exist|(?:is|are) not there|(?:is|are) (?:not|never) (?:yet )?(?:supported|implemented))"


def _destinations_built(inproc) -> bool:
    """Whether the server takes an event invoke config that names a destination (refused until they are built)."""
    from botocore.exceptions import ClientError

    from tests.server import create_python_function

    lam = inproc.client()
    try:
        name = "docs-destinations-probe"
        create_python_function(lam, name, "def handler(e, c):\n    return 1\n")
        arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        try:
            lam.put_function_event_invoke_config(FunctionName=name, DestinationConfig={"OnFailure": {"Destination": arn}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NotImplementedException":
                return False
            raise
        finally:
            lam.delete_function(FunctionName=name)
        return True
    finally:
        lam.close()


def test_no_doc_says_an_implemented_feature_is_absent(inproc):
    """A sentence that says a feature is absent while the code has it (a stale "not yet") fails here."""
    texts = {p.name: p.read_text() for p in [DOCS.parent / "README.md", *DOCS.glob("*.md")]}
    features = _implemented_features(set(inproc.app.handlers()), _destinations_built(inproc))
    for feature, present in features.items():
        if not present:
            continue
        # an operation's name as written (not "event-invoke"); a feature's words in any case
        claim = re.compile(rf"(?<![-\w]){re.escape(feature)}\b{_NO_CLAUSE}\b{_ABSENT}", 0 if feature[0].isupper()
                           and " " not in feature else re.I)
        for name, text in texts.items():
            for sentence in re.split(r"(?<=[.;|])\s", text.replace("\n", " ")):
                assert not claim.search(sentence), f"{name} says {feature} is absent: {sentence.strip()}"


def test_every_variable_the_docs_name_is_a_setting():
    """No doc names a LAMBDAD_* variable that does not exist (a setting renamed or removed): each is a setting, or
    a variable the code itself sets or reads (one it hands to a function's environment)."""
    settings = {f"LAMBDAD_{f.name.upper()}" for f in dataclasses.fields(Settings)}
    for source in (DOCS.parent / "lambdad").rglob("*.py"):
        settings |= set(re.findall(r"\bLAMBDAD_[A-Z0-9_]*[A-Z0-9]\b", source.read_text()))
    for path in [DOCS.parent / "README.md", *DOCS.glob("*.md")]:
        for name in set(re.findall(r"\bLAMBDAD_[A-Z0-9_]*[A-Z0-9]\b", path.read_text())):
            assert name in settings, f"{path.name} names {name}, which is not a setting"
