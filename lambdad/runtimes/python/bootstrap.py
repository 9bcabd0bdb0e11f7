"""The lambdad Python runtime: the process that runs a function's code inside an execution environment.

It serves python3.9 … python3.13 and speaks to the platform only through the Lambda Runtime API 2018-06-01 at
``http://$AWS_LAMBDA_RUNTIME_API``, behaving like AWS's own runtime (awslambdaric): the same error types and
messages, the same error and log formats, the same context object. It is stdlib-only and never imports lambdad:
it runs under the function's interpreter, not the server's, and must start fast (cold starts are measured).

Phases, in order (``main()`` runs them all; a pre-forked fork server may call them one by one):

    prepare()                            import what the runtime needs (_json, _socket, importlib); no side effects
    init_function(handler, task_root)    stdio, cwd, sys.path, logging, then import the handler; returns the
                                         callable, or raises InitError whose ``.error`` is the AWS error body
    RuntimeClient(address)               one keep-alive HTTP/1.1 connection to the Runtime API (lazy connect)
    fail_init(client, error)             log the error, POST /runtime/init/error, exit(1) — like awslambdaric
    serve(client, handler)               the invocation loop: GET next, call, POST response | error; never returns

Contract with the platform:
  * stdout carries user output, log records and the ``[ERROR]`` block of a failed invocation (one stream, so
    their order is kept); stdout and stderr are line-buffered and both are flushed before every POST, so an
    invocation's output is in the pipe before its response or error leaves.
  * Invocation errors POST ``{"errorMessage", "errorType", "requestId", "stackTrace"}`` with the header
    ``Lambda-Runtime-Function-Error-Type``; init errors the same with ``"requestId": ""``, then exit status 1.
  * The root logger is configured like AWS's (``[LEVEL]\\t<time>Z\\t<request id>\\t<message>``, or JSON when
    ``AWS_LAMBDA_LOG_FORMAT=JSON``), but lazily: ``logging`` is not imported until the function's code imports it.
  * The event body is decoded as JSON unless the next-invocation response names another Content-Type (then the
    handler gets the raw bytes, as on AWS); a result that is ``bytes`` is posted raw as application/unknown.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs milliseconds of cold start
    from typing import Any, Callable, NoReturn

    Handler = Callable[[Any, "LambdaContext"], Any]

__all__ = [
    "prepare", "init_function", "fail_init", "serve", "main",
    "RuntimeClient", "RuntimeApiUnreachable", "InitError", "LambdaContext",
]

_API = "/2018-06-01/runtime"
# Set by lambdad's fork server before ``main``: a descriptor connected to the Runtime API (a socketpair), which
# the runtime uses instead of connecting to AWS_LAMBDA_RUNTIME_API; if it fails, the runtime connects there.
RUNTIME_API_FD: int | None = None
_ACCEPTED_BODY = b'{"status":"OK"}'
_ACCEPTED = (b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
             % (len(_ACCEPTED_BODY), _ACCEPTED_BODY))
_ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
_USER_AGENT = "lambdad-python/%d.%d.%d" % sys.version_info[:3]
_NBSP = "\u00a0"  # AWS indents the traceback lines of an [ERROR] log block with no-break spaces
_JSON_ENV_NON_ASCII = {  # runtimes whose responses AWS encodes with ensure_ascii=False
    "AWS_Lambda_python3.12", "AWS_Lambda_python3.13", "AWS_Lambda_python3.14", "AWS_Lambda_python3.15",
}
_UNHANDLED_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. However, in rare "
    "cases, a Lambda runtime update can cause unexpected function behavior. For functions using managed runtimes, "
    "runtime updates can be triggered by a function change, or can be applied automatically. To determine if the "
    "runtime has been updated, check the runtime version in the INIT_START log entry. If this error correlates "
    "with a change in the runtime version, you may be able to mitigate this error by temporarily rolling back to "
    "the previous runtime version. For more information, see "
    "https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html"
)


# --------------------------------------------------------------------------------------------------- errors

class RuntimeApiUnreachable(Exception):
    """The Runtime API could not be reached, or answered ``GET next`` with an unexpected status."""


class InitError(Exception):
    """The function could not be initialised; ``error`` is the body to POST to /runtime/init/error."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error['errorType']}: {error['errorMessage']}")
        self.error = error


class _Fault(Exception):
    """A runtime-detected failure with an AWS ``Runtime.*`` type (awslambdaric's FaultException)."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace


def _error_body(message: str, error_type: str, trace: list[str] | None, request_id: str = "") -> dict[str, Any]:
    return {"errorMessage": message or "", "errorType": error_type or "", "requestId": request_id,
            "stackTrace": trace or []}


def _exception_body(exc: BaseException, request_id: str = "") -> dict[str, Any]:
    """The error body of an exception: frames from the first one outside this runtime, as AWS formats them."""
    import traceback

    frames: list[Any] = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(exc.__traceback__)]
    for i, frame in enumerate(frames):
        if "/bootstrap.py" not in frame[0]:
            frames = frames[i:]
            break
    try:
        message = str(exc)
    except Exception:  # a user exception whose __str__ fails still gets reported
        message = ""
    return _error_body(message, type(exc).__name__, traceback.format_list(frames), request_id)


# --------------------------------------------------------------------------------------------------- HTTP

class _Disconnected(Exception):
    """The peer closed the connection before any byte of a response (a stale keep-alive connection)."""


class Invocation:
    """One event from ``GET /runtime/invocation/next``."""

    __slots__ = ("request_id", "deadline_ms", "function_arn", "trace_id", "client_context", "cognito_identity",
                 "tenant_id", "content_type", "body")

    def __init__(self, headers: dict[str, str], body: bytes) -> None:
        get = headers.get
        self.request_id = get("lambda-runtime-aws-request-id", "")
        try:
            self.deadline_ms = int(get("lambda-runtime-deadline-ms", "0"))
        except ValueError:
            self.deadline_ms = 0
        self.function_arn = get("lambda-runtime-invoked-function-arn")
        self.trace_id = get("lambda-runtime-trace-id") or None
        self.client_context = get("lambda-runtime-client-context") or None
        self.cognito_identity = get("lambda-runtime-cognito-identity") or None
        self.tenant_id = get("lambda-runtime-aws-tenant-id") or None
        self.content_type = get("content-type")
        self.body = body


class RuntimeClient:
    """One persistent HTTP/1.1 connection to the Runtime API, over the C ``_socket`` module.

    ``http.client`` would cost tens of milliseconds of imports (email, ssl, socket/enum) at every cold start; the
    Runtime API needs none of it. A reused connection that turns out to be closed is reopened and the request sent
    once more; any other failure raises RuntimeApiUnreachable.
    """

    def __init__(self, address: str, connected_fd: int | None = None) -> None:
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise RuntimeApiUnreachable(f"AWS_LAMBDA_RUNTIME_API must be host:port, not {address!r}")
        self.address = address
        self._host = host[1:-1] if host.startswith("[") else host
        self._port = int(port)
        self._sock: Any = None
        if connected_fd is not None:  # a connection lambdad made ahead (a socketpair): used until it fails
            import _socket

            self._sock = _socket.socket(fileno=connected_fd)
        self._buf = bytearray()
        self._next_sent = False  # a GET /next went out pipelined behind the last response
        self._next_request = (f"GET {_API}/invocation/next HTTP/1.1\r\nHost: {address}\r\n"
                              f"User-Agent: {_USER_AGENT}\r\n\r\n").encode("latin-1")

    # -- the four Runtime API calls

    def next(self) -> Invocation:
        status = 0
        if self._next_sent:  # already asked for, right behind the last response (see post_response)
            self._next_sent = False
            try:
                status, headers, body = self._read_response()
            except (OSError, _Disconnected):
                self.close()  # the connection ended after the response was taken: ask again
        if not status:
            status, headers, body = self._call("GET", _API + "/invocation/next")
        if status != 200:
            raise RuntimeApiUnreachable(f"GET invocation/next answered {status}: {body[:300]!r}")
        return Invocation(headers, body)

    def post_response(self, request_id: str, body: bytes, content_type: str = "application/json") -> None:
        """POST the response, with ``GET /next`` pipelined right behind it in the same write (HTTP/1.1): the
        platform reads both at once, a system call and a wake-up fewer per invocation on either side. The next
        ``next()`` reads its answer."""
        self._post(f"{_API}/invocation/{request_id}/response", body, f"Content-Type: {content_type}\r\n", True)

    def post_error(self, request_id: str, error: dict[str, Any], body: bytes) -> None:
        self._post(f"{_API}/invocation/{request_id}/error", body, _error_headers(error), True)

    def post_init_error(self, error: dict[str, Any], body: bytes) -> None:
        self._post(_API + "/init/error", body, _error_headers(error))

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._buf.clear()
                self._next_sent = False

    # -- HTTP/1.1

    def _post(self, path: str, body: bytes, headers: str, then_next: bool = False) -> None:
        # A refusal (413 for an oversized response, 4xx for a late one) is the platform's to report, as on AWS,
        # and leaves nothing in the function's log; the environment goes on serving.
        self._call("POST", path, body, headers, then_next)

    def _call(self, method: str, path: str, body: bytes | None = None, headers: str = "",
              then_next: bool = False) -> tuple[int, dict[str, str], bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.address}\r\nUser-Agent: {_USER_AGENT}\r\n{headers}"
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        data = (head + "\r\n").encode("latin-1")
        follow = self._next_request if then_next else b""
        for attempt in (1, 2):
            reused = self._sock is not None
            try:
                if not reused:
                    self._sock = self._connect()
                if body is None:
                    self._sock.sendall(data + follow)
                elif len(body) < 65536:
                    self._sock.sendall(data + body + follow)
                else:
                    self._sock.sendall(data)
                    self._sock.sendall(body + follow)
                response = self._read_response()
                self._next_sent = bool(follow) and self._sock is not None  # None: the server closed after it
                return response
            except (OSError, _Disconnected) as exc:
                self.close()
                if not (reused and attempt == 1):
                    raise RuntimeApiUnreachable(f"{method} {path} to {self.address} failed: {exc!r}") from exc
        raise AssertionError("unreachable")

    def _connect(self) -> Any:
        import _socket

        host, port = self._host, self._port
        targets: list[tuple[int, Any]] = []
        for family in (_socket.AF_INET, _socket.AF_INET6):
            try:
                _socket.inet_pton(family, host)
            except OSError:
                continue
            targets.append((family, (host, port)))
            break
        if not targets:  # a name: resolve it (bytes, so that the idna codec is not imported)
            for family, _, _, _, addr in _socket.getaddrinfo(host.encode(), port, 0, _socket.SOCK_STREAM):
                targets.append((family, addr))
        error: OSError = OSError(f"cannot resolve {host}")
        for family, addr in targets:
            sock = _socket.socket(family, _socket.SOCK_STREAM)
            try:
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
                sock.connect(addr)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error

    def _fill(self) -> bool:
        chunk = self._sock.recv(262144)
        if not chunk:
            return False
        self._buf += chunk
        return True

    def _read_response(self) -> tuple[int, dict[str, str], bytes]:
        buf = self._buf
        if buf.startswith(_ACCEPTED):  # lambdad's answer to a response or error, byte for byte: nothing to parse
            del buf[:len(_ACCEPTED)]
            return 202, {}, _ACCEPTED_BODY
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if not self._fill():
                if not buf:
                    raise _Disconnected("connection closed")
                raise OSError("connection closed inside a response head")
        lines = buf[:end].decode("latin-1").split("\r\n")
        del buf[:end + 4]
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise OSError(f"bad status line {lines[0]!r}") from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        close = headers.get("connection", "").lower() == "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        elif status in (204, 304) or status < 200:
            body = b""
        else:  # no length: the body runs to the end of the connection
            while self._fill():
                pass
            body, close = bytes(buf), True
            buf.clear()
        if close:
            self.close()
        return status, headers, body

    def _read_exact(self, size: int) -> bytes:
        buf = self._buf
        while len(buf) < size:
            if not self._fill():
                raise OSError("connection closed inside a response body")
        body = bytes(buf[:size])
        del buf[:size]
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            while b"\r\n" not in self._buf:
                if not self._fill():
                    raise OSError("connection closed inside a chunked body")
            eol = self._buf.index(b"\r\n")
            size = int(bytes(self._buf[:eol]).split(b";", 1)[0].strip() or b"0", 16)
            del self._buf[:eol + 2]
            if size == 0:
                while not self._buf.startswith(b"\r\n"):  # skip trailers up to the blank line
                    if b"\r\n" in self._buf:
                        del self._buf[:self._buf.index(b"\r\n") + 2]
                    elif not self._fill():
                        raise OSError("connection closed inside chunked trailers")
                del self._buf[:2]
                return b"".join(parts)
            parts.append(self._read_exact(size + 2)[:size])


def _error_headers(error: dict[str, Any]) -> str:
    error_type = str(error.get("errorType") or "Unhandled")
    # a header is latin-1 on the wire: escape what is not ASCII, and never let a value end the header
    error_type = error_type.encode("ascii", "backslashreplace").decode("ascii").replace("\r", " ").replace("\n", " ")
    return f"Content-Type: application/json\r\n{_ERROR_TYPE_HEADER}: {error_type}\r\n"


# --------------------------------------------------------------------------------------------------- JSON

class _ScanContext:
    """What ``_json.make_scanner`` reads from a decoder: json.loads' defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__
    memo: dict[str, Any] = {}


class _Json:
    """JSON as AWS's runtime writes it (simplejson: Decimal as a number, NaN allowed, ", "/": " separators).

    Built on ``_json``, the C accelerator behind ``json.loads``/``json.dumps``, driven directly: the same scanner and
    encoder give the same output and the same error messages, without the ~10 ms that importing the ``json``
    package (re, enum) adds to every cold start. Falls back to ``json`` where ``_json`` is missing or differs.
    """

    def __init__(self, ensure_ascii: bool) -> None:
        token = "\x00" + os.urandom(6).hex()  # a str no user value holds: marks a Decimal to splice back in
        self._escaped = '"\\u0000' + token[1:]
        self._ensure_ascii = ensure_ascii
        self._saw_decimal = False

        def default(o: Any) -> Any:
            decimal = sys.modules.get("decimal")
            if decimal is not None and isinstance(o, decimal.Decimal):
                if o.is_nan():
                    return float("nan")
                self._saw_decimal = True
                return token + str(o)
            raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")

        self._default = default
        try:
            import _json

            self._scan: Any = _json.make_scanner(_ScanContext())  # type: ignore[arg-type]
            self._basestring = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
            self._make_encoder: Any = _json.make_encoder
            self._make_encoder({}, default, self._basestring, None, ": ", ", ", False, False, True)
        except (ImportError, AttributeError, TypeError):
            self._scan = self._make_encoder = None

    def dumps(self, value: Any) -> str:
        self._saw_decimal = False
        if self._make_encoder is not None:  # a fresh encoder each time: a failed encode leaves its markers dirty
            encode = self._make_encoder({}, self._default, self._basestring, None, ": ", ", ", False, False, True)
            text = "".join(encode(value, 0))
        else:
            import json

            text = json.JSONEncoder(ensure_ascii=self._ensure_ascii, default=self._default).encode(value)
        if self._saw_decimal:  # '"\u0000<token>1.50"' -> '1.50'
            pieces = text.split(self._escaped)
            out = [pieces[0]]
            for piece in pieces[1:]:
                quote = piece.index('"')
                out.append(piece[:quote])
                out.append(piece[quote + 1:])
            text = "".join(out)
        return text

    def loads(self, data: bytes | str) -> Any:
        if isinstance(data, (bytes, bytearray)):
            if self._scan is None or data[:3] == b"\xef\xbb\xbf" or b"\x00" in data[:4]:  # BOM, UTF-16/32
                import json

                return json.loads(data)
            text = data.decode("utf-8", "surrogatepass")
        else:
            text = data
            if self._scan is None or text[:1] == "\ufeff":
                import json

                return json.loads(text)
        start = _skip_whitespace(text, 0)
        try:
            value, end = self._scan(text, start)
        except StopIteration as stop:
            from json import JSONDecodeError

            raise JSONDecodeError("Expecting value", text, stop.value) from None
        end = _skip_whitespace(text, end)
        if end != len(text):
            from json import JSONDecodeError

            raise JSONDecodeError("Extra data", text, end)
        return value


def _skip_whitespace(text: str, pos: int) -> int:
    size = len(text)
    while pos < size and text[pos] in " \t\n\r":
        pos += 1
    return pos


def _json_for(environ: Any) -> _Json:
    execution_env = environ.get("AWS_EXECUTION_ENV")
    if execution_env:
        return _Json(ensure_ascii=execution_env not in _JSON_ENV_NON_ASCII)
    return _Json(ensure_ascii=sys.version_info < (3, 12))


# --------------------------------------------------------------------------------------------------- context

class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")
    cognito_identity_id: str | None
    cognito_identity_pool_id: str | None

    def __repr__(self) -> str:
        return (f"CognitoIdentity([cognito_identity_id={self.cognito_identity_id},"
                f"cognito_identity_pool_id={self.cognito_identity_pool_id}])")


class Client:
    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name")
    installation_id: Any
    app_title: Any
    app_version_name: Any
    app_version_code: Any
    app_package_name: Any

    def __repr__(self) -> str:
        return (f"Client([installation_id={self.installation_id},app_title={self.app_title},"
                f"app_version_name={self.app_version_name},app_version_code={self.app_version_code},"
                f"app_package_name={self.app_package_name}])")


class ClientContext:
    __slots__ = ("custom", "env", "client")
    custom: Any
    env: Any
    client: Any

    def __repr__(self) -> str:
        return f"ClientContext([custom={self.custom},env={self.env},client={self.client}])"


def _from_dict(cls: type, values: Any) -> Any:
    if values is None:
        return None
    obj = cls()
    get = values.get if isinstance(values, dict) else (lambda _key: None)
    for field in cls.__slots__:  # type: ignore[attr-defined]
        setattr(obj, field, get(field))
    return obj


def _parse_json_header(codec: _Json, text: str, name: str) -> Any:
    try:
        return codec.loads(text)
    except Exception as exc:
        raise _Fault("Runtime.LambdaContextUnmarshalError", f"Unable to parse {name} JSON: {exc}") from None


class FunctionInfo:
    """What the context reports about the function, read once from the environment."""

    __slots__ = ("function_name", "function_version", "memory_limit_in_mb", "log_group_name", "log_stream_name")

    def __init__(self, environ: Any) -> None:
        self.function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME")


class LambdaContext:
    """The ``context`` argument of a handler, with the attributes and methods of AWS's.

    ``memory_limit_in_mb`` is a string, as on AWS (which reads it from AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
    """

    def __init__(self, invocation: Invocation, function: FunctionInfo, codec: _Json) -> None:
        self.aws_request_id = invocation.request_id
        self.log_group_name = function.log_group_name
        self.log_stream_name = function.log_stream_name
        self.function_name = function.function_name
        self.memory_limit_in_mb = function.memory_limit_in_mb
        self.function_version = function.function_version
        self.invoked_function_arn = invocation.function_arn
        self.tenant_id = invocation.tenant_id
        client_context = None
        if invocation.client_context:
            client_context = _parse_json_header(codec, invocation.client_context, "Client Context")
        cognito = None
        if invocation.cognito_identity:
            cognito = _parse_json_header(codec, invocation.cognito_identity, "Cognito Identity")
        self.client_context = _from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _from_dict(Client, self.client_context.client)
        self.identity = _from_dict(CognitoIdentity, {})
        if isinstance(cognito, dict):
            self.identity.cognito_identity_id = cognito.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito.get("cognitoIdentityPoolId")
        self._epoch_deadline_time_in_ms = invocation.deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        remaining = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg: Any) -> None:
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (f"LambdaContext([aws_request_id={self.aws_request_id},log_group_name={self.log_group_name},"
                f"log_stream_name={self.log_stream_name},function_name={self.function_name},"
                f"memory_limit_in_mb={self.memory_limit_in_mb},function_version={self.function_version},"
                f"invoked_function_arn={self.invoked_function_arn},client_context={self.client_context},"
                f"identity={self.identity},tenant_id={self.tenant_id}])")


# --------------------------------------------------------------------------------------------------- logs

class _CurrentInvocation:
    """The invocation in flight, read by the root logger's filter (from any thread, as on AWS).

    The one piece of process-wide state: an environment serves one invocation at a time.
    """

    __slots__ = ("request_id", "tenant_id")

    def __init__(self) -> None:
        self.request_id = ""
        self.tenant_id: str | None = None


_CURRENT = _CurrentInvocation()


class _LogSettings:
    __slots__ = ("json", "level")

    def __init__(self, environ: Any) -> None:
        self.json = (environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
        level = (environ.get("AWS_LAMBDA_LOG_LEVEL") or "").upper()
        self.level = "DEBUG" if level == "TRACE" else level


def _setup_logging(settings: _LogSettings) -> None:
    """Configure the root logger now if ``logging`` is loaded, else the moment the function's code imports it."""
    for finder in list(sys.meta_path):
        if isinstance(finder, _LoggingHook):
            sys.meta_path.remove(finder)
    logging = sys.modules.get("logging")
    if logging is not None:
        _configure_logging(logging, settings)
    else:
        sys.meta_path.insert(0, _LoggingHook(settings))


class _LoggingHook:
    """A meta-path finder that lets ``logging`` load normally, then configures its root logger."""

    def __init__(self, settings: _LogSettings) -> None:
        self._settings = settings

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "logging":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is not None:
                spec = find_spec(fullname, path, target)
                if spec is not None:
                    break
        loader = getattr(spec, "loader", None)
        if loader is None or isinstance(loader, type) or not hasattr(loader, "exec_module"):
            return spec  # not a per-module loader object: leave it alone (logging stays unconfigured)
        original = loader.exec_module
        settings = self._settings

        def exec_module(module: Any) -> None:
            try:
                original(module)
            finally:
                try:
                    del loader.exec_module
                except AttributeError:
                    pass
            try:
                _configure_logging(module, settings)
            except Exception as exc:  # the function's import of logging must not fail because of us
                sys.stderr.write(f"lambdad runtime: could not configure logging: {exc!r}\n")

        loader.exec_module = exec_module
        return spec


_LOGGING_CLASSES: tuple[Any, Any] | None = None  # (filter, handler) classes, made once ``logging`` is loaded


def _logging_classes(logging: Any) -> tuple[Any, Any]:
    """The root logger's filter and handler classes. Made once per process tree: the fork server makes them
    (``prepare_shared``), so that an environment does not pay two class creations (~0.1 ms each) at its start."""
    global _LOGGING_CLASSES
    if _LOGGING_CLASSES is None:
        current = _CURRENT

        class LambdaLoggerFilter(logging.Filter):  # type: ignore[misc]
            def filter(self, record: Any) -> bool:
                record.aws_request_id = current.request_id
                record.tenant_id = current.tenant_id
                return True

        class LambdaLoggerHandler(logging.Handler):  # type: ignore[misc]
            def emit(self, record: Any) -> None:  # like AWS's: a formatting error reaches the caller
                message = self.format(record)
                sys.stdout.write(message if message.endswith("\n") else message + "\n")

        _LOGGING_CLASSES = (LambdaLoggerFilter, LambdaLoggerHandler)
    return _LOGGING_CLASSES


def _configure_logging(logging: Any, settings: _LogSettings, root: Any = None) -> None:
    """Give the root logger (or ``root``: ``rehearse``'s throwaway logger) Lambda's handler and format."""
    LambdaLoggerFilter, LambdaLoggerHandler = _logging_classes(logging)
    logging.Formatter.converter = time.gmtime
    handler = LambdaLoggerHandler()
    if settings.json:
        handler.setFormatter(_json_formatter(logging))
    else:
        handler.setFormatter(logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(LambdaLoggerFilter())
    root = logging.getLogger() if root is None else root
    if settings.level in logging._nameToLevel:
        root.setLevel(settings.level)
    root.addHandler(handler)


_JSON_LOG_RESERVED = frozenset((
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info", "exc_text",
    "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread", "threadName",
    "processName", "process", "aws_request_id", "tenant_id", "_frame_type",
))


def _json_formatter(logging: Any) -> Any:
    import json
    import traceback  # both already loaded by logging itself

    encode = json.JSONEncoder(ensure_ascii=False, default=str).encode

    class JsonFormatter(logging.Formatter):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(datefmt="%Y-%m-%dT%H:%M:%S")

        def formatTime(self, record: Any, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
            # awslambdaric's: UTC, milliseconds, Z (2023-10-27T19:17:45.586Z)
            return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + ".%03dZ" % record.msecs

        def format(self, record: Any) -> str:
            record.levelno = min(50, max(0, record.levelno)) // 10 * 10
            record.levelname = logging.getLevelName(record.levelno)
            exc_info = record.exc_info if record.exc_info and record.exc_info[0] is not None else None
            result = {
                "timestamp": self.formatTime(record, self.datefmt),
                "level": record.levelname,
                "message": record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage(),
                "logger": record.name,
                "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
                "errorType": exc_info[0].__name__ if exc_info else None,
                "errorMessage": str(exc_info[1]) if exc_info else None,
                "requestId": getattr(record, "aws_request_id", None),
                "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if exc_info else None,
            }
            if getattr(record, "tenant_id", None) is not None:
                result["tenantId"] = record.tenant_id
            for key, value in record.__dict__.items():
                if key not in _JSON_LOG_RESERVED and key not in result:
                    result[key] = value
            return encode({k: v for k, v in result.items() if v is not None}) + "\n"

    return JsonFormatter()


def _log_error(error: dict[str, Any], json_format: bool, dumps: Callable[[Any], str]) -> None:
    """Write an error to the log stream as AWS's runtime does: an ``[ERROR]`` block, or a JSON record."""
    if json_format:
        record = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": "ERROR"}
        record.update(error)
        sys.stdout.write(dumps(record) + "\n")
        return
    description = "[ERROR]"
    if error.get("errorType"):
        description += " " + error["errorType"]
    if error.get("errorMessage"):
        description += (":" if error.get("errorType") else "") + " " + error["errorMessage"]
    lines = [description]
    trace = error.get("stackTrace")
    if trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in trace:
            if element == "":
                lines.append("")
                continue
            for line in element.splitlines():
                stripped = line.lstrip(" ")
                lines.append(_NBSP * (len(line) - len(stripped)) + stripped)
    sys.stdout.write("\n".join(lines) + "\n")


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # a user-replaced stream may not flush; the POST must still leave
            pass


# --------------------------------------------------------------------------------------------------- phases

def prepare() -> None:
    """Import what the runtime itself needs, so that a fork server can pay for it once before forking."""
    import _json  # noqa: F401
    import _socket  # noqa: F401
    import importlib  # noqa: F401


def prepare_shared() -> None:
    """What a fork server can make once for every environment, after the SDK is imported: the logging classes,
    when ``logging`` is loaded (boto3 loads it; without it, the first import of logging configures it)."""
    logging = sys.modules.get("logging")
    if logging is not None:
        _logging_classes(logging)


_REHEARSAL_HANDLER = "import os\n\n\ndef handler(event, context):\n    return event\n"


def rehearse() -> None:
    """A pre-started slot, before its assignment: run the code a cold start runs next, on throwaway values, and
    keep nothing of it. A fork touches each page of the parent's memory it writes for the first time
    (copy-on-write: a fault and a 4 KB copy), and the first pass through the variables, the Runtime API client,
    the function's settings, the compiler and the import system cost ~1 ms more than the next one; done here,
    that is paid while the slot waits, not by the function's first invocation. The same code later touches the same
    pages, so the slot's memory hardly grows. Leaves the variables empty, sys.path, sys.modules and the import
    caches as they were."""
    environ = os.environ
    throwaway = {"_LAMBDAD_REHEARSAL_%d" % i: "x" * 64 for i in range(48)}
    throwaway.update(AWS_LAMBDA_RUNTIME_API="127.0.0.1:9", _HANDLER="app.handler", LAMBDA_TASK_ROOT="/var/task")
    environ.update(throwaway)
    environ.clear()
    RuntimeClient("127.0.0.1:9")
    FunctionInfo(throwaway)
    _json_for(throwaway)
    settings = _LogSettings(throwaway)
    logging = sys.modules.get("logging")
    if logging is not None:  # a logger of no manager's: the root logger is configured at the assignment
        _configure_logging(logging, settings, logging.Logger("_lambdad_rehearsal"))
    import importlib.abc
    import importlib.machinery
    import importlib.util

    class Source(importlib.abc.SourceLoader):  # the import of a handler's source, from memory
        def get_filename(self, fullname: str) -> str:
            return "/var/task/app.py"

        def get_data(self, path: str) -> bytes:
            return _REHEARSAL_HANDLER.encode()

    spec = importlib.util.spec_from_loader("_lambdad_rehearsal", Source())
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))  # never in sys.modules
    # the path hooks' search of /var/task (empty yet): its finder is dropped, so that the real import lists the
    # code attached there
    importlib.machinery.PathFinder.find_spec("_lambdad_rehearsal", ["/var/task"])
    sys.path_importer_cache.pop("/var/task", None)


def _setup_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(line_buffering=True)
            except Exception:
                pass


def _setup_sys_path(task_root: str) -> None:
    """Lambda's order: the task root, then /opt/python/lib/pythonX.Y/site-packages, then /opt/python — the two
    layer paths only when the function sets no PYTHONPATH; ``.pth`` files in them are processed (site.addsitedir)."""
    paths = [task_root]
    if "PYTHONPATH" not in os.environ:
        opt = os.environ.get("LAMBDAD_OPT_DIR") or "/opt"  # set outside a jail, where /opt is the host's
        paths += [opt + "/python/lib/python%d.%d/site-packages" % sys.version_info[:2], opt + "/python"]
    for path in reversed(paths):
        while path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
    for path in paths:
        try:
            has_pth = any(name.endswith(".pth") for name in os.listdir(path))
        except OSError:
            continue
        if has_pth:
            import site

            site.addsitedir(path)


def _load_handler(handler: str) -> Handler:
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as exc:
        raise _Fault("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {exc}") from None
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise _Fault("Runtime.BuiltInModuleConflict",
                     f"Cannot use built-in module {module_name} as a handler module")
    import importlib

    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _Fault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        trace = ['  File "%s" Line %s\n    %s' % (exc.filename, exc.lineno, exc.text)]
        raise _Fault("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", trace) from None
    try:
        return getattr(module, function_name)  # type: ignore[no-any-return]
    except AttributeError:
        raise _Fault("Runtime.HandlerNotFound",
                     f"Handler '{function_name}' missing on module '{module_name}'") from None


def init_function(handler: str, task_root: str, begun: bool = False) -> Handler:
    """Set the process up for the function and import its handler ("module.function" or "dir/file.function").

    Line-buffers stdout/stderr, enters ``task_root`` (Lambda's working directory), puts it first on sys.path (then
    the layer paths), arranges the root logger (from AWS_LAMBDA_LOG_LEVEL / AWS_LAMBDA_LOG_FORMAT), then imports.
    Raises InitError carrying the AWS error body; anything else escaping (SystemExit…) is the caller's. With
    ``begun``, ``begin`` has set stdio and logging up already.
    """
    if not begun:  # ``begin`` has not done these already
        _setup_stdio()
    try:
        if os.path.isdir(task_root):
            os.chdir(task_root)
        _setup_sys_path(task_root)
        if not begun:
            _setup_logging(_LogSettings(os.environ))
        return _load_handler(handler)
    except _Fault as fault:
        raise InitError(_error_body(fault.message, fault.error_type, fault.trace)) from None
    except Exception as exc:
        raise InitError(_exception_body(exc)) from None


def fail_init(client: RuntimeClient, error: InitError) -> NoReturn:
    """Report an init error as awslambdaric does (warning, [ERROR] block, POST init/error) and exit(1)."""
    try:
        import logging

        logging.warning(_UNHANDLED_WARNING)
    except Exception:
        pass
    codec = _json_for(os.environ)
    _log_error(error.error, _LogSettings(os.environ).json, codec.dumps)
    _flush_stdio()
    try:
        client.post_init_error(error.error, codec.dumps(error.error).encode("utf-8"))
    except RuntimeApiUnreachable as exc:
        sys.stderr.write(f"lambdad runtime: {exc}\n")
    sys.exit(1)


def _unmarshal(invocation: Invocation, codec: _Json) -> Any:
    content_type = invocation.content_type
    if content_type is not None and content_type.split(";", 1)[0].strip().lower() != "application/json":
        return invocation.body
    try:
        return codec.loads(invocation.body)
    except Exception as exc:
        raise _Fault("Runtime.UnmarshalError", f"Unable to unmarshal input: {exc}") from None


def _invoke(handler: Handler, invocation: Invocation, function: FunctionInfo, codec: _Json) -> tuple[bytes, str]:
    context = LambdaContext(invocation, function, codec)
    event = _unmarshal(invocation, codec)
    result = handler(event, context)
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return codec.dumps(result).encode("utf-8"), "application/json"
    except Exception as exc:
        raise _Fault("Runtime.MarshalError", f"Unable to marshal response: {exc}") from None


def serve(client: RuntimeClient, handler: Handler) -> NoReturn:
    """The invocation loop. Returns only by raising (RuntimeApiUnreachable when the Runtime API is gone)."""
    environ = os.environ
    function = FunctionInfo(environ)
    codec = _json_for(environ)
    json_logs = _LogSettings(environ).json
    while True:
        invocation = client.next()
        request_id = invocation.request_id
        _CURRENT.request_id = request_id
        _CURRENT.tenant_id = invocation.tenant_id
        if invocation.trace_id is not None:
            environ["_X_AMZN_TRACE_ID"] = invocation.trace_id
        else:
            environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            body, content_type = _invoke(handler, invocation, function, codec)
        except _Fault as fault:
            error = _error_body(fault.message, fault.error_type, fault.trace, request_id)
        except Exception as exc:
            error = _exception_body(exc, request_id)
        else:
            _flush_stdio()
            client.post_response(request_id, body, content_type)
            continue
        _log_error(error, json_logs, codec.dumps)
        _flush_stdio()
        client.post_error(request_id, error, codec.dumps(error).encode("utf-8"))


_BEGUN: "RuntimeClient | None" = None  # what ``begin`` made: the Runtime API client, stdio and logging set up


def begin() -> None:
    """A pre-started slot that has its variables, while its code is being attached: make the Runtime API client and
    set stdio and logging up, which need no code. Whatever fails here is left for ``main``, which does it again
    and reports it as it would have."""
    global _BEGUN
    try:
        client = RuntimeClient(os.environ.get("AWS_LAMBDA_RUNTIME_API", ""), RUNTIME_API_FD)
        _setup_stdio()
        _setup_logging(_LogSettings(os.environ))
    except Exception:
        return
    _BEGUN = client


def main() -> None:
    """Run the runtime with _HANDLER, LAMBDA_TASK_ROOT and AWS_LAMBDA_RUNTIME_API from the environment.

    Started as ``python bootstrap.py``, as ``python __pycache__/bootstrap.<tag>.pyc`` or as
    ``python -c "import sys; sys.path.insert(0, DIR); import bootstrap; bootstrap.main()"`` — the last two skip
    compiling this file at every cold start. Either way the runtime's directory leaves sys.path and the name
    ``bootstrap`` leaves sys.modules: both belong to the function.
    """
    prepare()
    here = os.path.dirname(os.path.realpath(__file__))
    if sys.path and sys.path[0] and os.path.realpath(sys.path[0]) == here:
        del sys.path[0]
    if __name__ == "bootstrap":
        sys.modules.pop("bootstrap", None)
    environ = os.environ
    client = _BEGUN
    if client is None:
        try:
            client = RuntimeClient(environ.get("AWS_LAMBDA_RUNTIME_API", ""), RUNTIME_API_FD)
        except RuntimeApiUnreachable as exc:
            sys.stderr.write(f"lambdad runtime: {exc}\n")
            sys.exit(1)
    try:
        handler = init_function(environ.get("_HANDLER", ""), environ.get("LAMBDA_TASK_ROOT") or "/var/task",
                                begun=client is _BEGUN)
    except InitError as error:
        fail_init(client, error)
    try:
        serve(client, handler)
    except RuntimeApiUnreachable as exc:
        _flush_stdio()
        sys.stderr.write(f"lambdad runtime: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
