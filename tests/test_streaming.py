"""Response streaming end to end: boto3's invoke_with_response_stream reading PayloadChunk and InvokeComplete events
from a Node.js ``awslambda.streamifyResponse`` function and from a custom runtime that POSTs its answer chunked
(``Lambda-Runtime-Function-Response-Mode: streaming``) — the chunks reaching the client while the function still
runs, errors mid-stream, LogType Tail, the streamed size limit, a function that does not stream (one chunk), and
Invoke of a streaming function (buffered)."""

from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from tests.server import ROLE, Server, create_python_function, make_zip, wait_until

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="needs node on PATH")

# a custom runtime in Python (the jail shows /usr read-only): streams each answer as chunks with pauses, stamping
# each chunk with the time it was written; {"fail": true} ends the stream with the error trailers
STREAMING_BOOTSTRAP = r"""#!/usr/bin/python3
import base64, http.client, json, os, time
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
API = "/2018-06-01/runtime"
while True:
    c = http.client.HTTPConnection(host, int(port))
    c.request("GET", API + "/invocation/next")
    r = c.getresponse()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    event = json.loads(r.read())
    c.close()
    s = http.client.HTTPConnection(host, int(port))
    s.putrequest("POST", f"{API}/invocation/{rid}/response")
    s.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
    s.putheader("Transfer-Encoding", "chunked")
    s.putheader("Content-Type", "text/plain")
    s.putheader("Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body")
    s.endheaders()
    for i in range(event.get("chunks", 3)):
        data = f"chunk {i} {time.time():.6f}\n".encode()
        s.send(b"%x\r\n%s\r\n" % (len(data), data))
        print(f"wrote chunk {i}", flush=True)
        time.sleep(event.get("pause", 0.5))
    block = b"y" * (256 * 1024)
    left = event.get("bulk", 0)
    while left > 0:
        data = block[:left]
        s.send(b"%x\r\n%s\r\n" % (len(data), data))
        left -= len(data)
    if event.get("fail"):
        error = json.dumps({"errorType": "Custom.Broken", "errorMessage": "broke mid-stream"}).encode()
        s.send(b"0\r\nLambda-Runtime-Function-Error-Type: Custom.Broken\r\n"
               b"Lambda-Runtime-Function-Error-Body: " + base64.b64encode(error) + b"\r\n\r\n")
    else:
        s.send(b"0\r\n\r\n")
    answer = s.getresponse()
    print("runtime api answered", answer.status, answer.read().decode(), flush=True)
    s.close()
"""

NODE_STREAMING = r"""
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  if (event.http) {
    responseStream = awslambda.HttpResponseStream.from(responseStream, {statusCode: 201, headers: {"x-kind": "test"}});
  } else {
    responseStream.setContentType("text/plain");
  }
  for (let i = 0; i < (event.chunks ?? 3); i++) {
    responseStream.write(`chunk ${i} ${Date.now() / 1000}\n`);
    await new Promise((resolve) => setTimeout(resolve, event.pause ?? 500));
  }
  if (event.bulk) {
    responseStream.write(Buffer.alloc(event.bulk, 120));
  }
  if (event.fail) {
    throw new Error("broke mid-stream");
  }
  if (event.late) {
    responseStream.setContentType("text/html");  // too late: the stream has begun
  }
  if (event.unfinished) {
    return "left open";
  }
  console.log("finished", context.awsRequestId);
  responseStream.end();
});

exports.plain = awslambda.streamifyResponse((event, responseStream) => {
  responseStream.write("not async");  // returns no promise
});
"""

FAST = {"MemorySize": 1769}  # a whole vCPU: start-up and writes are not throttled


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # the streamed limit at 20 MiB (Lambda's until July 2025; 200 MiB now, the default) keeps the limit test small
    srv = Server(tmp_path_factory.mktemp("streaming"), env={"LAMBDAD_STREAM_RESPONSE_MAX_MB": "20"}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lam(server: Server):
    return server.client()


@pytest.fixture(scope="module")
def custom(lam) -> str:
    lam.create_function(FunctionName="stream-custom", Runtime="provided.al2023", Role=ROLE, Handler="x",
                        Code={"ZipFile": make_zip({"bootstrap": STREAMING_BOOTSTRAP}, {"bootstrap": 0o755})},
                        Timeout=60, **FAST)
    return "stream-custom"


@pytest.fixture(scope="module")
def node(lam) -> str:
    if shutil.which("node") is None:
        pytest.skip("needs node on PATH")
    lam.create_function(FunctionName="stream-node", Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                        Code={"ZipFile": make_zip({"index.js": NODE_STREAMING})}, Timeout=60, **FAST)
    return "stream-node"


def read_stream(response: dict[str, Any]) -> tuple[list[tuple[float, bytes]], dict[str, Any], float]:
    """The PayloadChunks with the time each arrived, the InvokeComplete event, and when it arrived."""
    chunks: list[tuple[float, bytes]] = []
    complete: dict[str, Any] = {}
    done = 0.0
    stream = response["EventStream"]
    try:
        for event in stream:
            if "PayloadChunk" in event:
                chunks.append((time.time(), event["PayloadChunk"]["Payload"]))
            else:
                complete, done = event["InvokeComplete"], time.time()
    finally:
        stream.close()
    return chunks, complete, done


def stamps(chunks: list[tuple[float, bytes]]) -> list[tuple[float, float]]:
    """(received, written) of each ``chunk N <time>`` line (several lines may come in one PayloadChunk)."""
    out = []
    for received, data in chunks:
        for line in data.decode("utf-8", "replace").splitlines():
            if line.startswith("chunk "):
                out.append((received, float(line.split()[2])))
    return out


def assert_streamed_as_written(chunks: list[tuple[float, bytes]], done: float) -> None:
    """The first chunk reached the client before the function wrote its second (it still slept) and well before
    it ended: the chunks were passed on as they came, not gathered."""
    lines = stamps(chunks)
    assert len(lines) == 3, chunks
    first_received = lines[0][0]
    assert first_received < lines[1][1], lines  # received before the function, awake again, wrote the next
    assert done - first_received > 0.8, (first_received, done)  # two pauses of 0.5 s still to come


@needs_node
def test_node_streamify_response_chunks_arrive_while_the_function_runs(lam, node) -> None:
    response = lam.invoke_with_response_stream(FunctionName=node, Payload=json.dumps({"chunks": 3}))
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert response["ResponseStreamContentType"] == "text/plain"
    chunks, complete, done = read_stream(response)
    assert_streamed_as_written(chunks, done)
    assert complete == {}  # no ErrorCode, no LogResult without LogType Tail


def test_custom_runtime_streams_its_chunked_post(lam, custom) -> None:
    response = lam.invoke_with_response_stream(FunctionName=custom, Payload=json.dumps({"chunks": 3}))
    assert response["ResponseStreamContentType"] == "text/plain"
    chunks, complete, done = read_stream(response)
    assert_streamed_as_written(chunks, done)
    assert "ErrorCode" not in complete


@needs_node
def test_node_error_mid_stream_ends_with_invoke_complete_error(lam, node) -> None:
    response = lam.invoke_with_response_stream(FunctionName=node, Payload=json.dumps({"chunks": 2, "fail": True,
                                                                                       "pause": 100}))
    chunks, complete, _ = read_stream(response)
    assert len(stamps(chunks)) == 2  # what was written before the failure was delivered
    assert complete["ErrorCode"] == "Error"
    assert complete["ErrorDetails"] == "broke mid-stream"


def test_custom_runtime_error_trailers_end_the_stream_with_its_error(lam, custom) -> None:
    response = lam.invoke_with_response_stream(FunctionName=custom, Payload=json.dumps({"chunks": 1, "fail": True,
                                                                                         "pause": 0}))
    chunks, complete, _ = read_stream(response)
    assert len(stamps(chunks)) == 1
    assert complete["ErrorCode"] == "Custom.Broken"
    assert complete["ErrorDetails"] == "broke mid-stream"


@needs_node
def test_log_type_tail_in_invoke_complete(lam, node) -> None:
    response = lam.invoke_with_response_stream(FunctionName=node, Payload=json.dumps({"chunks": 1, "pause": 0}),
                                               LogType="Tail")
    request_id = response["ResponseMetadata"]["RequestId"]
    _, complete, _ = read_stream(response)
    log = base64.b64decode(complete["LogResult"]).decode()
    assert f"START RequestId: {request_id}" in log
    assert f"finished {request_id}" in log
    assert f"REPORT RequestId: {request_id}" in log


def test_streamed_response_over_the_limit_fails_with_response_size_too_large(lam, custom) -> None:
    over = 21 * 1024 * 1024  # the module's server streams at most 20 MiB
    response = lam.invoke_with_response_stream(FunctionName=custom, Payload=json.dumps({"chunks": 0, "bulk": over}))
    chunks, complete, _ = read_stream(response)
    received = sum(len(data) for _, data in chunks)
    assert received <= 20 * 1024 * 1024
    assert complete["ErrorCode"] == "Function.ResponseSizeTooLarge"
    assert complete["ErrorDetails"] == (
        f"Response payload size exceeded maximum allowed payload size ({20 * 1024 * 1024} bytes).")
    # the environment goes on serving: the next invocation streams as usual
    chunks, complete, _ = read_stream(lam.invoke_with_response_stream(
        FunctionName=custom, Payload=json.dumps({"chunks": 1, "pause": 0})))
    assert len(stamps(chunks)) == 1 and "ErrorCode" not in complete


def test_streamed_response_may_exceed_the_buffered_6_mb(lam, custom) -> None:
    size = 8 * 1024 * 1024
    chunks, complete, _ = read_stream(lam.invoke_with_response_stream(
        FunctionName=custom, Payload=json.dumps({"chunks": 0, "bulk": size})))
    assert sum(len(data) for _, data in chunks) == size
    assert len(chunks) > 1
    assert "ErrorCode" not in complete


def test_function_that_does_not_stream_answers_in_one_chunk(lam) -> None:
    create_python_function(lam, "stream-buffered", "def handler(event, context):\n"
                           "    if event.get('fail'):\n        raise ValueError('nope')\n"
                           "    return {'echo': event}\n")
    response = lam.invoke_with_response_stream(FunctionName="stream-buffered", Payload=b'{"a": 1}')
    assert response["ResponseStreamContentType"] == "application/json"
    chunks, complete, _ = read_stream(response)
    assert [data for _, data in chunks] == [b'{"echo": {"a": 1}}']
    assert complete == {}
    chunks, complete, _ = read_stream(lam.invoke_with_response_stream(FunctionName="stream-buffered",
                                                                      Payload=b'{"fail": true}'))
    assert chunks == []
    assert complete["ErrorCode"] == "ValueError" and complete["ErrorDetails"] == "nope"


def test_qualifier_dry_run_and_errors_before_the_function_runs(lam) -> None:
    create_python_function(lam, "stream-versions", "def handler(event, context):\n"
                           "    return context.function_version\n", Publish=True)
    response = lam.invoke_with_response_stream(FunctionName="stream-versions", Qualifier="1")
    assert response["ExecutedVersion"] == "1"
    chunks, _, _ = read_stream(response)
    assert b"".join(data for _, data in chunks) == b'"1"'
    dry = lam.invoke_with_response_stream(FunctionName="stream-versions", InvocationType="DryRun")
    dry["EventStream"].close()  # botocore wraps even an empty body in an EventStream: its connection goes back
    assert dry["StatusCode"] == 204
    with pytest.raises(ClientError) as excinfo:
        lam.invoke_with_response_stream(FunctionName="stream-versions", InvocationType="Event")
    assert excinfo.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke_with_response_stream(FunctionName="stream-no-such-function")
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke_with_response_stream(FunctionName="stream-versions", Payload=b"{not json")


@needs_node
def test_invoke_of_a_streaming_function_is_buffered(lam, node) -> None:
    response = lam.invoke(FunctionName=node, Payload=json.dumps({"chunks": 2, "pause": 10}))
    assert "FunctionError" not in response
    lines = response["Payload"].read().decode().splitlines()
    assert [line.split()[:2] for line in lines] == [["chunk", "0"], ["chunk", "1"]]
    response = lam.invoke(FunctionName=node, Payload=json.dumps({"chunks": 1, "pause": 0, "fail": True}))
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "Error" and error["errorMessage"] == "broke mid-stream"


def test_invoke_of_a_streaming_function_over_6_mb_is_refused(lam, custom) -> None:
    response = lam.invoke(FunctionName=custom, Payload=json.dumps({"chunks": 0, "bulk": 7 * 1024 * 1024}))
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "Function.ResponseSizeTooLarge"


@needs_node
def test_http_response_stream_metadata_prelude(lam, node) -> None:
    response = lam.invoke_with_response_stream(FunctionName=node, Payload=json.dumps({"http": True, "chunks": 1,
                                                                                       "pause": 0}))
    assert response["ResponseStreamContentType"] == "application/vnd.awslambda.http-integration-response"
    chunks, _, _ = read_stream(response)
    body = b"".join(data for _, data in chunks)
    metadata, _, rest = body.partition(b"\0" * 8)
    assert json.loads(metadata) == {"statusCode": 201, "headers": {"x-kind": "test"}}
    assert rest.startswith(b"chunk 0 ")


def test_timeout_mid_stream_ends_with_sandbox_timedout(lam) -> None:
    lam.create_function(FunctionName="stream-timeout", Runtime="provided.al2023", Role=ROLE, Handler="x",
                        Code={"ZipFile": make_zip({"bootstrap": STREAMING_BOOTSTRAP}, {"bootstrap": 0o755})},
                        Timeout=1, **FAST)
    chunks, complete, _ = read_stream(lam.invoke_with_response_stream(
        FunctionName="stream-timeout", Payload=json.dumps({"chunks": 1, "pause": 5})))
    assert len(stamps(chunks)) == 1
    assert complete["ErrorCode"] == "Sandbox.Timedout"
    assert complete["ErrorDetails"].endswith("Task timed out after 1.00 seconds")


def test_a_client_that_leaves_mid_stream_leaves_the_function_to_finish(server, lam, custom) -> None:
    # after its first chunk the function writes 16 MB: more than lambdad holds for a reader that is not reading
    response = lam.invoke_with_response_stream(FunctionName=custom, Payload=json.dumps(
        {"chunks": 1, "pause": 0.3, "bulk": 16 * 1024 * 1024}))
    request_id = response["ResponseMetadata"]["RequestId"]
    stream = response["EventStream"]
    first = next(iter(stream))
    assert "PayloadChunk" in first
    stream.close()  # gone after the first chunk
    # the function is not held back by the reader that left: it ends long before its 60 s timeout
    logs = server.client("logs")
    reports: list[str] = []

    def reported() -> bool:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{custom}", filterPattern=f'"REPORT RequestId: {request_id}"')
        reports[:] = [event["message"] for event in events["events"]]
        return bool(reports)

    assert wait_until(reported, timeout=15), "no REPORT line"
    assert "timeout" not in reports[0]
    # the server goes on serving, and the function (its environment busy until it ends) answers again
    chunks, complete, _ = read_stream(lam.invoke_with_response_stream(
        FunctionName=custom, Payload=json.dumps({"chunks": 1, "pause": 0})))
    assert len(stamps(chunks)) == 1 and "ErrorCode" not in complete


@needs_node
@pytest.mark.parametrize("event, code, details", [
    ({"late": True}, "Runtime.InvalidStreamingOperation", "Cannot set content-type, too late."),
    ({"unfinished": True}, "string", "Response stream is not finished."),
])
def test_node_streaming_handler_mistakes_end_the_stream_with_an_error(lam, node, event, code, details) -> None:
    chunks, complete, _ = read_stream(lam.invoke_with_response_stream(
        FunctionName=node, Payload=json.dumps({"chunks": 1, "pause": 0, **event})))
    assert len(stamps(chunks)) == 1
    assert (complete["ErrorCode"], complete["ErrorDetails"]) == (code, details)


@needs_node
def test_node_streaming_handler_must_be_async(lam, node) -> None:
    lam.create_function(FunctionName="stream-node-plain", Runtime="nodejs20.x", Role=ROLE, Handler="index.plain",
                        Code={"ZipFile": make_zip({"index.js": NODE_STREAMING})}, **FAST)
    _, complete, _ = read_stream(lam.invoke_with_response_stream(FunctionName="stream-node-plain"))
    assert (complete["ErrorCode"], complete["ErrorDetails"]) == (
        "string", "Streaming does not support non-async handlers.")


def test_a_user_needs_lambda_invoke_function_to_stream(server, lam) -> None:
    from tests.test_access import ARN, denied_invoke, error_of, user_client

    create_python_function(lam, "stream-access", "def handler(event, context):\n    return 'ok'\n")
    user, user_arn = user_client(server, "stream-user")
    with pytest.raises(ClientError) as excinfo:
        user.invoke_with_response_stream(FunctionName="stream-access")
    assert error_of(excinfo) == ("AccessDeniedException", 403, denied_invoke(user_arn, f"{ARN}:stream-access"))
    lam.add_permission(FunctionName="stream-access", StatementId="user", Action="lambda:InvokeFunction",
                       Principal=user_arn)
    chunks, complete, _ = read_stream(user.invoke_with_response_stream(FunctionName="stream-access"))
    assert [data for _, data in chunks] == [b'"ok"'] and complete == {}


def test_every_cluster_node_streams_the_invocations_it_receives(cluster) -> None:
    """In a cluster a streamed invocation runs on the node that received it (its chunks are not carried between
    nodes); a buffered Invoke of the same function still goes to its home."""
    nodes = cluster(2).nodes
    clients = [node.client() for node in nodes]
    create_python_function(clients[0], "stream-cluster", "def handler(event, context):\n"
                           "    return context.log_stream_name\n")

    def known(client) -> bool:
        try:
            client.get_function(FunctionName="stream-cluster")
            return True
        except ClientError:
            return False

    assert wait_until(lambda: all(known(c) for c in clients), timeout=10)
    streams = set()
    for client in clients:
        chunks, complete, _ = read_stream(client.invoke_with_response_stream(FunctionName="stream-cluster"))
        assert complete == {}
        streams.add(json.loads(b"".join(data for _, data in chunks)))
    assert len(streams) == 2  # one environment on each node


NODE_URL = r"""
exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  if (event.rawQueryString.includes("http")) {
    responseStream = awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 201, headers: {"content-type": "text/event-stream", "x-kind": "url"}, cookies: ["a=1", "b=2"]});
  } else {
    responseStream.setContentType("text/plain");
  }
  for (let i = 0; i < 3; i++) {
    responseStream.write(`chunk ${i}\n`);
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
  responseStream.end();
});
"""


def url_stream(port: int, url: str, query: str) -> tuple[bytes, list[tuple[float, bytes]], float]:
    """GET a streaming function URL on a raw socket: the response head, and each ``chunk N`` line with the time
    (since the request) it arrived, and when the response ended."""
    import socket
    from urllib.parse import urlsplit

    sent = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(f"GET /?{query} HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\nConnection: close\r\n\r\n".encode())
        received, seen = b"", []
        while True:
            data = conn.recv(65536)
            if not data:
                break
            received += data
            for n in range(3):
                line = f"chunk {n}\n".encode()
                if line in received and all(line != got for _, got in seen):
                    seen.append((time.monotonic() - sent, line))
        ended = time.monotonic() - sent
    head = received.partition(b"\r\n\r\n")[0]
    return head, seen, ended


@needs_node
def test_a_function_url_in_response_stream_mode_streams(server, lam, fname) -> None:
    """InvokeMode RESPONSE_STREAM: the client gets each chunk as the function writes it (chunked transfer), with
    the status, headers and cookies of HttpResponseStream.from's prelude, or 200 and the stream's type."""
    lam.create_function(FunctionName=fname, Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                        Code={"ZipFile": make_zip({"index.js": NODE_URL})}, Timeout=30, **FAST)
    url = lam.create_function_url_config(FunctionName=fname, AuthType="NONE", InvokeMode="RESPONSE_STREAM")[
        "FunctionUrl"]
    lam.add_permission(FunctionName=fname, StatementId="public", Action="lambda:InvokeFunctionUrl", Principal="*",
                       FunctionUrlAuthType="NONE")
    for query, status, kind in (("http=1", b"201", b"text/event-stream"), ("plain=1", b"200", b"text/plain")):
        head, seen, ended = url_stream(server.port, url, query)
        lines = head.lower().split(b"\r\n")
        assert lines[0].split(b" ")[1] == status, head
        assert b"transfer-encoding: chunked" in lines and b"content-type: " + kind in lines
        if status == b"201":
            assert b"x-kind: url" in lines and b"set-cookie: a=1" in lines and b"set-cookie: b=2" in lines
        assert [line for _, line in seen] == [b"chunk 0\n", b"chunk 1\n", b"chunk 2\n"]
        assert seen[0][0] < ended - 0.6, (seen, ended)  # the first chunk came while the function still ran
    lam.update_function_url_config(FunctionName=fname, InvokeMode="BUFFERED")
    head, seen, ended = url_stream(server.port, url, "http=1")
    assert b"transfer-encoding: chunked" not in head.lower()
