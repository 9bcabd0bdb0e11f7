"""``lambdad deploy --watch``: after the deploy, push code as it is saved.

watchfiles (Rust's notify: inotify on Linux) watches the functions' code directories and the template. A change
in a code directory builds it again when it has a manifest (builder.py), zips it, and for each function of
the stack made from that directory whose CodeSha256 differs, calls UpdateFunctionCode; a function whose stack
also has aliases on it (AutoPublishAlias) gets a new version and its aliases moved to it, so invocations of the
alias run the new code too. Changes are batched over 100 ms, so a save is pushed well within a second. A change
of the template redeploys the whole stack (without asking: ``--watch`` is the dev loop). Any error — a template
that does not parse, a build that fails, a deploy refused — is printed and the loop goes on; Ctrl-C stops it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

from lambdad.deploy.code import package_path
from lambdad.deploy.engine import DeployError, Deployment, error_text, read_stack

__all__ = ["watch_stack"]


def watch_stack(deployment: Deployment, log: Callable[[str], None] = print,
                stop: threading.Event | None = None) -> None:
    from watchfiles import watch

    template = deployment.template_path.resolve()
    while True:
        dirs = _code_dirs(deployment)
        paths = sorted({str(d) for d in dirs}) + [str(template)]
        log(f"watching {', '.join(paths)} (Ctrl-C stops)")
        redeploy = False
        for changes in watch(*paths, debounce=100, step=20, stop_event=stop, rust_timeout=500,
                             raise_interrupt=False):
            changed = [Path(p) for _, p in changes]
            if any(p == template for p in changed):
                redeploy = True
                break
            for source, targets in dirs.items():
                if any(p.is_relative_to(source) for p in changed):
                    _push(deployment, source, targets, log)
        if not redeploy:
            return
        _redeploy(deployment, log)


def _code_dirs(deployment: Deployment) -> dict[Path, list[dict[str, Any]]]:
    """Each local code directory -> the stack's functions made from it (name, runtime, architecture)."""
    stack = read_stack(deployment.connection, deployment.stack_name)
    if stack is None:
        return {}
    dirs = {k: Path(v) for k, v in (stack.document.get("CodeDirs") or {}).items()}
    found: dict[Path, list[dict[str, Any]]] = {}
    resources = stack.resources
    for recorded in resources.values():
        if recorded.type_name != "AWS::Lambda::Function":
            continue
        code = recorded.properties.get("Code") or {}
        source = dirs.get(str(code.get("S3Key")))
        if source is None or not source.is_dir():
            continue
        aliases = [r.properties["Name"] for r in resources.values() if r.type_name == "AWS::Lambda::Alias"
                   and r.properties.get("FunctionName") in (recorded.made.physical_id, recorded.made.attributes.get(
                       "Arn"))]
        found.setdefault(source, []).append({
            "name": recorded.made.physical_id, "runtime": recorded.properties.get("Runtime"),
            "arch": (recorded.properties.get("Architectures") or [None])[0], "aliases": aliases})
    return found


def _push(deployment: Deployment, source: Path, targets: list[dict[str, Any]], log: Callable[[str], None]) -> None:
    lam = deployment.connection.lambda_
    started = time.monotonic()
    try:
        for target in targets:
            built = deployment.build(source, target["runtime"], target["arch"]) if deployment.build else source
            package = package_path(built)
            current = lam.get_function_configuration(FunctionName=target["name"])
            if current.get("CodeSha256") == package.sha256:
                continue
            lam.update_function_code(FunctionName=target["name"], ZipFile=package.data)
            for alias in target["aliases"]:
                version = lam.publish_version(FunctionName=target["name"])["Version"]
                lam.update_alias(FunctionName=target["name"], Name=alias, FunctionVersion=version,
                                 RoutingConfig={"AdditionalVersionWeights": {}})
            took = (time.monotonic() - started) * 1000
            log(f"pushed {source} to {target['name']} ({len(package.data)} bytes, {took:.0f} ms)"
                + (f"; aliases {', '.join(target['aliases'])} moved to a new version" if target["aliases"] else ""))
    except Exception as exc:  # the loop goes on: say what failed (a build, a zip, the upload)
        log(f"error: pushing {source}: {error_text(exc)}")


def _redeploy(deployment: Deployment, log: Callable[[str], None]) -> None:
    log("template changed: deploying")
    try:
        plan = deployment.prepare()
        if not plan.changes:
            log(f"stack {deployment.stack_name}: no changes")
            return
        for change in plan.changes:
            log(change.line())
        deployment.apply()
        log(f"stack {deployment.stack_name}: deployed")
    except DeployError as exc:
        log(f"error: {exc}")
    except Exception as exc:
        log(f"error: {error_text(exc)}")
