"""Connection limits of the web process (web/webworker.py) and the body and long-poll caps.

Each test starts the real gunicorn web process with small knob values and talks to it over
plain sockets, from several loopback source addresses (all of 127/8 reaches this host).
"""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import pytest

from shared import keys
from tests.conftest import ADMIN_TOKEN
from tests.helpers import ROOT, gunicorn
from tests.helpers import call as _call


def _addr(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 80


def _connect(url: str, source: str = "127.0.0.1") -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(_addr(url))
    return s


def _answer(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP answer (with Content-Length): status, lowercase headers, body."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        if not data:
            raise ConnectionError(f"closed before an answer: {buf!r}")
        buf += data
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        data = s.recv(65536)
        if not data:
            break
        body += data
    return int(lines[0].split()[1]), headers, body


def _get(url: str, path: str, source: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    with _connect(url, source) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return _answer(s)


def _closed_within(s: socket.socket, seconds: float, trickle: bytes = b"") -> bool:
    """True when the server closes ``s`` within ``seconds`` (sending ``trickle`` every 0.2 s)."""
    s.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if trickle:
                s.sendall(trickle)
            if s.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def _error(body: bytes) -> dict[str, str]:
    return json.loads(body)["error"]


# --- header deadline ------------------------------------------------------------------------
def test_slow_and_idle_connections_are_closed_after_the_header_deadline(redis_server, r):
    with gunicorn(redis_server.url, WEB_HEADER_TIMEOUT="1") as web:
        started = time.monotonic()
        slow, idle = _connect(web, "127.0.0.2"), _connect(web, "127.0.0.3")
        slow.sendall(b"GET /healthz HTTP/1.1\r\n")
        # one header line every 0.2 s would keep it open forever without a deadline
        assert _closed_within(slow, 8, trickle=b"X-Slow: 1\r\n")
        assert _closed_within(idle, 8)
        assert time.monotonic() - started > 0.8  # not before the deadline
        # a keep-alive connection idle after its answer is closed the same way
        with _connect(web) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _answer(s)[0] == 200
            assert _closed_within(s, 8)
        assert _get(web, "/healthz")[0] == 200


def test_a_body_that_stops_coming_gets_408_and_a_client_that_stops_reading_is_dropped(
        redis_server, r):
    with gunicorn(redis_server.url, WEB_HEADER_TIMEOUT="1") as web:
        with _connect(web) as s:
            s.sendall(b"POST /v1/players HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      b"\r\nContent-Length: 100\r\n\r\n{\"name\": ")
            status, _, body = _answer(s)
            assert status == 408 and _error(body)["code"] == "request_timeout"
            assert _closed_within(s, 8)
        with _connect(web) as s:  # asks for a big page 2,000 times, reads nothing for a while
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)
            time.sleep(4)
            # a client reading this slowly (small window) would take minutes to read it all
            assert _closed_within(s, 10), "the server waited for the client to read"


# --- connections per address ----------------------------------------------------------------
def test_connections_per_address_are_capped_and_others_still_served(redis_server, r):
    with gunicorn(redis_server.url, WEB_MAX_CONN_PER_IP="3", WEB_HEADER_TIMEOUT="30") as web:
        held = [_connect(web, "127.0.0.2") for _ in range(3)]
        status, headers, body = _get(web, "/healthz", "127.0.0.2")
        assert status == 429 and headers["retry-after"] == "1"
        assert headers["content-type"] == "application/json"
        assert _error(body)["code"] == "rate_limited"
        assert _get(web, "/healthz", "127.0.0.3")[0] == 200
        held.pop().close()  # a slot comes back when a connection ends
        deadline = time.monotonic() + 5
        while _get(web, "/healthz", "127.0.0.2")[0] != 200:
            assert time.monotonic() < deadline, "the closed connection was never counted out"
            time.sleep(0.1)
        for s in held:
            s.close()


# --- bodies ---------------------------------------------------------------------------------
CHUNKED_HEAD = ("POST /v1/players HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n{extra}\r\n")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.fixture(scope="module")
def web_small_body(redis_server):
    with gunicorn(redis_server.url, REQUEST_BODY_MAX="2048") as url:
        yield url


def test_chunked_body_over_the_limit_is_413_not_cut(web_small_body, r):
    """Cut at the limit this body is valid JSON: before the fix it registered the player."""
    body = json.dumps({"name": "cutbody", "password": "secret1"}).encode() + b" " * 400_000
    with _connect(web_small_body) as s:
        s.sendall(CHUNKED_HEAD.format(extra="").encode())
        for i in range(0, len(body), 16384):
            s.sendall(_chunk(body[i:i + 16384]))
        s.sendall(b"0\r\n\r\n")
        status, headers, answer = _answer(s)
        assert status == 413 and headers["content-type"] == "application/json"
        assert _error(answer) == {"code": "too_large",
                                  "message": "request body larger than 2048 bytes"}
        # the rest of the body was read and dropped: the connection serves the next request
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _answer(s)[0] == 200
    assert not r.exists(keys.player("cutbody"))
    small = {"name": "smallbody", "password": "secret1"}
    assert _call("POST", web_small_body + "/v1/players", small)[0] == 201


def test_413_is_readable_when_the_connection_closes(web_small_body):
    """A client that sends its whole (oversized) body before reading, on a connection that
    closes after the answer, reads the 413 instead of a reset."""
    body = b"x" * 800_000  # under the drain bound (1 MiB), well over what socket buffers hold
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
        s.settimeout(10)
        s.connect(_addr(web_small_body))
        s.sendall(CHUNKED_HEAD.format(extra="Connection: close\r\n").encode())
        for i in range(0, len(body), 16384):
            s.sendall(_chunk(body[i:i + 16384]))
        s.sendall(b"0\r\n\r\n")
        status, _, answer = _answer(s)
    assert status == 413 and _error(answer)["code"] == "too_large"


def test_an_endless_body_is_answered_then_cut_off(web_small_body):
    """After the 413 the server reads a bounded amount of what follows, then closes."""
    s = _connect(web_small_body)
    s.sendall(CHUNKED_HEAD.format(extra="").encode())
    sent, stop = [0], threading.Event()

    def pour() -> None:
        piece = _chunk(b"y" * 65536)
        try:
            while not stop.is_set() and sent[0] < 200 * 1024 * 1024:
                s.sendall(piece)
                sent[0] += len(piece)
        except OSError:
            pass

    pourer = threading.Thread(target=pour)
    pourer.start()
    try:
        status, _, answer = _answer(s)
        assert status == 413 and _error(answer)["code"] == "too_large"
        pourer.join(20)
        assert not pourer.is_alive(), "the server kept reading the endless body"
        assert sent[0] < 48 * 1024 * 1024  # 1 MiB read, plus what socket buffers hold
    finally:
        stop.set()
        pourer.join()
        s.close()


# --- gunicorn's own errors ------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "status", "code"), [
    pytest.param(b"GARBAGE\r\n\r\n", 400, "invalid_input", id="bad-request-line"),
    pytest.param(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "too_large",
                 id="uri-too-long"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431,
                 "too_large", id="header-too-large"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n"
                 + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431,
                 "too_large", id="too-many-headers"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400, "invalid_input",
                 id="bad-header-name"),
])
def test_gunicorn_level_errors_are_json(web_small_body, raw, status, code):
    with _connect(web_small_body) as s:
        s.sendall(raw)
        got, headers, body = _answer(s)
    assert (got, headers["content-type"]) == (status, "application/json")
    assert _error(body)["code"] == code and _error(body)["message"]


# --- long-polls per server ------------------------------------------------------------------
def test_long_polls_per_server_are_capped_with_429(redis_server, r):
    with gunicorn(redis_server.url, LONGPOLL_PER_SERVER_MAX="2") as web:
        _, one = _call("POST", web + "/v1/servers", {"name": "one"}, ADMIN_TOKEN)
        _, two = _call("POST", web + "/v1/servers", {"name": "two"}, ADMIN_TOKEN)
        polls = [threading.Thread(target=_call, args=("GET", web + "/v1/messages?wait=3"),
                                  kwargs={"token": one["key"]}) for _ in range(2)]
        for t in polls:
            t.start()
        deadline = time.monotonic() + 10
        while r.zcard(keys.server_polls(one["id"])) < 2:  # both polls hold their slots
            assert time.monotonic() < deadline
            time.sleep(0.05)
        req = f"GET /v1/messages?wait=3 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {one['key']}"
        with _connect(web) as s:
            s.sendall(req.encode() + b"\r\n\r\n")
            status, headers, body = _answer(s)
        assert status == 429 and _error(body)["code"] == "rate_limited"
        assert 1 <= int(headers["retry-after"]) <= 3
        # without wait, and for another server, reads go on
        assert _call("GET", web + "/v1/messages", token=one["key"])[0] == 200
        assert _call("GET", web + "/v1/messages?wait=1", token=two["key"])[0] == 200
        for t in polls:
            t.join()
        assert _call("GET", web + "/v1/messages?wait=1", token=one["key"])[0] == 200
        assert r.zcard(keys.server_polls(one["id"])) == 0


def test_a_slot_left_by_a_dead_process_frees_itself(app, api, r):
    """A poll whose process died keeps its slot only until its wait (plus grace) is over."""
    import dataclasses

    from wsgi import create_app

    config = dataclasses.replace(app.extensions["ssm"]["config"], longpoll_per_server_max=1)
    client = create_app(config, r).test_client()
    sid, headers = api.server("crashed")
    now_ms = int(r.time()[0]) * 1000
    r.zadd(keys.server_polls(sid), {"dead": now_ms + 2000})
    assert client.get("/v1/messages?wait=1", headers=headers).status_code == 429
    r.zadd(keys.server_polls(sid), {"dead": now_ms - 1})
    assert client.get("/v1/messages?wait=1", headers=headers).status_code == 200


def test_workers_raise_the_soft_open_file_limit():
    code = ("import resource; from web.webworker import raise_nofile; "
            "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)); "
            "print(raise_nofile(10000), hard, resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()
    got, hard, now = (int(x) for x in out)
    assert got == now == (10000 if hard == resource.RLIM_INFINITY else hard)


# --- bind address ---------------------------------------------------------------------------
def test_web_binds_web_host_only(redis_server, r):
    with gunicorn(redis_server.url, WEB_HOST="127.0.0.2") as web:
        assert _get(web, "/healthz")[0] == 200
        with pytest.raises(ConnectionRefusedError):
            _connect(web.replace("127.0.0.2", "127.0.0.1")).close()


def test_a_trickled_body_gets_one_deadline_for_the_whole_body(redis_server, r):
    """One byte every 0.3 s never trips the per-read wait (1 s) but takes 30 s for 100 bytes:
    WEB_BODY_TIMEOUT (2 s) ends it with 408 and closes the connection."""
    with gunicorn(redis_server.url, WEB_HEADER_TIMEOUT="1", WEB_BODY_TIMEOUT="2") as web:
        with _connect(web) as s:
            s.sendall(b"POST /v1/players HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      b"\r\nContent-Length: 100\r\n\r\n")
            started, got = time.monotonic(), b""
            s.settimeout(0.3)
            while b"\r\n\r\n" not in got:
                assert time.monotonic() - started < 10, "the trickle was never cut off"
                try:
                    s.sendall(b" ")
                    data = s.recv(65536)
                except TimeoutError:
                    continue
                assert data, "closed without an answer"
                got += data
            took = time.monotonic() - started
            assert got.startswith(b"HTTP/1.1 408"), got[:100]
            assert 1.5 < took < 6, took
            assert _closed_within(s, 5)
        assert _get(web, "/healthz")[0] == 200
