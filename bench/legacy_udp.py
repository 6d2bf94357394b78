"""The released core's UDP verify under a flood (relay/legacy_udp.py, docs/RELAY.md).

``python -m bench.legacy_udp [--seconds 3]`` starts an embedded Redis (unless REDIS_URL is set)
and one ``python -m relay`` with LEGACY_UDP_PORT on a free port, registers one build, then:

- idle: the TCP round trip of ``HW`` on one connection, and the UDP round trip of a checksum
  (one asked at a time), p50 and p99;
- flood: a separate process sends checksum datagrams as fast as it can for ``--seconds`` and
  counts the answers, while this one measures the same TCP round trips; Redis's own count of
  ``HGETALL`` calls (the verify's read of the known builds) gives the reads per second;
- the same flood aimed at a socket that nobody reads (the kernel drops it): what the flood costs
  the shared machine, without the relay's work.

It prints each figure beside its bound: reads a second <= READS_PER_SECOND (20) plus the burst,
every answer <= 64 bytes, and the TCP round trip's p99 under the flood at the relay as a ratio
to the flood elsewhere (the relay's own share) and to idle.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from relay import legacy_udp
from shared.redis_conn import connect
from shared.storage import modbuilds
from stack.embedded import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
SHA1 = "3f786850e387550fdab836ed7e6dc881de23001b"
HW = b'{"cmd": "HW"}\r\n'


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def tcp_round_trips(port: int, seconds: float) -> list[float]:
    """HW on one greeted CLIENT connection, one at a time, for ``seconds``: each in ms."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"MODE CLIENT\r\n")
        f.readline()
        out, end = [], time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.perf_counter()
            s.sendall(HW)
            f.readline()
            out.append((time.perf_counter() - t) * 1000)
        return out


def udp_round_trips(port: int, n: int) -> tuple[list[float], int]:
    """``n`` checksums asked one at a time: (ms each, the longest answer in bytes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        out, longest = [], 0
        for _ in range(n):
            t = time.perf_counter()
            s.sendto(SHA1.encode(), ("127.0.0.1", port))
            data, _ = s.recvfrom(65536)
            out.append((time.perf_counter() - t) * 1000)
            longest = max(longest, len(data))
        return out, longest


def flood(port: int, seconds: float) -> None:
    """The flooding process: send checksums for ``seconds``, count answers; print JSON."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.settimeout(0.5)
    got = {"answers": 0, "longest": 0}

    def receive() -> None:
        while True:
            try:
                data, _ = s.recvfrom(65536)
            except (TimeoutError, OSError):
                return
            got["answers"] += 1
            got["longest"] = max(got["longest"], len(data))
    reader = threading.Thread(target=receive)
    reader.start()
    sent, end = 0, time.monotonic() + seconds
    payload, target = SHA1.encode(), ("127.0.0.1", port)
    while time.monotonic() < end:
        for _ in range(100):
            s.sendto(payload, target)
        sent += 100
    reader.join()
    print(json.dumps({"sent": sent, **got}))


def hgetall_calls(r: Any) -> int:
    return int(r.info("commandstats").get("cmdstat_hgetall", {}).get("calls", 0))


def _flooded(tcp_port: int, udp_port: int, seconds: float, r: Any
             ) -> tuple[list[float], dict[str, int], int, float]:
    """Flood ``udp_port`` from another process while timing TCP round trips: (round trips,
    the flooder's counts, Redis HGETALL calls meanwhile, seconds)."""
    before = hgetall_calls(r)
    flooder = subprocess.Popen([sys.executable, "-m", "bench.legacy_udp", "--flood",
                                str(udp_port), "--seconds", str(seconds)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    started = time.monotonic()
    time.sleep(0.3)  # the flooder is up and sending
    tcp = tcp_round_trips(tcp_port, max(0.5, seconds - 0.6))
    out, _ = flooder.communicate(timeout=seconds + 30)
    return tcp, json.loads(out), hgetall_calls(r) - before, time.monotonic() - started


def run(seconds: float = 3.0, redis_url: str | None = None) -> dict[str, Any]:
    redis = None
    if redis_url is None:
        redis = EmbeddedRedis(tempfile.mkdtemp(prefix="udp-bench-"), appendonly=False).start()
        redis_url = redis.url
    r = connect(redis_url)
    modbuilds.put(r, SHA1, "9.0.0 Beta Release 3", int(time.time() * 1000))
    tcp_port, udp_port = free_port(), free_udp_port()
    env = dict(os.environ, REDIS_URL=redis_url, RELAY_PORT=str(tcp_port), RELAY_HOST="127.0.0.1",
               LEGACY_UDP_PORT=str(udp_port), RELAY_METRICS_PORT="0")
    relay = subprocess.Popen([sys.executable, "-m", "relay"], cwd=ROOT, env=env,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", tcp_port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        idle_tcp = tcp_round_trips(tcp_port, 2.0)
        idle_udp, longest_idle = udp_round_trips(udp_port, 200)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:  # read by nobody
            sink.bind(("127.0.0.1", 0))
            elsewhere_tcp, _, _, _ = _flooded(tcp_port, sink.getsockname()[1], seconds, r)
        flood_tcp, flooded, reads, elapsed = _flooded(tcp_port, udp_port, seconds, r)
    finally:
        relay.terminate()
        relay.wait(10)
        r.close()
        if redis is not None:
            redis.stop()
    return {
        "tcp_idle_p50_ms": statistics.median(idle_tcp), "tcp_idle_p99_ms": pct(idle_tcp, 0.99),
        "udp_idle_p50_ms": statistics.median(idle_udp), "udp_idle_p99_ms": pct(idle_udp, 0.99),
        "tcp_flood_p50_ms": statistics.median(flood_tcp),
        "tcp_flood_p99_ms": pct(flood_tcp, 0.99),
        "tcp_elsewhere_p50_ms": statistics.median(elsewhere_tcp),
        "tcp_elsewhere_p99_ms": pct(elsewhere_tcp, 0.99),
        "flood_sent_per_s": flooded["sent"] / seconds,
        "flood_answered_per_s": flooded["answers"] / seconds,
        "redis_reads_per_s": reads / elapsed,
        "longest_answer_bytes": max(longest_idle, flooded["longest"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--flood", type=int, help=argparse.SUPPRESS)  # the flooding process
    args = parser.parse_args()
    if args.flood:
        flood(args.flood, args.seconds)
        return
    f = run(args.seconds, os.environ.get("REDIS_URL"))
    bound = legacy_udp.READS_PER_SECOND + legacy_udp.READS_BURST / args.seconds
    print(f"""legacy UDP verify ({args.seconds:g} s flood from one process, shared machine)
                                         figure      bound
TCP HW round trip idle p50 / p99 ms    {f['tcp_idle_p50_ms']:6.2f} / {f['tcp_idle_p99_ms']:6.2f}
UDP checksum round trip p50 / p99 ms   {f['udp_idle_p50_ms']:6.2f} / {f['udp_idle_p99_ms']:6.2f}
flood: datagrams sent / s             {f['flood_sent_per_s']:9,.0f}
flood: answered / s                   {f['flood_answered_per_s']:9,.0f}
flood: Redis reads / s                {f['redis_reads_per_s']:9.1f}    <= {bound:.1f}
longest answer, bytes                 {f['longest_answer_bytes']:9d}    <= {legacy_udp.ANSWER_MAX}
TCP HW, flood at a dead socket p50/p99  {f['tcp_elsewhere_p50_ms']:6.2f} / \
{f['tcp_elsewhere_p99_ms']:6.2f}
TCP HW, flood at the relay p50 / p99   {f['tcp_flood_p50_ms']:6.2f} / {f['tcp_flood_p99_ms']:6.2f}
TCP p99 flood at relay / elsewhere    {f['tcp_flood_p99_ms'] / f['tcp_elsewhere_p99_ms']:9.2f}
TCP p99 flood at relay / idle         {f['tcp_flood_p99_ms'] / f['tcp_idle_p99_ms']:9.2f}""")


if __name__ == "__main__":
    main()
