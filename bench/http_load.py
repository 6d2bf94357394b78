"""HTTP load generators: wrk (preferred) or a Python asyncio keep-alive client (fallback).

Both take a list of :class:`bench.world.Req` and cycle through it, each connection taking the
next request, so a pool of distinct requests (one per resource a DELETE consumes) is used once
each. Both report requests/s, p50/p99 latency and the number of non-2xx answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import string
import subprocess
import tempfile
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.world import Req


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: int
    tool: str
    counted: int = 0  # answers with the status asked for (``count_status``), when asked

    def as_dict(self) -> dict[str, float | int | str]:
        return {"rps": round(self.rps, 1), "p50_ms": round(self.p50_ms, 2),
                "p99_ms": round(self.p99_ms, 2), "requests": self.requests,
                "non2xx": self.non2xx, "socket_errors": self.socket_errors, "tool": self.tool}


def tool_name(prefer: str = "auto") -> str:
    if prefer in ("auto", "wrk") and shutil.which("wrk"):
        return "wrk"
    return "python"


def run(base_url: str, reqs: list[Req], duration: float, connections: int = 32,
        tool: str = "auto", count_status: int | None = None) -> Result:
    """``count_status``: also count the answers with this status (``Result.counted``; wrk
    then runs a Lua ``response()`` per answer, which costs it a little)."""
    if tool_name(tool) == "wrk":
        return run_wrk(base_url, reqs, duration, connections, count_status)
    return asyncio.run(run_python(base_url, reqs, duration, connections, count_status))


# --- wrk ------------------------------------------------------------------------------------
CHUNK = 2000


def _lua_str(s: str) -> str:
    out = []
    for b in s.encode():
        ch = chr(b)
        if ch in '\\"':
            out.append("\\" + ch)
        elif 32 <= b < 127:
            out.append(ch)
        else:
            out.append(f"\\{b:03d}")
    return '"' + "".join(out) + '"'


_LUA = """
specs = {}
%(specs)s
local n, nthreads, salt = #specs, %(threads)d, %(salt)s
local cache, idx, counter = {}, 0, 0
local seq, threads = 0, {}
counted = 0  -- a global: the main state reads it from each thread (thread:get)
function setup(thread) thread:set("tid", seq); seq = seq + 1; threads[#threads + 1] = thread end
function init(args)
  for i, s in ipairs(specs) do
    if not s[5] then cache[i] = wrk.format(s[1], s[2], s[3], s[4]) end
  end
end
function request()
  local t = tid or 0
  local i = (idx * nthreads + t) %% n + 1
  idx = idx + 1
  local c = cache[i]
  if c then return c end
  local s = specs[i]
  counter = counter + 1
  local u = salt .. t .. "x" .. counter
  local body = s[4]
  if body then body = body:gsub("%%%%N%%%%", u) end
  return wrk.format(s[1], (s[2]:gsub("%%%%N%%%%", u)), s[3], body)
end
%(response)s
function done(summary, latency, requests)
  local e = summary.errors
  local n = 0
  for _, t in ipairs(threads) do n = n + (t:get("counted") or 0) end
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "status": %%d, "sock": %%d, ' ..
    '"p50": %%d, "p99": %%d, "counted": %%d}\\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99), n))
end
"""

_COUNT = """
function response(status, headers, body)
  if status == %d then counted = counted + 1 end
end"""


def _lua_script(reqs: list[Req], threads: int, count_status: int | None = None) -> str:
    specs = []  # added in chunks, one function each: a Lua function holds at most 65536 constants
    for q in reqs:
        headers = ", ".join(f"[{_lua_str(k)}] = {_lua_str(v)}" for k, v in q.all_headers().items())
        body = q.body_bytes("%N%")
        lua_body = _lua_str(body.decode()) if body is not None else "nil"
        unique = "true" if q.unique else "false"
        specs.append(f"{{{_lua_str(q.method)}, {_lua_str(q.path)}, {{{headers}}}, {lua_body}, "
                     f"{unique}}}")
    salt = "".join(random.choices(string.ascii_lowercase, k=2))
    chunks = [";(function() local t = specs\n" + "\n".join(f"t[#t + 1] = {x}" for x in
                                                          specs[i:i + CHUNK]) + "\nend)()"
              for i in range(0, len(specs), CHUNK)]
    return _LUA % {"specs": "\n".join(chunks), "threads": threads, "salt": _lua_str(salt),
                   "response": _COUNT % count_status if count_status else ""}


def run_wrk(base_url: str, reqs: list[Req], duration: float, connections: int,
            count_status: int | None = None) -> Result:
    threads = 2 if connections >= 2 else 1
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_lua_script(reqs, threads, count_status))
        script = f.name
    try:
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections),
             "-d", f"{max(1, round(duration))}s",  # wrk takes whole seconds
             "--timeout", "10s", "-s", script, base_url],
            capture_output=True, text=True, timeout=duration + 60)
    finally:
        os.unlink(script)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result:\n{out.stdout}\n{out.stderr}")
    d = json.loads(line[len("WRKJSON "):])
    secs = d["duration_us"] / 1e6
    return Result(d["requests"] / secs if secs else 0.0, d["p50"] / 1000, d["p99"] / 1000,
                  d["requests"], d["status"], d["sock"], "wrk", d.get("counted", 0))


# --- Python asyncio keep-alive client ---------------------------------------------------------
class Conn:
    """One keep-alive HTTP/1.1 connection (Content-Length and chunked bodies)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str],
                      body: bytes | None = None) -> tuple[int, bytes]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"Content-Length: {len(body or b'')}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
        try:
            status_line = await self.reader.readuntil(b"\r\n")
            status = int(status_line.split()[1])
            length, chunked, close = None, False, False
            while True:
                line = await self.reader.readuntil(b"\r\n")
                if line == b"\r\n":
                    break
                name, _, value = line.decode("latin-1").partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value:
                    chunked = True
                elif name == "connection" and value == "close":
                    close = True
            if chunked:
                data = b""
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    data += await self.reader.readexactly(size + 2)
                    if size == 0:
                        break
            elif length is not None:
                data = await self.reader.readexactly(length)
            elif status in (204, 304):
                data = b""
            else:
                data, close = await self.reader.read(), True
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise
        if close:
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def conn_for(base_url: str) -> Conn:
    u = urlsplit(base_url)
    return Conn(u.hostname or "127.0.0.1", u.port or 80)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


async def run_python(base_url: str, reqs: list[Req], duration: float,
                     connections: int, count_status: int | None = None) -> Result:
    lat: list[float] = []
    counts = {"non2xx": 0, "sock": 0, "next": 0, "uniq": 0, "counted": 0}
    salt = "".join(random.choices(string.ascii_lowercase, k=2))
    prepared = [(q.method, q.path, q.all_headers(), q.body_bytes()) for q in reqs]
    start = time.perf_counter()
    deadline = start + duration

    async def worker() -> None:
        conn = conn_for(base_url)
        while time.perf_counter() < deadline:
            i = counts["next"] % len(reqs)
            counts["next"] += 1
            method, path, headers, body = prepared[i]
            if reqs[i].unique:
                counts["uniq"] += 1
                u = f"{salt}{counts['uniq']}"
                path, body = reqs[i].url_path(u), reqs[i].body_bytes(u)
            t0 = time.perf_counter()
            try:
                status, _ = await conn.request(method, path, headers, body)
            except (OSError, asyncio.IncompleteReadError):
                counts["sock"] += 1
                continue
            lat.append(time.perf_counter() - t0)
            if status == count_status:
                counts["counted"] += 1
            if not 200 <= status < 300:
                counts["non2xx"] += 1
        conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    return Result(len(lat) / elapsed, percentile(lat, 50) * 1000, percentile(lat, 99) * 1000,
                  len(lat), counts["non2xx"], counts["sock"], "python", counts["counted"])
