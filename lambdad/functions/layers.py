"""The layers service: publish, read, list and delete layer versions and their permission policies, with Lambda's
rules; and what functions need of a layer (resolving a layer version ARN, the merged /opt tree).

A layer version is immutable once published. Version numbers run 1, 2, 3… per layer name and are never reused,
even after every version is deleted. DeleteLayerVersion hides a version from the API (it can no longer be read,
listed, or added to a function), but its record and its content stay, so functions that already use it keep
working, as on Lambda (its content goes once none does: ``functions/collector.py``). A layer's content is a zip in the blob store, shared with function code by its hash.

At run time a function's layers are merged in order into one read-only tree (later layers win, file by file),
built once per distinct list of layer contents under ``<data-dir>/opt/<hash of the list>`` and mounted at /opt.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

from lambdad.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.functions.commands import AddLayerPermission, PublishLayerVersion
from lambdad.functions.code import CodeTrees, check_zip
from lambdad.store.interfaces import BlobStore, LayerStore

__all__ = ["LayerVersion", "LayerService", "LayerListing", "layer_arn", "opt_key"]

_NOT_FOUND = "The resource you requested does not exist."
_PAGE = 50
_LAYER_VERSION_ARN = re.compile(r"arn:([a-zA-Z0-9-]+):lambda:([a-zA-Z0-9-]+):(\d{12}):layer:([a-zA-Z0-9-_]+):([0-9]+)")


def layer_arn(region: str, account_id: str, name: str, version: int | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account_id}:layer:{name}"
    return arn if version is None else f"{arn}:{version}"


def opt_key(code_hashes: tuple[str, ...]) -> str:
    """The name of the merged /opt tree of layers with these contents, in this order."""
    return hashlib.sha256(":".join(code_hashes).encode()).hexdigest()


def _now() -> str:
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


@dataclass(frozen=True)
class LayerVersion:
    """One published version of a layer, with its permission policy (statements in the order added)."""

    name: str
    version: int
    code_hash: str  # hex SHA-256 of the zip: the blob's key
    code_sha256: str  # base64, as Lambda reports it
    code_size: int
    unzipped_size: int
    created_date: str
    description: str = ""
    license_info: str | None = None
    compatible_runtimes: tuple[str, ...] = ()
    compatible_architectures: tuple[str, ...] = ()
    statements: tuple[Mapping[str, Any], ...] = ()
    revision_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    deleted: bool = False

    def summary(self, region: str, account_id: str) -> dict[str, Any]:
        """The LayerVersionsListItem shape."""
        out: dict[str, Any] = {
            "LayerVersionArn": layer_arn(region, account_id, self.name, self.version),
            "Version": self.version,
            "Description": self.description,
            "CreatedDate": self.created_date,
        }
        if self.compatible_runtimes:
            out["CompatibleRuntimes"] = list(self.compatible_runtimes)
        if self.compatible_architectures:
            out["CompatibleArchitectures"] = list(self.compatible_architectures)
        if self.license_info is not None:
            out["LicenseInfo"] = self.license_info
        return out

    def to_api(self, region: str, account_id: str, location: str) -> dict[str, Any]:
        """The GetLayerVersion / PublishLayerVersion response; ``location`` is the signed download URL."""
        out = self.summary(region, account_id)
        out["LayerArn"] = layer_arn(region, account_id, self.name)
        out["Content"] = {"Location": location, "CodeSha256": self.code_sha256, "CodeSize": self.code_size}
        return out

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "LayerVersion":
        data = json.loads(text)
        for key in ("compatible_runtimes", "compatible_architectures", "statements"):
            data[key] = tuple(data[key])
        return cls(**data)


@dataclass(frozen=True)
class LayerListing:
    items: list[LayerVersion]
    next_marker: str | None


class LayerService:
    def __init__(self, store: LayerStore, blobs: BlobStore, opt_trees: CodeTrees, *, region: str,
                 account_id: str) -> None:
        self._store = store
        self._blobs = blobs
        self._opt = opt_trees
        self.region = region
        self.account_id = account_id
        self._versions: dict[str, dict[int, LayerVersion]] = {}  # name -> version -> record (deleted ones too)
        self._last: dict[str, int] = {}  # name -> highest version ever published
        self._lock = asyncio.Lock()
        self._publishing = 0  # publishes in progress

    async def load(self) -> None:
        versions, counters = await self._store.load_layers()
        for text in versions:
            record = LayerVersion.from_json(text)
            self._versions.setdefault(record.name, {})[record.version] = record
        self._last.update(counters)

    # -- reads -----------------------------------------------------------------------------------------------

    def records(self) -> list[LayerVersion]:
        """Every layer version, deleted ones too."""
        return [r for versions in self._versions.values() for r in versions.values()]

    def busy(self) -> bool:
        """Whether a publish is in progress (its content may be stored but not yet recorded)."""
        return self._publishing > 0

    def get(self, name: str, version: int) -> LayerVersion:
        record = self._versions.get(name, {}).get(version)
        if record is None or record.deleted:
            raise ResourceNotFoundException(_NOT_FOUND)
        return record

    def get_by_arn(self, arn: str) -> LayerVersion:
        m = _LAYER_VERSION_ARN.fullmatch(arn)
        if m is None or (m.group(2), m.group(3)) != (self.region, self.account_id):
            raise ResourceNotFoundException(_NOT_FOUND)
        return self.get(m.group(4), int(m.group(5)))

    def for_function(self, arn: str, *, include_deleted: bool = False) -> LayerVersion:
        """The layer version a function's ``Layers`` names, with Lambda's error when there is none. A deleted
        version is found only with ``include_deleted`` (a function that already uses it keeps it)."""
        m = _LAYER_VERSION_ARN.fullmatch(arn)
        record = None
        if m is not None and (m.group(2), m.group(3)) == (self.region, self.account_id):
            record = self._versions.get(m.group(4), {}).get(int(m.group(5)))
        if record is None or (record.deleted and not include_deleted):
            raise InvalidParameterValueException(f"Layer version {arn} does not exist.")
        return record

    def list_versions(self, name: str, runtime: str | None, architecture: str | None, marker: str | None,
                      max_items: int | None) -> LayerListing:
        """The versions of ``name`` that match the filters, newest first (as Lambda lists them)."""
        items = [r for _, r in sorted(self._versions.get(name, {}).items(), reverse=True)
                 if not r.deleted and _matches(r, runtime, architecture)]
        return _page(items, marker, max_items, lambda r: f"{r.version:012d}", descending=True)

    def list_layers(self, runtime: str | None, architecture: str | None, marker: str | None,
                    max_items: int | None) -> LayerListing:
        """For each layer by name, its newest version that matches the filters (layers with none are left out)."""
        items = []
        for name in sorted(self._versions):
            matching = [r for _, r in sorted(self._versions[name].items(), reverse=True)
                        if not r.deleted and _matches(r, runtime, architecture)]
            if matching:
                items.append(matching[0])
        return _page(items, marker, max_items, lambda r: r.name)

    def opt_tree(self, code_hashes: tuple[str, ...]) -> str | None:
        """The merged tree of these layer contents (built by ``ensure_opt_tree``), or None without layers."""
        return str(self._opt.path(opt_key(code_hashes))) if code_hashes else None

    async def ensure_opt_tree(self, code_hashes: tuple[str, ...]) -> None:
        if code_hashes:
            key = opt_key(code_hashes)
            if not self._opt.path(key).is_dir():  # the blobs' paths may mean fetching them (a cluster): a thread
                await asyncio.to_thread(lambda: self._opt.ensure_merged(key, [self._blobs.path(h) for h in code_hashes]))

    # -- writes ----------------------------------------------------------------------------------------------

    async def publish(self, command: PublishLayerVersion) -> LayerVersion:
        content = command.content
        if content.from_s3:
            raise InvalidParameterValueException(
                "lambdad cannot fetch layer content from S3 yet; upload the .zip file directly with ZipFile."
            )
        if content.zip_file is None:
            raise InvalidParameterValueException("Please provide a source for layer content.")
        data = content.zip_file
        unzipped = await asyncio.to_thread(check_zip, data, "PublishLayerVersion")
        self._publishing += 1
        try:
            return await self._publish(command, data, unzipped)
        finally:
            self._publishing -= 1

    async def _publish(self, command: PublishLayerVersion, data: bytes, unzipped: int) -> LayerVersion:
        name = command.name
        async with self._blobs.guard:  # not while the collector deletes (see FileBlobStore.guard)
            code_hash = await asyncio.to_thread(self._blobs.put, data)
        async with self._lock:
            version = self._last.get(name, 0) + 1
            record = LayerVersion(
                name=name, version=version, code_hash=code_hash,
                code_sha256=base64.b64encode(bytes.fromhex(code_hash)).decode(), code_size=len(data),
                unzipped_size=unzipped, created_date=_now(), description=command.description,
                license_info=command.license_info, compatible_runtimes=command.compatible_runtimes,
                compatible_architectures=command.compatible_architectures,
            )
            await self._store.put_layer_version(record.name, record.version, record.to_json(), counter=version)
            self._versions.setdefault(name, {})[version] = record
            self._last[name] = version
        return record

    async def delete(self, name: str, version: int) -> None:
        """Hide a version; deleting one that does not exist is not an error (as on Lambda)."""
        async with self._lock:
            record = self._versions.get(name, {}).get(version)
            if record is None or record.deleted:
                return
            record = dataclasses.replace(record, deleted=True, statements=())
            await self._store.put_layer_version(name, version, record.to_json())
            self._versions[name][version] = record

    # -- permissions -----------------------------------------------------------------------------------------

    def policy(self, name: str, version: int) -> tuple[str, str]:
        record = self.get(name, version)
        if not record.statements:
            raise ResourceNotFoundException("No policy is associated with the given resource.")
        policy = {"Version": "2012-10-17", "Id": "default", "Statement": list(record.statements)}
        return json.dumps(policy, separators=(",", ":")), record.revision_id

    async def add_permission(self, command: AddLayerPermission) -> tuple[dict[str, Any], str]:
        name, version = command.name, command.version
        async with self._lock:
            record = self.get(name, version)
            _check_revision(record, command.revision_id)
            sid = command.statement_id
            if any(s["Sid"] == sid for s in record.statements):
                raise ResourceConflictException(
                    f"The statement id ({sid}) provided already exists. Please provide a new statement id, or "
                    "remove the existing statement."
                )
            principal = command.principal
            statement: dict[str, Any] = {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": "*" if principal == "*" else {
                    "AWS": principal if principal.startswith("arn:") else f"arn:aws:iam::{principal}:root"},
                "Action": command.action,
                "Resource": layer_arn(self.region, self.account_id, name, version),
            }
            if command.organization_id:
                statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": command.organization_id}}
            record = dataclasses.replace(record, statements=(*record.statements, statement),
                                         revision_id=str(uuid.uuid4()))
            await self._store.put_layer_version(name, version, record.to_json())
            self._versions[name][version] = record
        return statement, record.revision_id

    async def remove_permission(self, name: str, version: int, sid: str, revision_id: str | None) -> None:
        async with self._lock:
            record = self.get(name, version)
            _check_revision(record, revision_id)
            if not record.statements:
                raise ResourceNotFoundException("No policy is associated with the given resource.")
            kept = tuple(s for s in record.statements if s["Sid"] != sid)
            if len(kept) == len(record.statements):
                raise ResourceNotFoundException(f"Statement {sid} is not found in resource policy.")
            record = dataclasses.replace(record, statements=kept, revision_id=str(uuid.uuid4()))
            await self._store.put_layer_version(name, version, record.to_json())
            self._versions[name][version] = record


def _check_revision(record: LayerVersion, revision_id: str | None) -> None:
    if revision_id is not None and revision_id != record.revision_id:
        raise PreconditionFailedException(
            "The Revision Id provided does not match the latest Revision Id. "
            "Call the GetLayerPolicy API to retrieve the latest Revision Id"
        )


def _matches(record: LayerVersion, runtime: str | None, architecture: str | None) -> bool:
    if runtime is not None and runtime not in record.compatible_runtimes:
        return False
    return architecture is None or architecture in record.compatible_architectures


def _page(items: list[LayerVersion], marker: str | None, max_items: int | None, key: Any,
          descending: bool = False) -> LayerListing:
    start = 0
    if marker:
        try:
            after = base64.urlsafe_b64decode(marker.encode()).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidParameterValueException(f"Invalid marker: {marker}") from exc
        keys = [key(item) for item in items]
        if after in keys:
            start = keys.index(after) + 1
        else:
            start = next((i for i, k in enumerate(keys) if (k < after if descending else k > after)), len(keys))
    limit = max(1, min(max_items or _PAGE, _PAGE))
    page = items[start : start + limit]
    more = start + limit < len(items)
    next_marker = base64.urlsafe_b64encode(key(page[-1]).encode()).decode() if more and page else None
    return LayerListing(items=page, next_marker=next_marker)
