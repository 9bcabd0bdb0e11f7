"""The cluster's blob store in an S3 bucket (``--blob-url s3://bucket/prefix``), each node's data dir as a cache.

The same contract as the JetStream object store (``cluster/blobs.py``): objects are named by the hex SHA-256 of
their bytes, ``<prefix><key>.zip``; ``put`` writes the node's cache and the bucket before it returns; ``path`` and
``get`` on a node that never saw the upload fetch the object into its cache first. The bucket is reached through
botocore with the AWS SDK's own configuration — the standard credential chain of the server process, and
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` for an S3-compatible store (MinIO, Ceph, moto) — as every outbound
AWS call of lambdad is (DESIGN.md). The methods block (they are called from worker threads).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lambdad.errors import LambdadError
from lambdad.store.blobs import FileBlobStore

__all__ = ["S3BlobStore", "parse_blob_url", "BlobUrlError"]


class BlobUrlError(LambdadError):
    """A blob URL that is not s3://bucket[/prefix], or a bucket that cannot be reached."""


def parse_blob_url(url: str) -> tuple[str, str]:
    """(bucket, key prefix) of ``s3://bucket/prefix`` (the prefix ends with "/" unless empty)."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc or parsed.query or parsed.fragment:
        raise BlobUrlError(f"blob url must be s3://BUCKET[/PREFIX], not {url!r}")
    prefix = parsed.path.strip("/")
    return parsed.netloc, f"{prefix}/" if prefix else ""


class S3BlobStore:
    def __init__(self, cache: FileBlobStore, client: Any, bucket: str, prefix: str) -> None:
        self._cache = cache
        self._client = client
        self.bucket, self.prefix = bucket, prefix
        self.root = cache.root
        self.guard = cache.guard
        self._fetching = threading.Lock()

    @classmethod
    def open(cls, cache: FileBlobStore, url: str, region: str) -> "S3BlobStore":
        """Blocking (run in a thread): the store of ``url``, its bucket checked to be reachable."""
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, prefix = parse_blob_url(url)
        session = boto3.session.Session()
        client = session.client("s3", region_name=session.region_name or os.environ.get("AWS_REGION") or region)
        try:
            client.head_bucket(Bucket=bucket)
        except (BotoCoreError, ClientError) as exc:
            raise BlobUrlError(f"the blob bucket {bucket!r} cannot be reached: {exc}") from exc
        return cls(cache, client, bucket, prefix)

    def _name(self, key: str) -> str:
        self._cache.path(key)  # checks it is a blob key
        return f"{self.prefix}{key}.zip"

    def path(self, key: str) -> Path:
        local = self._cache.path(key)
        if not local.exists():
            with self._fetching:  # one fetch of a blob at a time per node
                if not local.exists():
                    self._cache.put(self._fetch(key), key)
        return local

    def put(self, data: bytes, key: str | None = None) -> str:
        key = self._cache.put(data, key)
        self._client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data)
        return key

    def get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        if self._cache.exists(key):
            return True
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        """This node's cached copy only: the shared one goes with the sweep (``cluster/blob_sweep.py``)."""
        self._cache.delete(key)

    def _fetch(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise FileNotFoundError(f"blob {key} is in no node's cache and not in the bucket") from None
            raise
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data

    # -- the shared copies, for the sweep ---------------------------------------------------------------------

    def list_shared(self) -> list[tuple[str, float]]:
        """(key, last modified in epoch seconds) of every blob in the bucket under the prefix."""
        found = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", ()):
                name = item["Key"][len(self.prefix):]
                if name.endswith(".zip") and len(name) == 68:
                    found.append((name[:-4], item["LastModified"].timestamp()))
        return found

    def delete_shared(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def close(self) -> None:
        self._client.close()
