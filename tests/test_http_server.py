"""The control API's HTTP/1.1 layer (lambdad/api/server.py), spoken to over raw sockets: what clients other than
botocore send (curl's Expect: 100-continue, chunked bodies, pipelining, HTTP/1.0, Connection: close), and what
it refuses (oversized and malformed requests) — always with an answer, never a hang."""

from __future__ import annotations

import json
import socket
import time

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.server import ACCESS_KEY, SECRET_KEY, Server

LIST_PATH = "/2015-03-31/functions"


def signed(server: Server, method: str = "GET", path: str = LIST_PATH, body: bytes = b"",
           headers: dict[str, str] | None = None) -> tuple[str, list[tuple[str, str]]]:
    """The request line and headers of a correctly signed request (botocore's signer, as a client would)."""
    request = AWSRequest(method=method, url=f"http://127.0.0.1:{server.port}{path}", data=body,
                         headers=headers or {})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", "us-east-1").add_auth(request)
    return f"{method} {path} HTTP/1.1", [("Host", f"127.0.0.1:{server.port}"), *request.headers.items()]


def raw(head: str, headers: list[tuple[str, str]], extra: list[tuple[str, str]] = ()) -> bytes:
    lines = [head, *(f"{n}: {v}" for n, v in [*headers, *extra])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_response(sock: socket.socket, buf: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One response from ``sock`` (``buf`` keeps what belongs to the next)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed; got {bytes(buf)!r}"
        buf += chunk
    end = buf.index(b"\r\n\r\n")
    lines = buf[:end].decode("latin-1").split("\r\n")
    del buf[:end + 4]
    headers = {n.strip().lower(): v.strip() for n, _, v in (line.partition(":") for line in lines[1:])}
    size = int(headers.get("content-length", "0"))
    while len(buf) < size:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a body"
        buf += chunk
    body = bytes(buf[:size])
    del buf[:size]
    return int(lines[0].split(" ")[1]), headers, body


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def closed(sock: socket.socket) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if sock.recv(65536) == b"":
                return True
        except ConnectionResetError:
            return True
    return False


def test_keep_alive_and_pipelined_requests_are_answered_in_order(server: Server) -> None:
    with connect(server) as sock:
        head, headers = signed(server)
        missing = raw(f"GET {LIST_PATH}/nope-{time.time_ns()} HTTP/1.1", signed(server, path=f"{LIST_PATH}/x")[1])
        sock.sendall(raw(head, headers) + missing + raw(head, headers))  # three at once
        buf = bytearray()
        statuses = [read_response(sock, buf)[0] for _ in range(3)]
        assert statuses == [200, 403, 200]  # the middle one is signed for another path
        status, response_headers, body = (sock.sendall(raw(head, headers)), read_response(sock, buf))[1]
        assert status == 200 and "Functions" in json.loads(body) and response_headers["x-amzn-requestid"]
        assert "date" in response_headers


def test_expect_100_continue_gets_an_interim_answer_before_the_body(server: Server) -> None:
    body = json.dumps({"FunctionName": "x"}).encode()
    head, headers = signed(server, "POST", LIST_PATH, body, {"Content-Type": "application/json"})
    with connect(server) as sock:
        sock.sendall(raw(head, headers, [("Content-Length", str(len(body))), ("Expect", "100-continue")]))
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        assert bytes(buf).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        del buf[:len(b"HTTP/1.1 100 Continue\r\n\r\n")]
        sock.sendall(body)
        status, _, answer = read_response(sock, buf)
        assert status == 400 and json.loads(answer)["Type"] == "User"  # CreateFunction without Role/Code: validated


def test_chunked_request_body_is_read(server: Server) -> None:
    body = json.dumps({"FunctionName": "x"}).encode()
    head, headers = signed(server, "POST", LIST_PATH, body, {"Content-Type": "application/json"})
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:5], body[5:])) + b"0\r\n\r\n"
    with connect(server) as sock:
        sock.sendall(raw(head, [h for h in headers if h[0].lower() != "content-length"],
                         [("Transfer-Encoding", "chunked")]) + chunked)
        status, _, answer = read_response(sock, bytearray())
        # the signature covers the body's hash: a verified signature proves the body arrived whole
        assert status == 400 and "validation error" in json.loads(answer)["Message"]


def test_connection_close_and_http_1_0_end_the_connection(server: Server) -> None:
    head, headers = signed(server)
    with connect(server) as sock:
        sock.sendall(raw(head, headers, [("Connection", "close")]))
        status, response_headers, _ = read_response(sock, bytearray())
        assert status == 200 and response_headers.get("connection") == "close"
        assert closed(sock)
    with connect(server) as sock:
        sock.sendall(raw(head.replace("HTTP/1.1", "HTTP/1.0"), headers))
        assert read_response(sock, bytearray())[0] == 200
        assert closed(sock)


def test_oversized_body_is_refused_by_its_length_without_reading_it(server: Server) -> None:
    head, headers = signed(server, "POST", LIST_PATH, b"{}", {"Content-Type": "application/json"})
    headers = [h for h in headers if h[0].lower() != "content-length"]
    with connect(server) as sock:
        sock.sendall(raw(head, headers, [("Content-Length", str(200 * 1024 * 1024))]))
        status, response_headers, body = read_response(sock, bytearray())
        assert status == 413 and response_headers["x-amzn-errortype"].startswith("RequestTooLargeException")
        assert "Request must be smaller than" in json.loads(body)["Message"]
        assert closed(sock)


def test_malformed_request_gets_400_and_the_server_goes_on(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"NOT AN HTTP REQUEST\r\n\r\n")
        assert read_response(sock, bytearray())[0] == 400
        assert closed(sock)
    head, headers = signed(server)
    with connect(server) as sock:
        sock.sendall(raw(head, headers))
        assert read_response(sock, bytearray())[0] == 200


def test_idle_and_stalled_connections_are_closed() -> None:
    """lambdad's HTTP server (run here on its own, with a 1 s idle timeout) closes a kept-alive connection that
    stays silent, and one that stalls in the middle of a request; a busy one stays open."""
    import asyncio

    from lambdad.api.server import HttpRequest, HttpResponse, HttpServer

    async def scenario() -> None:
        async def app(request: HttpRequest) -> HttpResponse:
            return HttpResponse(200, request.body)

        http = HttpServer(app, max_body=1024, too_large=lambda limit: HttpResponse(413), idle_timeout=1.0)
        port = await http.start("127.0.0.1", 0)
        try:
            silent = await asyncio.open_connection("127.0.0.1", port)
            stalled = await asyncio.open_connection("127.0.0.1", port)
            busy = await asyncio.open_connection("127.0.0.1", port)
            silent[1].write(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert (await silent[0].readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            stalled[1].write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")  # 7 bytes never come
            for _ in range(25):  # 2.5 s of requests, one every 0.1 s
                busy[1].write(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                assert (await busy[0].readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
                await asyncio.sleep(0.1)
            assert await asyncio.wait_for(silent[0].read(), 5) == b""  # closed by the server
            assert await asyncio.wait_for(stalled[0].read(), 5) == b""
            busy[1].write(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert (await busy[0].readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            for _, writer in (silent, stalled, busy):
                writer.close()
        finally:
            await http.aclose(timeout=1)

    asyncio.run(scenario())
