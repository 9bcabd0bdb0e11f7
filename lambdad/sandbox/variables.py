"""An environment's variables: exactly what its runtime and function see, as Lambda defines them. A pure function
of the environment's spec and where its endpoints are (no server variable ever leaks in).

Order, later wins: the base (PATH, LANG, TZ, LD_LIBRARY_PATH; TMPDIR without a jail), the function's own
credentials and this server's endpoint, the runtime's defaults, the log format and level of its LoggingConfig
(``AWS_LAMBDA_LOG_FORMAT``: Text or JSON; ``AWS_LAMBDA_LOG_LEVEL``: the ApplicationLogLevel, with JSON only), which
Lambda does not reserve, the function's variables, then Lambda's reserved
ones (``_HANDLER``, ``AWS_REGION``, ``AWS_LAMBDA_*``, ``LAMBDA_TASK_ROOT``, ...), which a function cannot
override. Without a jail there is no /opt: the layer paths Lambda defines point at the merged layer tree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from lambdad.sandbox.environment import EnvironmentSpec

__all__ = ["runtime_variables"]

BASE = {
    "PATH": "/usr/local/bin:/usr/bin:/bin:/opt/bin",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
    "LD_LIBRARY_PATH": "/opt/lib",
}


def runtime_variables(spec: EnvironmentSpec, *, runtime_api: str, jailed: bool, log_stream: str,
                      tmp_dir: str | None = None, credentials: Mapping[str, str] | None = None,
                      endpoint_url: str | None = None) -> dict[str, str]:
    """The variables of an environment of ``spec``: its Runtime API at ``runtime_api``, its log stream, its
    credentials (``AWS_ACCESS_KEY_ID``...) and this server's API (``endpoint_url``) when it has them."""
    c = spec.config
    env = dict(BASE)
    if not jailed and tmp_dir is not None:  # without a private /tmp mount, a private directory stands in for it
        env["TMPDIR"] = tmp_dir
    if credentials is not None and endpoint_url is not None:
        # the function's own short-lived credentials, and where the SDK finds this server's Lambda API
        env.update(credentials)
        env["AWS_ENDPOINT_URL_LAMBDA"] = endpoint_url
    env.update(spec.runtime.defaults(jailed=jailed, task_root=spec.task_root))
    if not jailed and spec.opt_dir:
        # no private root to mount the layers at /opt: the layer paths Lambda defines point at their tree
        opt = spec.opt_dir
        for key in ("PATH", "LD_LIBRARY_PATH", "NODE_PATH"):
            if key in env:
                env[key] = ":".join(opt + p[4:] if p == "/opt" or p.startswith("/opt/") else p
                                    for p in env[key].split(":"))
        env["LAMBDAD_OPT_DIR"] = opt  # the Python runtime's /opt/python paths
    env["AWS_LAMBDA_LOG_FORMAT"] = c.log_format
    if c.log_format == "JSON":
        env["AWS_LAMBDA_LOG_LEVEL"] = c.application_log_level or "INFO"
    env.update(c.environment)
    env.update({
        "_HANDLER": c.handler,
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{c.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": c.name,
        "AWS_LAMBDA_FUNCTION_VERSION": c.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(c.memory_size),
        "AWS_LAMBDA_INITIALIZATION_TYPE": spec.initialization_type,
        "AWS_LAMBDA_LOG_GROUP_NAME": c.log_group_name,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "LAMBDA_TASK_ROOT": "/var/task" if jailed else spec.task_root,
        "LAMBDA_RUNTIME_DIR": spec.runtime.runtime_dir_inside(jailed),
    })
    if spec.runtime.family == "provided":
        del env["AWS_EXECUTION_ENV"]  # Lambda defines it for managed runtimes only, not the provided family
    return env
