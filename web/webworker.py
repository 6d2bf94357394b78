"""The web process's gunicorn worker: gunicorn's gevent worker plus limits at the connection layer.

``web/gunicorn_conf.py`` names it as ``worker_class``. What it adds (docs/DESIGN.md,
"Connection limits"):

- **Header deadline.** A connection must deliver a complete request head within
  ``WEB_HEADER_TIMEOUT`` seconds of being accepted or of its previous answer, else it is closed
  (this is also the keep-alive idle time). Without it an idle or trickling client holds a
  connection slot for as long as it likes.
- **Connections per address.** At most ``WEB_MAX_CONN_PER_IP`` live connections per peer
  address in each worker process; the next one gets a JSON 429 ``rate_limited`` and is closed.
- **Slow bodies and slow readers.** While a request is served, each read of its body and each
  write of the answer may wait at most ``WEB_HEADER_TIMEOUT`` (like nginx's client_body_timeout
  and send_timeout); a body that stalls gets 408 ``request_timeout`` from the app.
- **Body deadline.** The whole body must arrive within ``WEB_BODY_TIMEOUT`` seconds of the end
  of the head (:class:`DeadlineBody`): a body trickled a byte at a time, each read within the
  per-read wait, cannot hold a connection longer. Past it the app answers 408 and the connection
  is closed.
- **Bounded body drain.** After an answer, what the client still sends of its request body is
  read and dropped, at most :data:`DRAIN_MAX` bytes within the header deadline, so a client that
  is answered 413 before it finished sending sees the answer instead of a reset; past the bound
  the connection is closed.
- **JSON for gunicorn's own errors** (bad request line 400, URI too long 414, header fields too
  large 431, ...): ``{"error": {"code", "message"}}`` instead of gunicorn's HTML page.
- **File descriptors.** The soft ``RLIMIT_NOFILE`` is raised to the hard limit at start, since
  every connection is one descriptor.
"""

from __future__ import annotations

import json
import resource
import socket
import time
from typing import Any

import gevent
from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.workers.ggevent import GeventWorker

from shared.config import Config

DRAIN_MAX = 1024 * 1024  # request body bytes read and dropped after an answer, at most
REFUSE_LINGER = 1.0  # seconds a refused connection may take to read its 429 before the close
ERROR_LINGER = 2.0  # likewise after one of gunicorn's own errors

# gunicorn's parse errors -> (status, reason, code); the first class that matches wins, and
# any other ParseException is a 400.
PARSE_ERRORS: tuple[tuple[type[Exception], int, str, str], ...] = (
    (http_errors.LimitRequestLine, 414, "URI Too Long", "too_large"),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large", "too_large"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented", "not_implemented"),
    (http_errors.ExpectationFailed, 417, "Expectation Failed", "invalid_input"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden", "forbidden"),
    (http_errors.ConfigurationProblem, 500, "Internal Server Error", "internal"),
    (http_errors.ParseException, 400, "Bad Request", "invalid_input"),
)


def raise_nofile(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (to ``wanted`` when the hard limit is
    unlimited); returns the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(wanted, soft) if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def error_response(status: int, reason: str, code: str, message: str,
                   retry_after: int | None = None) -> bytes:
    """A complete HTTP/1.1 answer with a JSON error body that closes the connection."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = [f"HTTP/1.1 {status} {reason}", "Connection: close",
            "Content-Type: application/json", f"Content-Length: {len(body)}"]
    if retry_after:
        head.append(f"Retry-After: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def drain(body: Any, max_bytes: int, seconds: float) -> bool:
    """Read and drop what is left of a request body; True when it ended within the bounds."""
    got = 0
    with gevent.Timeout(seconds, False):
        while got <= max_bytes:
            try:
                data = body.read(64 * 1024)
            except (OSError, http_errors.ParseException):
                return False
            if not data:
                return True
            got += len(data)
    return False


class DeadlineBody:
    """A request body (gunicorn's ``Body``, the app's ``wsgi.input``) whose reads all end by one
    deadline: a read that would go past it raises TimeoutError, and so does every read after."""

    def __init__(self, body: Any, seconds: float):
        self.body, self.deadline, self.expired = body, time.monotonic() + seconds, False

    def _bounded(self, read: Any, *args: Any) -> Any:
        left = self.deadline - time.monotonic()
        if left > 0:
            try:
                with gevent.Timeout(left, TimeoutError("request body deadline")):
                    return read(*args)
            except TimeoutError:
                pass
        self.expired = True
        raise TimeoutError("the request body did not arrive within WEB_BODY_TIMEOUT")

    def read(self, size: int | None = None) -> bytes:
        return self._bounded(self.body.read, size)

    def readline(self, size: int | None = None) -> bytes:
        return self._bounded(self.body.readline, size)

    def readlines(self, size: int | None = None) -> list[bytes]:
        return self._bounded(self.body.readlines, size)

    def __iter__(self) -> DeadlineBody:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    next = __next__

    def getsize(self, size: int | None) -> int:
        return self.body.getsize(size)


class Worker(GeventWorker):
    """gunicorn's gevent worker with a header deadline, a per-address connection cap, a bounded
    body drain and JSON errors (module docstring)."""

    def init_process(self) -> None:
        config = Config.from_env()  # the master already checked it (gunicorn_conf.on_starting)
        self.header_timeout = config.web_header_timeout
        self.body_timeout = config.web_body_timeout
        self.max_per_ip = config.web_max_conn_per_ip
        self.per_ip: dict[str, int] = {}
        soft = raise_nofile(self.worker_connections + 256)
        if soft < self.worker_connections + 64:
            self.log.warning("open file limit %s is below WEB_WORKER_CONNECTIONS (%s): raise "
                             "the hard limit (ulimit -Hn)", soft, self.worker_connections)
        super().init_process()

    def timeout_ctx(self) -> gevent.Timeout:
        """Bounds the wait for each complete request head (gunicorn's keep-alive loop)."""
        return gevent.Timeout(self.header_timeout, False)

    def handle(self, listener: Any, client: socket.socket, addr: Any) -> None:
        ip = addr[0] if isinstance(addr, tuple) else ""
        if not self.max_per_ip or not ip:
            super().handle(listener, client, addr)
            return
        live = self.per_ip.get(ip, 0)
        if live >= self.max_per_ip:
            self._refuse(client, ip)
            return
        self.per_ip[ip] = live + 1
        try:
            super().handle(listener, client, addr)
        finally:
            left = self.per_ip[ip] - 1
            if left:
                self.per_ip[ip] = left
            else:
                del self.per_ip[ip]

    def _refuse(self, client: socket.socket, ip: str) -> None:
        self.log.debug("refused a connection from %s: %s open", ip, self.max_per_ip)
        try:
            client.setblocking(True)
            util.write_nonblock(client, error_response(
                429, "Too Many Requests", "rate_limited",
                f"too many connections from your address (at most {self.max_per_ip})", 1))
        except OSError:
            util.close(client)
            return
        util.close_graceful(client, timeout=REFUSE_LINGER)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> bool:
        """Serve one request; then drop what is left of its body (bounded), or close.

        While it is served, each read of the body and each write of the answer may wait at
        most the header deadline (a client that stops sending or reading is dropped), and the
        whole body must arrive within WEB_BODY_TIMEOUT (:class:`DeadlineBody`)."""
        sock.settimeout(self.header_timeout)
        if req.body is not None:
            req.body = DeadlineBody(req.body, self.body_timeout)
        try:
            keep = super().handle_request(listener_name, req, sock, addr)
        except StopIteration:
            # gunicorn closes after this answer: let the client finish sending and read it
            util.close_graceful(sock, timeout=self.header_timeout, max_drain=DRAIN_MAX)
            raise
        except TimeoutError:
            self.log.debug("closed a connection that stopped reading its answer")
            util.close(sock)
            raise StopIteration() from None
        finally:
            if sock.fileno() != -1:
                sock.settimeout(None)  # the head of the next request: timeout_ctx bounds it
        # (GeventWorker.handle_request returns nothing, so ``keep`` tells nothing here)
        if req.body is not None and (req.body.expired
                                     or not drain(req.body, DRAIN_MAX, self.header_timeout)):
            util.close_graceful(sock, timeout=ERROR_LINGER)
            raise StopIteration()
        return keep

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's own error answers, as JSON (its default is an HTML page)."""
        status, reason, code = next(
            (row[1:] for row in PARSE_ERRORS if isinstance(exc, row[0])),
            (500, "Internal Server Error", "internal"))
        if status == 500:
            self.log.exception("Error handling request")
            message = "internal error"
        else:
            peer = addr[0] if isinstance(addr, tuple) else addr
            self.log.warning("Invalid request from ip=%s: %s", peer, exc)
            message = str(exc)
        try:
            util.write_nonblock(client, error_response(status, reason, code, message))
        except OSError:
            return
        util.close_graceful(client, timeout=ERROR_LINGER)
