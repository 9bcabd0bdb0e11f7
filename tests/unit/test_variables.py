"""An environment's variables (sandbox/variables.py), as Lambda defines them: the reserved ones win over the
function's, the provided family has no AWS_EXECUTION_ENV, and without a jail the layer paths point at the tree."""

from __future__ import annotations

import dataclasses

from lambdad.functions.model import FunctionConfig
from lambdad.runtimes.registry import RuntimeRegistry
from lambdad.sandbox.environment import EnvironmentSpec
from lambdad.sandbox.variables import runtime_variables

CONFIG = FunctionConfig(name="f", version="3", runtime="python3.11", handler="app.handler", role="r",
                        code_sha256="", code_hash="", code_size=0, last_modified="", revision_id="rev",
                        memory_size=256, environment={"MINE": "1", "AWS_REGION": "mars-1", "_HANDLER": "evil"})


def spec(runtime: str = "python3.11", **changes: object) -> EnvironmentSpec:
    config = dataclasses.replace(CONFIG, runtime=runtime)
    base = EnvironmentSpec(config=config, runtime=RuntimeRegistry().get(runtime), task_root="/data/tasks/abc",
                           runtime_label="python:3.11", region="eu-west-1", account_id="000000000000")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_reserved_variables_win_over_the_functions() -> None:
    env = runtime_variables(spec(), runtime_api="127.0.0.1:9001", jailed=True, log_stream="2026/12/05/[3]x")
    assert env["MINE"] == "1"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "f" and env["AWS_LAMBDA_FUNCTION_VERSION"] == "3"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/f"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == "2026/12/05/[3]x"
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert "TMPDIR" not in env and "AWS_ACCESS_KEY_ID" not in env and "AWS_ENDPOINT_URL_LAMBDA" not in env


def test_credentials_and_endpoint() -> None:
    env = runtime_variables(spec(), runtime_api="a:1", jailed=True, log_stream="s",
                            credentials={"AWS_ACCESS_KEY_ID": "ASIA1", "AWS_SECRET_ACCESS_KEY": "x"},
                            endpoint_url="http://127.0.0.1:9000")
    assert env["AWS_ACCESS_KEY_ID"] == "ASIA1" and env["AWS_ENDPOINT_URL_LAMBDA"] == "http://127.0.0.1:9000"


def test_the_provided_family_has_no_execution_env() -> None:
    env = runtime_variables(spec("provided.al2023"), runtime_api="a:1", jailed=True, log_stream="s")
    assert "AWS_EXECUTION_ENV" not in env


def test_without_a_jail_layer_paths_point_at_the_tree() -> None:
    env = runtime_variables(spec(opt_dir="/data/opt/k"), runtime_api="a:1", jailed=False, log_stream="s",
                            tmp_dir="/run/env/tmp")
    assert env["TMPDIR"] == "/run/env/tmp"
    assert "/data/opt/k/bin" in env["PATH"].split(":") and "/opt/bin" not in env["PATH"].split(":")
    assert env["LD_LIBRARY_PATH"].startswith("/data/opt/k/lib")
    assert env["LAMBDAD_OPT_DIR"] == "/data/opt/k"
    assert env["LAMBDA_TASK_ROOT"] == "/data/tasks/abc"
