"""Webhook delivery over HTTP (docs/WEBHOOKS.md): the URL and address rules, the body and its
signature, the Discord format, and one POST within a deadline. No Redis here; docs/WEBHOOKS.md.

The HTTP client is urllib3 (pinned in requirements.txt): the maintained core under requests,
already a dependency of our dependencies, small, synchronous (a delivery job does one POST),
with per-connection control of what we need:
- the address: the URL's host is resolved here, every address is checked (loopback, private,
  link-local and other non-global ranges refused unless WEBHOOK_ALLOW_PRIVATE=1), and the
  connection goes to the checked address (the Host header, TLS SNI and the certificate check
  keep the name), so a second DNS answer cannot swap in a private address after the check;
- redirects: never followed (a redirect could point at a private address after the check);
  a 3xx is a failed attempt that names the ``Location``;
- time: one deadline of WEBHOOK_TIMEOUT_SECONDS (5) for the whole attempt: DNS (in a thread,
  abandoned at the deadline), connect, sending, the response headers and up to 1 KiB of body,
  each step given only the time left. A socket read's timeout restarts with every byte, so a
  server trickling its headers a line a second would outlast it: a timer (``_Deadline``)
  shuts the attempt's socket down at the deadline, whatever it is waiting for, and the
  attempt is a failure "timed out" like any other (logged, retried).
- no retries of its own (``retries=False``): RQ retries the job, with back-off.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3

from shared.addresses import embedded_ipv4

USER_AGENT = "SSMGlobal-Webhooks/1"
URL_MAX = 2048
DISCORD_MAX = 2000  # characters of a Discord message
BODY_KEPT = 1024  # bytes of a response read (for the error text)
_DNS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="ssm-dns")


class Refused(ValueError):
    """A URL or address a webhook may not target; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as in the URL, brackets removed
    port: int
    path: str  # path and query


@dataclass(frozen=True)
class Result:
    status: int | None  # HTTP status, or None when no answer came
    error: str | None  # None when delivered
    ms: int

    @property
    def delivered(self) -> bool:
        return self.error is None


# --- what may be targeted ---------------------------------------------------------------------
def parse_url(url: str) -> Target:
    """The parts of an http(s) URL, or Refused saying what is wrong."""
    if len(url) > URL_MAX:
        raise Refused(f"must be at most {URL_MAX} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise Refused("must be an http or https URL")
    if not parts.hostname:
        raise Refused("must name a host")
    if parts.username is not None or parts.password is not None:
        raise Refused("must not carry a user name or password")
    if any(c.isspace() for c in url):
        raise Refused("must not contain spaces")
    scheme = parts.scheme.lower()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, parts.hostname, port or (443 if scheme == "https" else 80), path)


def _literal(host: str) -> Any:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


# Refused besides what ``ipaddress`` calls not global: the IETF protocol assignments (its
# 192.0.0.0/24 is "global" in Python 3.11) and the deprecated IPv6 site-local range.
REFUSED_RANGES = (ipaddress.ip_network("192.0.0.0/24"), ipaddress.ip_network("fec0::/10"))


def blocked(address: Any) -> bool:
    """Loopback, private, link-local, or any other address not globally reachable (unspecified,
    reserved, multicast, shared 100.64/10, documentation ranges, 192.0.0.0/24, site-local
    fec0::/10); IPv4-mapped IPv6 judged as the IPv4 address it maps; any other IPv6 form that
    carries an IPv4 address (compatible, NAT64, 6to4, Teredo: ``shared.addresses``) refused
    when that IPv4 address is, as well."""
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    inner = embedded_ipv4(address)
    return (address.is_loopback or address.is_private or address.is_link_local
            or address.is_multicast or address.is_unspecified or address.is_reserved
            or not address.is_global
            or any(address in net for net in REFUSED_RANGES if net.version == address.version)
            or (inner is not None and blocked(inner)))


def resolve(host: str, port: int, timeout: float) -> list[Any]:
    """Every address ``host`` resolves to (a literal is itself), within ``timeout`` seconds.
    Raises OSError (socket.gaierror, TimeoutError) when it does not resolve in time."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    future = _DNS.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=max(timeout, 0.001))
    except concurrent.futures.TimeoutError:
        raise TimeoutError(f"DNS lookup of {host} took over {timeout:.1f} s") from None
    seen: list[Any] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in seen:
            seen.append(address)
    return seen


def check_addresses(host: str, addresses: list[Any], allow_private: bool) -> None:
    if allow_private:
        return
    for address in addresses:
        if blocked(address):
            shown = host if str(address) == host else f"{host} ({address})"
            raise Refused(f"{shown} is a loopback, private or link-local address "
                          "(refused unless WEBHOOK_ALLOW_PRIVATE=1)")


def check_new_url(url: str, allow_private: bool, dns_timeout: float = 2.0) -> Target:
    """The rules at creation: http(s) only; a literal address or a name that resolves now must
    not be private (a name that does not resolve yet is accepted: every delivery checks it
    again, after DNS)."""
    target = parse_url(url)
    try:
        addresses = resolve(target.host, target.port, dns_timeout)
    except OSError:
        return target
    check_addresses(target.host, addresses, allow_private)
    return target


# --- what is sent -------------------------------------------------------------------------------
def payload(event: str, at: float, data: Any, fmt: str) -> bytes:
    """The request body: ``{event, at, data}``, or ``{"content": ...}`` for Discord."""
    if fmt == "discord":
        return json.dumps({"content": discord_line(event, data),
                           "allowed_mentions": {"parse": []}}).encode()
    return json.dumps({"event": event, "at": at, "data": data}).encode()


def signature(secret: str, body: bytes, timestamp: str) -> str:
    """``X-SSM-Signature``: ``sha256=`` and the hex HMAC-SHA-256, keyed by the webhook's
    secret, of ``timestamp + "." + body`` (docs/WEBHOOKS.md), ``timestamp`` being the attempt's
    ``X-SSM-Timestamp`` (unix seconds): a captured delivery cannot be replayed later as new."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """``X-SSM-Timestamp`` (this attempt's time) and the ``X-SSM-Signature`` over it."""
    timestamp = str(int(time.time() if now is None else now))
    return {"X-SSM-Timestamp": timestamp, "X-SSM-Signature": signature(secret, body, timestamp)}


_MARKDOWN = str.maketrans({c: f"\\{c}" for c in "\\*_~`|>#[]()"})


def _md(value: Any) -> str:
    """User-supplied text shown literally in Discord (no markdown, no links)."""
    return str(value).translate(_MARKDOWN)


def _on(ban: dict[str, Any]) -> str:
    """Where a ban applies, when not everywhere: `` on server <id>``."""
    scope = ban.get("scope")
    return f" on server {_md(scope)}" if scope and scope != "global" else ""


def _record_top(d: dict[str, Any]) -> str:
    prev = d.get("previous")
    was = f" (was {_md(prev.get('player'))} with {prev.get('score')})" \
        if isinstance(prev, dict) else ""
    return f"New #1 on {_md(d.get('board'))}: {_md(d.get('player'))} with {d.get('score')}{was}"


def _server_online(d: dict[str, Any]) -> str:
    return f"Server online: {_md(d.get('name'))} ({_md(d.get('host'))}:{d.get('port')}, " \
           f"{_md(d.get('mode'))} on {_md(d.get('map'))})"


def _server_offline(d: dict[str, Any]) -> str:
    return f"Server offline: {_md(d.get('name'))}"


def _ban_created(d: dict[str, Any]) -> str:
    who = " / ".join(_md(d[k]) for k in ("player", "ip") if d.get(k)) or "?"
    until = d.get("expires_at")
    expiry = time.strftime(" until %Y-%m-%d %H:%M UTC", time.gmtime(until)) \
        if isinstance(until, int | float) else " (permanent)"
    return f"Banned {who}{_on(d)}: {_md(d.get('reason', ''))}{expiry}"


def _ban_lifted(d: dict[str, Any]) -> str:
    who = " / ".join(_md(d[k]) for k in ("player", "ip") if d.get(k)) or _md(d.get("id"))
    why = f": {_md(d['lift_reason'])}" if d.get("lift_reason") else ""
    by = f" (by {_md(d['lifted_by'])}{why})" if d.get("lifted_by") else ""
    return f"Ban lifted: {who}{_on(d)}{by}"


def _season_ended(d: dict[str, Any]) -> str:
    top = ", ".join(f"{r.get('rank')}. {_md(r.get('player'))} {r.get('score')}"
                    for r in d.get("top") or [] if isinstance(r, dict))
    return f"Season {d.get('season')} of {_md(d.get('board'))} ended" + (f": {top}" if top else "")


# Discord's line for each event of ``events.EVENTS`` (every one has its line: tests check), from
# the event's data (an object; anything else reads as ``{}``).
DISCORD_LINES: dict[str, Callable[[dict[str, Any]], str]] = {
    "ban.created": _ban_created,
    "ban.lifted": _ban_lifted,
    "record.top": _record_top,
    "season.ended": _season_ended,
    "server.online": _server_online,
    "server.offline": _server_offline,
}


def discord_line(event: str, data: Any) -> str:
    """One readable line per event, for Discord's ``content`` (at most 2,000 characters)."""
    line = DISCORD_LINES.get(event)
    text = line(data if isinstance(data, dict) else {}) if line else f"{event}: {json.dumps(data)}"
    return text[:DISCORD_MAX]


# --- one attempt --------------------------------------------------------------------------------
class _Deadline:
    """Shuts down the sockets of one attempt when its deadline passes (docs/WEBHOOKS.md: an attempt
    never holds a worker past WEBHOOK_TIMEOUT_SECONDS in total); ``fired`` says it did."""

    def __init__(self, seconds: float):
        self.fired = False
        self.socks: list[socket.socket] = []
        self.lock = threading.Lock()
        self.timer = threading.Timer(max(seconds, 0.0), self._fire)
        self.timer.daemon = True
        self.timer.start()

    def watch(self, sock: Any) -> None:
        with self.lock:
            self.socks.append(sock)
            if self.fired:
                _shut(sock)

    def _fire(self) -> None:
        with self.lock:
            self.fired = True
            for sock in self.socks:
                _shut(sock)

    def cancel(self) -> None:
        self.timer.cancel()

    def connection_class(self, base: type) -> type:
        """``base`` (urllib3's HTTP(S)Connection) whose sockets this deadline watches."""
        deadline = self

        class Watched(base):
            def connect(self) -> None:
                super().connect()
                deadline.watch(self.sock)

        return Watched


def _shut(sock: Any) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def post(url: str, secret: str, fmt: str, event: str, event_id: str, at: float, data: Any, *,
         timeout: float, allow_private: bool) -> Result:
    """POST one event to ``url`` within ``timeout`` seconds; never raises for the network."""
    start = time.monotonic()
    deadline = start + timeout

    def done(status: int | None, error: str | None) -> Result:
        return Result(status, error, int((time.monotonic() - start) * 1000))

    try:
        target = parse_url(url)
        addresses = resolve(target.host, target.port, deadline - time.monotonic())
        check_addresses(target.host, addresses, allow_private)
    except Refused as exc:
        return done(None, f"refused: {exc}")
    except OSError as exc:
        return done(None, f"DNS: {exc}"[:200])
    body = payload(event, at, data, fmt)
    default = 443 if target.scheme == "https" else 80
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if target.port != default:
        host_header += f":{target.port}"
    headers = {"Host": host_header, "Content-Type": "application/json",
               "User-Agent": USER_AGENT, "X-SSM-Event": event, "X-SSM-Event-Id": event_id,
               **signed_headers(secret, body)}
    address = str(addresses[0])
    left = max(deadline - time.monotonic(), 0.001)
    kw: dict[str, Any] = {}
    if target.scheme == "https":
        cls: Any = urllib3.HTTPSConnectionPool
        if _literal(target.host) is None:
            kw = {"server_hostname": target.host, "assert_hostname": target.host}
    else:
        cls = urllib3.HTTPConnectionPool
    pool = cls(address, target.port, maxsize=1, retries=False,
               timeout=urllib3.Timeout(connect=left, read=left), **kw)
    cut = _Deadline(left)
    pool.ConnectionCls = cut.connection_class(cls.ConnectionCls)
    try:
        resp = pool.urlopen("POST", target.path, body=body, headers=headers, redirect=False,
                            retries=False, preload_content=False, assert_same_host=False)
        try:
            text = _start_of_body(resp, deadline) if resp.status >= 300 else b""
        finally:
            resp.release_conn()
        if cut.fired:  # headers cut short read as complete: the answer is not one
            return done(None, f"timed out after {timeout:g} s")
    except urllib3.exceptions.TimeoutError:
        return done(None, f"timed out after {timeout:g} s")
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if cut.fired:  # the deadline cut the socket, whatever the read said
            return done(None, f"timed out after {timeout:g} s")
        return done(None, _reason(exc))
    finally:
        cut.cancel()
        pool.close()
    if 200 <= resp.status < 300:
        return done(resp.status, None)
    if 300 <= resp.status < 400:
        location = resp.headers.get("Location", "")
        return done(resp.status, f"HTTP {resp.status}: redirect not followed "
                                 f"(Location: {location[:100]})")
    snippet = text.decode("utf-8", "replace").strip().replace("\n", " ")[:150]
    return done(resp.status, f"HTTP {resp.status}" + (f": {snippet}" if snippet else ""))


def _start_of_body(resp: Any, deadline: float) -> bytes:
    """Up to BODY_KEPT bytes of an error answer (for the log), when time is left."""
    if deadline - time.monotonic() <= 0:
        return b""
    try:
        return resp.read(BODY_KEPT, decode_content=False)
    except (urllib3.exceptions.HTTPError, OSError):
        return b""


def _reason(exc: BaseException) -> str:
    """A short, readable cause of a network failure."""
    inner: object = getattr(exc, "reason", None) or exc
    while isinstance(inner, urllib3.exceptions.HTTPError) and getattr(inner, "reason", None):
        inner = getattr(inner, "reason", None)
    text = str(inner)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return f"{type(inner).__name__}: {text}"[:200]
