"""A SAM template read and expanded: YAML with CloudFormation's short-form tags, AWS's own SAM transform, and the
local code it names.

1. Read: cfn-flip's loader (``cfn_tools.load_yaml``, from the aws-cloudformation project) maps ``!Ref``, ``!Sub``,
   ``!GetAtt`` (``A.B`` split as CloudFormation splits it), ``!Join``, ``!If``, ``!Select``, ``!Split``,
   ``!FindInMap``, ``!Equals``, ``!Not``, ``!And``, ``!Or``, ``!Base64``, ``!ImportValue``, ``!Condition``,
   ``!GetAZs``, ``!Cidr`` to their long forms; JSON templates read the same way. Dates and the like become the
   strings CloudFormation sees.
2. Local code: a ``CodeUri`` / ``ContentUri`` (SAM) or ``Code`` / ``Content`` (plain CloudFormation) that is a
   path is packaged (code.py, built first by builder.py when it has a requirements.txt or package.json) and
   replaced by ``s3://lambdad-local/<sha256>`` before the transform, as ``sam package`` replaces it by the
   uploaded object; so a change of code changes the version SAM's AutoPublishAlias publishes, as on AWS. The
   engine maps the placeholder back to the package.
3. Expand: ``samtranslator`` (aws-sam-translator, what SAM CLI runs) with the parameter values and AWS's
   managed policy names read from the server's IAM. Globals are its business. Its errors are reported as it words
   them.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from lambdad.deploy.builder import BuildError
from lambdad.deploy.code import Package, PackageError, package_path

__all__ = ["Template", "TemplateError", "load_template", "LOCAL_BUCKET"]

LOCAL_BUCKET = "lambdad-local"

# (resource type, property) whose string value is a local path to package
_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Lambda::Function": "Code",
    "AWS::Lambda::LayerVersion": "Content",
}

Builder = Callable[[Path, str | None, str | None], Path]  # (source dir, runtime, architecture) -> built dir


class TemplateError(Exception):
    """A template that cannot be read or expanded: the message says where."""


@dataclass
class Template:
    path: Path
    raw: dict[str, Any]  # as written (long-form intrinsics)
    expanded: dict[str, Any] = field(default_factory=dict)  # CloudFormation after the SAM transform
    packages: dict[str, Package] = field(default_factory=dict)  # S3 key (sha256) -> package
    code_dirs: dict[str, Path] = field(default_factory=dict)  # S3 key -> the source path (for --watch)

    @property
    def hash(self) -> str:
        """What identifies this deploy's input: the template text and every package's digest."""
        digest = hashlib.sha256(self.path.read_bytes())
        for key in sorted(self.packages):
            digest.update(key.encode())
        return digest.hexdigest()


def load_template(path: Path) -> Template:
    from cfn_tools import load_yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise TemplateError(f"cannot read the template {path}: {exc.strerror}") from None
    try:
        loaded = load_yaml(text)
    except Exception as exc:  # yaml's errors carry the line and column
        raise TemplateError(f"{path}: not a valid YAML or JSON template: {exc}") from None
    raw = _plain(loaded)
    if not isinstance(raw, dict) or not isinstance(raw.get("Resources"), dict) or not raw["Resources"]:
        raise TemplateError(f"{path}: a template needs a Resources section with at least one resource")
    return Template(path, raw)


def package_local_code(template: Template, parameters: Mapping[str, Any], build: Builder | None) -> dict[str, Any]:
    """A copy of the raw template whose local code paths are ``s3://lambdad-local/<sha256>`` placeholders; the
    packages are kept in ``template.packages``."""
    doc = copy.deepcopy(template.raw)
    base = template.path.parent
    function_globals = (doc.get("Globals") or {}).get("Function") or {}
    for logical_id, resource in doc["Resources"].items():
        if not isinstance(resource, dict):
            raise TemplateError(f"resource {logical_id}: not a mapping")
        kind = str(resource.get("Type"))
        prop = _CODE_PROPERTIES.get(kind)
        if prop is None:
            continue
        props = resource.setdefault("Properties", {})
        value = props.get(prop)
        if value is None and kind == "AWS::Serverless::Function" and "InlineCode" not in props \
                and "ImageUri" not in props:
            value = function_globals.get(prop)
        if not isinstance(value, str) or value.startswith("s3://"):
            continue
        runtime = _scalar(props.get("Runtime") or function_globals.get("Runtime"), parameters)
        arch = _scalar((props.get("Architectures") or function_globals.get("Architectures") or [None])[0], parameters)
        source = (base / value).resolve()
        try:
            built = build(source, runtime, arch) if build is not None and source.is_dir() else source
            package = package_path(built)
        except (PackageError, BuildError) as exc:
            raise TemplateError(f"resource {logical_id}: {prop} {value!r}: {exc}") from None
        key = package.hexdigest
        template.packages[key] = package
        template.code_dirs[key] = source
        # SAM's properties take an S3 URI; CloudFormation's a location (as `aws cloudformation package` writes)
        props[prop] = f"s3://{LOCAL_BUCKET}/{key}" if kind.startswith("AWS::Serverless::") else {
            "S3Bucket": LOCAL_BUCKET, "S3Key": key}
    return doc


def expand(template: Template, parameters: Mapping[str, Any], iam_client: Any, region: str,
           build: Builder | None = None) -> dict[str, Any]:
    """The template as CloudFormation: SAM's transform applied when it names ``AWS::Serverless-2016-10-31``."""
    doc = package_local_code(template, parameters, build)
    transforms = doc.get("Transform") or []
    if isinstance(transforms, str):
        transforms = [transforms]
    others = [t for t in transforms if t != "AWS::Serverless-2016-10-31"]
    if others:
        raise TemplateError(f"transform {', '.join(map(str, others))} is not supported (only "
                            "AWS::Serverless-2016-10-31)")
    if transforms:
        import boto3
        from samtranslator.metrics.metrics import Metrics
        from samtranslator.model.exceptions import InvalidDocumentException
        from samtranslator.parser.parser import Parser
        from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
        from samtranslator.translator.translator import Translator

        policies = ManagedPolicyLoader(iam_client)
        metrics = Metrics()  # published nowhere (its default publisher), and so not warned about as unpublished
        try:
            translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=region), metrics=metrics)
            doc = translator.translate(doc, parameter_values=dict(parameters),
                                       get_managed_policy_map=policies.load)
            metrics.publish()
        except InvalidDocumentException as exc:
            causes = "; ".join(str(c.message) for c in exc.causes)
            raise TemplateError(f"{template.path}: {causes or exc.message}") from None
    template.expanded = _plain(doc)
    return template.expanded


def _scalar(value: Any, parameters: Mapping[str, Any]) -> str | None:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        value = parameters.get(str(value["Ref"]))
    return value if isinstance(value, str) else None


def _plain(value: Any) -> Any:
    """Plain dicts, lists and scalars; dates and times as the strings CloudFormation reads them as."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return json.loads(json.dumps(value, default=str))
