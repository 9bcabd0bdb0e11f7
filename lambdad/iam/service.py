"""IAM's entities — users, groups, roles, customer managed policies — and what policies apply to a caller.

Each entity is one JSON record in the store (``iam_entities``: kind, name, record, generation), kept in memory
here and written through; a write names the generation it was based on, so two nodes changing one entity at once
cannot lose a change (the second gets ``ConcurrentModification``, as IAM answers, and this node reads it again).
Users' access keys live in their own table and are read on each use (``auth``), so a key made, deactivated or
deleted anywhere counts at once. The operations take and return the botocore ``iam`` model's shapes (the query
protocol's codec turns them into XML); policy documents are returned URL-encoded, as IAM does (boto3 decodes
them). ARNs are made from the account id, the path and the name; IDs are random, with IAM's prefixes.

What applies to a caller (``identity_policies``): a user's inline and attached policies and those of its groups;
an assumed-role session's role's inline and attached policies. A role named by a function but not created in
IAM has none (its sessions hold only what resource policies grant them).

Not served: login profiles, MFA, SSH keys, server certificates, instance profiles, permissions boundaries,
service-linked roles, OIDC/SAML providers, account aliases and password policy.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import string
import time
import urllib.parse
from typing import Any, Callable, Iterable, Mapping

from lambdad.errors import LambdaError
from lambdad.iam.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
)
from lambdad.iam.managed import MANAGED_POLICIES
from lambdad.store.interfaces import IamStore, StoreConflict

__all__ = ["IamService", "unique_id", "new_user_record", "MAX_KEYS_PER_USER"]

MAX_KEYS_PER_USER = 2
MAX_POLICY_VERSIONS = 5
_ID_ALPHABET = string.ascii_uppercase + "234567"
_KINDS = ("user", "group", "role", "policy")


class ConcurrentModification(LambdaError):
    name, status, error_type = "ConcurrentModification", 409, "Sender"


def unique_id(prefix: str) -> str:
    """An IAM unique id: a four-letter prefix naming the kind (AIDA user, AROA role, AGPA group, ANPA policy,
    AKIA/ASIA key) and 16 characters."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def new_user_record(name: str, path: str = "/", tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"UserName": name, "UserId": unique_id("AIDA"), "Path": path, "CreateDate": time.time(),
            "Tags": tags or [], "InlinePolicies": {}, "AttachedPolicies": []}


def _when(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)


def _iso(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def _encoded(document: str) -> str:
    """A policy document as IAM returns it: URL-encoded (RFC 3986)."""
    return urllib.parse.quote(document, safe="")


def _check_path(path: str) -> None:
    if not (path.startswith("/") and path.endswith("/")):
        raise InvalidInput(f"The specified value for path is invalid. It must begin and end with / and contain "
                           f"only alphanumeric characters and/or / characters.")


class IamService:
    def __init__(self, store: IamStore, account: str, validate: Callable[..., str | None]) -> None:
        self._store = store
        self.account = account
        self._validate = validate  # (document, resource_based=) -> None, or MalformedPolicyDocument's message
        self._entities: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}
        self.generation = 0  # counts every change seen: what caches of decisions are keyed on
        self.key_changed: Callable[[str], None] = lambda _key_id: None  # an access key changed (caches drop it)

    # -- loading ---------------------------------------------------------------------------------------------

    async def load(self) -> None:
        self._entities = {(kind, name): (json.loads(record), gen)
                          for kind, name, record, gen in await self._store.load_iam() if kind in _KINDS}
        self.generation += 1

    async def ensure(self, params: Mapping[str, Any]) -> None:
        """Read the entities ``params`` names from the store when this node does not know them: ``lambdad keys``
        (another process) may have made a user since."""
        for kind, field in (("user", "UserName"), ("group", "GroupName"), ("role", "RoleName")):
            name = params.get(field)
            if isinstance(name, str) and (kind, name) not in self._entities:
                await self.reload(f"{kind}:{name}")

    async def reload(self, key: str) -> None:
        """Another node changed ``kind:name`` (cluster change notices)."""
        kind, _, name = key.partition(":")
        if kind == "key":
            self.key_changed(name)
            return
        if kind not in _KINDS:
            return
        stored = await self._store.get_iam(kind, name)
        if stored is None:
            self._entities.pop((kind, name), None)
        else:
            self._entities[(kind, name)] = (json.loads(stored[0]), stored[1])
        self.generation += 1

    # -- ARNs and views --------------------------------------------------------------------------------------

    def arn(self, kind: str, record: dict[str, Any]) -> str:
        name = record[{"user": "UserName", "group": "GroupName", "role": "RoleName", "policy": "PolicyName"}[kind]]
        return f"arn:aws:iam::{self.account}:{kind}{record.get('Path', '/')}{name}"

    def role_arn(self, name: str) -> str | None:
        found = self._entities.get(("role", name))
        return self.arn("role", found[0]) if found else None

    def _user_view(self, r: dict[str, Any]) -> dict[str, Any]:
        out = {"Path": r["Path"], "UserName": r["UserName"], "UserId": r["UserId"], "Arn": self.arn("user", r),
               "CreateDate": _when(r["CreateDate"])}
        if r.get("Tags"):
            out["Tags"] = r["Tags"]
        return out

    def _group_view(self, r: dict[str, Any]) -> dict[str, Any]:
        return {"Path": r["Path"], "GroupName": r["GroupName"], "GroupId": r["GroupId"],
                "Arn": self.arn("group", r), "CreateDate": _when(r["CreateDate"])}

    def _role_view(self, r: dict[str, Any]) -> dict[str, Any]:
        out = {"Path": r["Path"], "RoleName": r["RoleName"], "RoleId": r["RoleId"], "Arn": self.arn("role", r),
               "CreateDate": _when(r["CreateDate"]),
               "AssumeRolePolicyDocument": _encoded(r["AssumeRolePolicyDocument"]),
               "MaxSessionDuration": r.get("MaxSessionDuration", 3600)}
        if r.get("Description"):
            out["Description"] = r["Description"]
        if r.get("Tags"):
            out["Tags"] = r["Tags"]
        return out

    def _policy_view(self, r: dict[str, Any]) -> dict[str, Any]:
        if r.get("Arn", "").startswith("arn:aws:iam::aws:"):
            return {"PolicyName": r["PolicyName"], "PolicyId": "ANPA" + r["PolicyName"].upper()[:16].ljust(16, "X"),
                    "Arn": r["Arn"], "Path": r["Path"], "DefaultVersionId": r["DefaultVersionId"],
                    "AttachmentCount": self._attachments(r["Arn"]), "PermissionsBoundaryUsageCount": 0,
                    "IsAttachable": True, "Description": r["Description"], "CreateDate": _iso(r["CreateDate"]),
                    "UpdateDate": _iso(r["UpdateDate"])}
        arn = self.arn("policy", r)
        out = {"PolicyName": r["PolicyName"], "PolicyId": r["PolicyId"], "Arn": arn, "Path": r["Path"],
               "DefaultVersionId": r["DefaultVersionId"], "AttachmentCount": self._attachments(arn),
               "PermissionsBoundaryUsageCount": 0, "IsAttachable": True, "CreateDate": _when(r["CreateDate"]),
               "UpdateDate": _when(r["UpdateDate"])}
        if r.get("Description"):
            out["Description"] = r["Description"]
        return out

    # -- reading entities ------------------------------------------------------------------------------------

    def _get(self, kind: str, name: str) -> tuple[dict[str, Any], int]:
        found = self._entities.get((kind, name))
        if found is None:
            raise NoSuchEntity(f"The {kind} with name {name} cannot be found.")
        return found

    def _all(self, kind: str) -> list[dict[str, Any]]:
        return [record for (k, _), (record, _) in sorted(self._entities.items()) if k == kind]

    def path_of(self, kind: str, name: str) -> str:
        """The path of an entity ("/" for one that does not exist)."""
        found = self._entities.get((kind, name))
        return str(found[0].get("Path", "/")) if found else "/"

    def user_exists(self, name: str) -> bool:
        return ("user", name) in self._entities

    def user_id(self, name: str) -> str | None:
        found = self._entities.get(("user", name))
        return found[0]["UserId"] if found else None

    def role(self, name: str) -> dict[str, Any] | None:
        found = self._entities.get(("role", name))
        return found[0] if found else None

    def lambda_may_assume(self, role_arn: str) -> bool:
        """Whether ``role_arn`` is a role of this account whose trust policy lets Lambda assume it (an Allow of
        ``sts:AssumeRole`` to the service principal ``lambda.amazonaws.com``)."""
        name = role_arn.rsplit("/", 1)[-1]
        role = self.role(name)
        if role is None or self.arn("role", role) != role_arn:
            return False
        statements = json.loads(role["AssumeRolePolicyDocument"]).get("Statement", [])
        for st in statements if isinstance(statements, list) else [statements]:
            actions = st.get("Action", [])
            principal = st.get("Principal", {})
            services = principal.get("Service", []) if isinstance(principal, dict) else []
            if st.get("Effect") == "Allow" and "sts:AssumeRole" in (actions if isinstance(actions, list) else [actions]) \
                    and "lambda.amazonaws.com" in (services if isinstance(services, list) else [services]):
                return True
        return False

    def _managed(self, arn: str) -> dict[str, Any]:
        """The default version's document of a managed policy (AWS's or this account's)."""
        aws = MANAGED_POLICIES.get(arn)
        if aws is not None:
            return aws["Document"]  # type: ignore[no-any-return]
        record = self._policy_by_arn(arn)
        version = next(v for v in record["Versions"] if v["VersionId"] == record["DefaultVersionId"])
        return json.loads(version["Document"])  # type: ignore[no-any-return]

    def _policy_by_arn(self, arn: str) -> dict[str, Any]:
        prefix = f"arn:aws:iam::{self.account}:policy/"
        name = arn.rsplit("/", 1)[-1] if arn.startswith(prefix) else ""
        found = self._entities.get(("policy", name))
        if found is None or self.arn("policy", found[0]) != arn:
            raise NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")
        return found[0]

    def _attachments(self, arn: str) -> int:
        return sum(arn in record.get("AttachedPolicies", ()) for (kind, _), (record, _) in self._entities.items()
                   if kind in ("user", "group", "role"))

    # -- what applies to a caller ----------------------------------------------------------------------------

    def identity_policies(self, kind: str, name: str) -> list[dict[str, Any]]:
        """The policy documents of user ``name`` (with its groups') or role ``name``: empty when unknown."""
        found = self._entities.get((kind, name))
        if found is None:
            return []
        holders = [found[0]]
        if kind == "user":
            holders += [g for g in self._all("group") if name in g.get("Members", ())]
        documents: list[dict[str, Any]] = []
        for holder in holders:
            documents += [json.loads(d) for d in holder.get("InlinePolicies", {}).values()]
            for arn in holder.get("AttachedPolicies", ()):
                try:
                    documents.append(self._managed(arn))
                except NoSuchEntity:
                    continue
        return documents

    def groups_of(self, user: str) -> list[str]:
        return [g["GroupName"] for g in self._all("group") if user in g.get("Members", ())]

    # -- writing ---------------------------------------------------------------------------------------------

    async def _put(self, kind: str, name: str, record: dict[str, Any], expect: int | None) -> None:
        try:
            generation = await self._store.put_iam(kind, name, json.dumps(record), expect)
        except StoreConflict as exc:
            await self.reload(f"{kind}:{name}")
            if expect is None:
                raise EntityAlreadyExists(self._exists_message(kind, name)) from exc
            raise ConcurrentModification(f"The {kind} {name} was changed meanwhile; retry.") from exc
        self._entities[(kind, name)] = (record, generation)
        self.generation += 1

    async def _delete(self, kind: str, name: str, expect: int) -> None:
        if not await self._store.delete_iam(kind, name, expect):
            await self.reload(f"{kind}:{name}")
            raise ConcurrentModification(f"The {kind} {name} was changed meanwhile; retry.")
        self._entities.pop((kind, name), None)
        self.generation += 1

    async def _change(self, kind: str, name: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        record, generation = self._get(kind, name)
        updated: dict[str, Any] = json.loads(json.dumps(record))  # a copy: memory changes once the store took it
        change(updated)
        await self._put(kind, name, updated, generation)
        return updated

    @staticmethod
    def _exists_message(kind: str, name: str) -> str:
        if kind == "policy":
            return f"A policy called {name} already exists. Duplicate names are not allowed."
        return f"{kind.capitalize()} with name {name} already exists."

    def _document(self, document: str, resource_based: bool = False) -> str:
        problem = self._validate(document, resource_based=resource_based)
        if problem is not None:
            raise MalformedPolicyDocument(problem)
        return document

    # -- users -----------------------------------------------------------------------------------------------

    async def create_user(self, UserName: str, Path: str = "/", Tags: list[dict[str, str]] | None = None,
                          **_: Any) -> dict[str, Any]:
        _check_path(Path)
        record = new_user_record(UserName, Path, Tags)
        await self._put("user", UserName, record, None)
        return {"User": self._user_view(record)}

    def get_user(self, UserName: str) -> dict[str, Any]:
        return {"User": self._user_view(self._get("user", UserName)[0])}

    def list_users(self, PathPrefix: str = "/", **paging: Any) -> dict[str, Any]:
        users = [self._user_view(r) for r in self._all("user") if r["Path"].startswith(PathPrefix)]
        return _page("Users", users, **paging)

    async def delete_user(self, UserName: str) -> dict[str, Any]:
        record, generation = self._get("user", UserName)
        if await self._store.list_access_keys(UserName):
            raise DeleteConflict("Cannot delete entity, must delete access keys first.")
        if record.get("InlinePolicies"):
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        if record.get("AttachedPolicies"):
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        if self.groups_of(UserName):
            raise DeleteConflict("Cannot delete entity, must remove users from group first.")
        await self._delete("user", UserName, generation)
        return {}

    # -- access keys -----------------------------------------------------------------------------------------

    async def create_access_key(self, UserName: str) -> dict[str, Any]:
        self._get("user", UserName)
        key_id, secret, now = unique_id("AKIA"), secrets.token_urlsafe(30), time.time()
        try:
            await self._store.put_access_key(key_id, UserName, secret, now, most=MAX_KEYS_PER_USER)
        except StoreConflict as exc:
            raise LimitExceeded(f"Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}") from exc
        return {"AccessKey": {"UserName": UserName, "AccessKeyId": key_id, "Status": "Active",
                              "SecretAccessKey": secret, "CreateDate": _when(now)}}

    async def list_access_keys(self, UserName: str, **paging: Any) -> dict[str, Any]:
        self._get("user", UserName)
        keys = [{"UserName": user, "AccessKeyId": key_id, "Status": status, "CreateDate": _when(created)}
                for user, key_id, _secret, status, created in await self._store.list_access_keys(UserName)]
        return _page("AccessKeyMetadata", keys, **paging)

    async def update_access_key(self, UserName: str, AccessKeyId: str, Status: str) -> dict[str, Any]:
        self._get("user", UserName)
        done = await self._store.update_access_key(AccessKeyId, UserName, Status)
        self.key_changed(AccessKeyId)  # after the write: a lookup meanwhile may have kept the old state
        if not done:
            raise NoSuchEntity(f"The Access Key with id {AccessKeyId} cannot be found.")
        return {}

    async def delete_access_key(self, UserName: str, AccessKeyId: str) -> dict[str, Any]:
        self._get("user", UserName)
        done = await self._store.delete_access_key(AccessKeyId, UserName)
        self.key_changed(AccessKeyId)
        if not done:
            raise NoSuchEntity(f"The Access Key with id {AccessKeyId} cannot be found.")
        return {}

    # -- groups ----------------------------------------------------------------------------------------------

    async def create_group(self, GroupName: str, Path: str = "/") -> dict[str, Any]:
        _check_path(Path)
        record = {"GroupName": GroupName, "GroupId": unique_id("AGPA"), "Path": Path, "CreateDate": time.time(),
                  "InlinePolicies": {}, "AttachedPolicies": [], "Members": []}
        await self._put("group", GroupName, record, None)
        return {"Group": self._group_view(record)}

    def get_group(self, GroupName: str, **paging: Any) -> dict[str, Any]:
        record = self._get("group", GroupName)[0]
        users = [self._user_view(self._entities[("user", u)][0]) for u in record["Members"]
                 if ("user", u) in self._entities]
        return {"Group": self._group_view(record), **_page("Users", users, **paging)}

    def list_groups(self, PathPrefix: str = "/", **paging: Any) -> dict[str, Any]:
        groups = [self._group_view(r) for r in self._all("group") if r["Path"].startswith(PathPrefix)]
        return _page("Groups", groups, **paging)

    def list_groups_for_user(self, UserName: str, **paging: Any) -> dict[str, Any]:
        self._get("user", UserName)
        groups = [self._group_view(self._get("group", g)[0]) for g in self.groups_of(UserName)]
        return _page("Groups", groups, **paging)

    async def add_user_to_group(self, GroupName: str, UserName: str) -> dict[str, Any]:
        self._get("user", UserName)
        await self._change("group", GroupName, lambda r: None if UserName in r["Members"]
                           else r["Members"].append(UserName))
        return {}

    async def remove_user_from_group(self, GroupName: str, UserName: str) -> dict[str, Any]:
        self._get("user", UserName)
        if UserName not in self._get("group", GroupName)[0]["Members"]:
            raise NoSuchEntity(f"The user with name {UserName} cannot be found in group {GroupName}.")
        await self._change("group", GroupName, lambda r: r["Members"].remove(UserName))
        return {}

    async def delete_group(self, GroupName: str) -> dict[str, Any]:
        record, generation = self._get("group", GroupName)
        if record["Members"]:
            raise DeleteConflict("Cannot delete entity, must remove users from group first.")
        if record["InlinePolicies"]:
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        if record["AttachedPolicies"]:
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        await self._delete("group", GroupName, generation)
        return {}

    # -- roles -----------------------------------------------------------------------------------------------

    async def create_role(self, RoleName: str, AssumeRolePolicyDocument: str, Path: str = "/",
                          Description: str | None = None, MaxSessionDuration: int = 3600,
                          Tags: list[dict[str, str]] | None = None, **_: Any) -> dict[str, Any]:
        _check_path(Path)
        record = {"RoleName": RoleName, "RoleId": unique_id("AROA"), "Path": Path, "CreateDate": time.time(),
                  "AssumeRolePolicyDocument": self._document(AssumeRolePolicyDocument, resource_based=True),
                  "Description": Description, "MaxSessionDuration": MaxSessionDuration, "Tags": Tags or [],
                  "InlinePolicies": {}, "AttachedPolicies": []}
        await self._put("role", RoleName, record, None)
        return {"Role": self._role_view(record)}

    def get_role(self, RoleName: str) -> dict[str, Any]:
        return {"Role": self._role_view(self._get("role", RoleName)[0])}

    def list_roles(self, PathPrefix: str = "/", **paging: Any) -> dict[str, Any]:
        roles = [self._role_view(r) for r in self._all("role") if r["Path"].startswith(PathPrefix)]
        return _page("Roles", roles, **paging)

    async def update_assume_role_policy(self, RoleName: str, PolicyDocument: str) -> dict[str, Any]:
        document = self._document(PolicyDocument, resource_based=True)
        await self._change("role", RoleName, lambda r: r.__setitem__("AssumeRolePolicyDocument", document))
        return {}

    async def delete_role(self, RoleName: str) -> dict[str, Any]:
        record, generation = self._get("role", RoleName)
        if record["InlinePolicies"]:
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        if record["AttachedPolicies"]:
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        await self._delete("role", RoleName, generation)
        return {}

    # -- inline policies (of a user, group or role) ----------------------------------------------------------

    async def put_inline(self, kind: str, name: str, PolicyName: str, PolicyDocument: str) -> dict[str, Any]:
        document = self._document(PolicyDocument)
        await self._change(kind, name, lambda r: r["InlinePolicies"].__setitem__(PolicyName, document))
        return {}

    def get_inline(self, kind: str, name: str, PolicyName: str) -> dict[str, Any]:
        record = self._get(kind, name)[0]
        document = record["InlinePolicies"].get(PolicyName)
        if document is None:
            raise NoSuchEntity(f"The {kind} policy with name {PolicyName} cannot be found.")
        return {f"{kind.capitalize()}Name": name, "PolicyName": PolicyName, "PolicyDocument": _encoded(document)}

    def list_inline(self, kind: str, name: str, **paging: Any) -> dict[str, Any]:
        return _page("PolicyNames", sorted(self._get(kind, name)[0]["InlinePolicies"]), **paging)

    async def delete_inline(self, kind: str, name: str, PolicyName: str) -> dict[str, Any]:
        if PolicyName not in self._get(kind, name)[0]["InlinePolicies"]:
            raise NoSuchEntity(f"The {kind} policy with name {PolicyName} cannot be found.")
        await self._change(kind, name, lambda r: r["InlinePolicies"].pop(PolicyName))
        return {}

    # -- attached managed policies ---------------------------------------------------------------------------

    async def attach(self, kind: str, name: str, PolicyArn: str) -> dict[str, Any]:
        self._get(kind, name)
        if PolicyArn not in MANAGED_POLICIES:
            self._policy_by_arn(PolicyArn)
        await self._change(kind, name, lambda r: None if PolicyArn in r["AttachedPolicies"]
                           else r["AttachedPolicies"].append(PolicyArn))
        return {}

    async def detach(self, kind: str, name: str, PolicyArn: str) -> dict[str, Any]:
        if PolicyArn not in self._get(kind, name)[0]["AttachedPolicies"]:
            raise NoSuchEntity(f"Policy {PolicyArn} was not found.")
        await self._change(kind, name, lambda r: r["AttachedPolicies"].remove(PolicyArn))
        return {}

    def list_attached(self, kind: str, name: str, PathPrefix: str = "/", **paging: Any) -> dict[str, Any]:
        attached = []
        for arn in self._get(kind, name)[0]["AttachedPolicies"]:
            policy = MANAGED_POLICIES.get(arn)
            policy_name = policy["PolicyName"] if policy else arn.rsplit("/", 1)[-1]
            attached.append({"PolicyName": policy_name, "PolicyArn": arn})
        return _page("AttachedPolicies", attached, **paging)

    # -- customer managed policies ---------------------------------------------------------------------------

    async def create_policy(self, PolicyName: str, PolicyDocument: str, Path: str = "/",
                            Description: str | None = None, **_: Any) -> dict[str, Any]:
        _check_path(Path)
        now = time.time()
        record = {"PolicyName": PolicyName, "PolicyId": unique_id("ANPA"), "Path": Path, "CreateDate": now,
                  "UpdateDate": now, "Description": Description, "DefaultVersionId": "v1", "NextVersion": 2,
                  "Versions": [{"VersionId": "v1", "Document": self._document(PolicyDocument),
                                "CreateDate": now}]}
        await self._put("policy", PolicyName, record, None)
        return {"Policy": self._policy_view(record)}

    def get_policy(self, PolicyArn: str) -> dict[str, Any]:
        aws = MANAGED_POLICIES.get(PolicyArn)
        return {"Policy": self._policy_view(aws if aws is not None else self._policy_by_arn(PolicyArn))}

    def list_policies(self, Scope: str = "All", OnlyAttached: bool = False, PathPrefix: str = "/",
                      **paging: Any) -> dict[str, Any]:
        views = []
        if Scope in ("All", "AWS"):
            views += [self._policy_view(p) for p in MANAGED_POLICIES.values()]
        if Scope in ("All", "Local"):
            views += [self._policy_view(r) for r in self._all("policy")]
        views = [v for v in views if v["Path"].startswith(PathPrefix) and (v["AttachmentCount"] or not OnlyAttached)]
        return _page("Policies", views, **paging)

    async def create_policy_version(self, PolicyArn: str, PolicyDocument: str,
                                    SetAsDefault: bool = False) -> dict[str, Any]:
        record = self._policy_by_arn(PolicyArn)
        if len(record["Versions"]) >= MAX_POLICY_VERSIONS:
            raise LimitExceeded(f"A managed policy can have up to {MAX_POLICY_VERSIONS} versions. Before you "
                                "create a new version, you must delete an existing version.")
        document, now = self._document(PolicyDocument), time.time()
        version_id = f"v{record.get('NextVersion', len(record['Versions']) + 1)}"

        def add(r: dict[str, Any]) -> None:
            r["Versions"].append({"VersionId": version_id, "Document": document, "CreateDate": now})
            r["NextVersion"] = int(version_id[1:]) + 1
            r["UpdateDate"] = now
            if SetAsDefault:
                r["DefaultVersionId"] = version_id

        await self._change("policy", record["PolicyName"], add)
        return {"PolicyVersion": {"VersionId": version_id, "IsDefaultVersion": SetAsDefault,
                                  "CreateDate": _when(now)}}

    def get_policy_version(self, PolicyArn: str, VersionId: str) -> dict[str, Any]:
        aws = MANAGED_POLICIES.get(PolicyArn)
        if aws is not None:
            if VersionId != aws["DefaultVersionId"]:
                raise NoSuchEntity(f"Policy {PolicyArn} version {VersionId} does not exist or is not attachable.")
            return {"PolicyVersion": {"Document": _encoded(json.dumps(aws["Document"])), "VersionId": VersionId,
                                      "IsDefaultVersion": True, "CreateDate": _iso(aws["UpdateDate"])}}
        record = self._policy_by_arn(PolicyArn)
        for version in record["Versions"]:
            if version["VersionId"] == VersionId:
                return {"PolicyVersion": {"Document": _encoded(version["Document"]), "VersionId": VersionId,
                                          "IsDefaultVersion": VersionId == record["DefaultVersionId"],
                                          "CreateDate": _when(version["CreateDate"])}}
        raise NoSuchEntity(f"Policy {PolicyArn} version {VersionId} does not exist or is not attachable.")

    def list_policy_versions(self, PolicyArn: str, **paging: Any) -> dict[str, Any]:
        aws = MANAGED_POLICIES.get(PolicyArn)
        if aws is not None:
            versions = [{"VersionId": aws["DefaultVersionId"], "IsDefaultVersion": True,
                         "CreateDate": _iso(aws["UpdateDate"])}]
        else:
            record = self._policy_by_arn(PolicyArn)
            versions = [{"VersionId": v["VersionId"], "IsDefaultVersion": v["VersionId"] == record["DefaultVersionId"],
                         "CreateDate": _when(v["CreateDate"])} for v in reversed(record["Versions"])]
        return _page("Versions", versions, **paging)

    async def set_default_policy_version(self, PolicyArn: str, VersionId: str) -> dict[str, Any]:
        record = self._policy_by_arn(PolicyArn)
        if VersionId not in {v["VersionId"] for v in record["Versions"]}:
            raise NoSuchEntity(f"Policy {PolicyArn} version {VersionId} does not exist or is not attachable.")
        await self._change("policy", record["PolicyName"], lambda r: r.__setitem__("DefaultVersionId", VersionId))
        return {}

    async def delete_policy_version(self, PolicyArn: str, VersionId: str) -> dict[str, Any]:
        record = self._policy_by_arn(PolicyArn)
        if VersionId == record["DefaultVersionId"]:
            raise DeleteConflict("Cannot delete the default version of a policy.")
        if VersionId not in {v["VersionId"] for v in record["Versions"]}:
            raise NoSuchEntity(f"Policy {PolicyArn} version {VersionId} does not exist or is not attachable.")
        await self._change("policy", record["PolicyName"], lambda r: r.__setitem__(
            "Versions", [v for v in r["Versions"] if v["VersionId"] != VersionId]))
        return {}

    async def delete_policy(self, PolicyArn: str) -> dict[str, Any]:
        if PolicyArn in MANAGED_POLICIES:
            raise InvalidInput(f"Cannot delete an AWS managed policy: {PolicyArn}.")
        record = self._policy_by_arn(PolicyArn)
        if self._attachments(PolicyArn):
            raise DeleteConflict("Cannot delete a policy attached to entities.")
        if len(record["Versions"]) > 1:
            raise DeleteConflict("This policy has more than one version. Before you delete a policy, you must "
                                 "delete the policy's versions. The default version is deleted with the policy.")
        await self._delete("policy", record["PolicyName"], self._entities[("policy", record["PolicyName"])][1])
        return {}


def _page(key: str, items: Iterable[Any], Marker: str | None = None, MaxItems: int | None = None,
          **_: Any) -> dict[str, Any]:
    """One page of ``items`` as IAM pages lists: ``Marker`` is the index to go on from, ``IsTruncated`` says
    whether there is more."""
    listed = list(items)
    start = int(Marker) if Marker and Marker.isdigit() else 0
    limit = max(1, min(MaxItems or 100, 1000))
    page = listed[start:start + limit]
    out: dict[str, Any] = {key: page, "IsTruncated": start + limit < len(listed)}
    if out["IsTruncated"]:
        out["Marker"] = str(start + limit)
    return out
