"""The AWS SDK for Python that Lambda's Python runtimes ship: boto3 and what it imports, taken from the server's
own installation (boto3 is a dependency of lambdad; were it missing, the runtimes would have no SDK, as the log
says).

A Python fork server shows these packages at /var/runtime/<package> and imports them once from there (so a
function's ``import boto3`` costs nothing at cold start); a jailed environment sees exactly these packages there,
read-only, and nothing else of the server's site-packages (see ``forkserver._stage_sdk``). It goes last on
``sys.path``: a function that bundles its own boto3 gets its own.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass

__all__ = ["PythonSdk", "find_python_sdk", "SDK_PACKAGES"]

log = logging.getLogger(__name__)

SDK_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six", "certifi")


@dataclass(frozen=True)
class PythonSdk:
    site_dir: str  # the directory to put on sys.path
    paths: tuple[str, ...]  # the packages (directories or modules) in it that make up the SDK

    def as_args(self) -> list[str]:
        return [self.site_dir, *self.paths]


def find_python_sdk() -> PythonSdk | None:
    paths: list[str] = []
    site_dir = None
    for name in SDK_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            if name in ("boto3", "botocore"):
                log.warning("boto3 is not installed with lambdad: Python functions will have no AWS SDK")
                return None
            continue
        path = os.path.dirname(spec.origin) if spec.submodule_search_locations else spec.origin
        parent = os.path.dirname(path)
        if site_dir is None:
            site_dir = parent
        if parent != site_dir:
            log.warning("%s is installed outside %s; leaving it out of the functions' SDK", name, site_dir)
            continue
        paths.append(path)
    assert site_dir is not None
    return PythonSdk(site_dir=site_dir, paths=tuple(paths))
