"""What one server's messages cost Redis, and what the send budget lets it make Redis grow.

``python -m bench.sendbudget [--servers 1000] [--seconds 25] [--threads 4]`` starts its own
embedded Redis (no AOF: memory and CPU only), registers the servers through the real
operations, and measures in one run:

1. broadcast cost per recipient, budget off: ``rounds`` broadcasts of a 1,024-character ASCII
   body (the largest body that costs one unit a recipient) to every other server; Redis time
   from ``INFO commandstats`` (the delivery script's usec), growth from ``used_memory``;
2. the same with the budget check on (its own cost);
3. one server sending such broadcasts as fast as ``threads`` threads can, at the DEFAULT budget
   (``MESSAGE_SEND_BUDGET`` / ``MESSAGE_SEND_BURST``), for ``seconds``, from a child process;
   meanwhile this process times ``message.read`` of a quiet server, compared with the same
   reads before the flood.

The most one server can make Redis grow in any minute is (burst + budget) units, each at most
one recipient copy of a body stored in at most 1 KiB: "worst minute" is that times the larger
of the two measured bytes per recipient; "flood growth over a minute" is the flood's own bytes
per recipient times what it could send in a minute (the burst once, then the refill rate).
Both are held to the 20 MB bar.
Messages are sent in-process through ``shared.dispatch.run`` (the credential check is not part
of what is measured).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

from shared import auth, keys
from shared.config import Config
from shared.dispatch import Ctx, run
from shared.errors import RateLimited
from shared.redis_conn import connect
from shared.registry import load
from stack.embedded import EmbeddedRedis

BAR_MB_PER_MIN = 20.0
BODY = "x" * 1024  # one unit a recipient: the dearest body per unit


def script_usec(r: Any) -> tuple[int, int]:
    """(calls, usec) of EVALSHA so far, from INFO commandstats."""
    stats = r.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def memory(r: Any) -> int:
    return int(r.info("memory")["used_memory"])


class Sender:
    def __init__(self, r: Any, config: Config, server_id: str):
        self.op = load()["message.send"]
        self.ctx = Ctx(r, config, auth.Caller("server", server_id, server_id), ip="127.0.0.3")

    def send(self, to: str = "*", body: str = BODY) -> None:
        run(self.op, self.ctx, {"to": to, "body": body})


def broadcast_cost(r: Any, config: Config, sender: str, recipients: int, rounds: int) -> dict:
    s = Sender(r, config, sender)
    s.send()  # warm the script cache
    mem0, (calls0, usec0) = memory(r), script_usec(r)
    for _ in range(rounds):
        s.send()
    grown, (calls1, usec1) = memory(r) - mem0, script_usec(r)
    copies = rounds * recipients
    return {"broadcast_ms": round((usec1 - usec0) / (calls1 - calls0) / 1000, 2),
            "us_per_recipient": round((usec1 - usec0) / copies, 2),
            "bytes_per_recipient": round(grown / copies)}


def read_latency(r: Any, config: Config, server_id: str, stop: threading.Event,
                 out: list[float]) -> None:
    op = load()["message.read"]
    ctx = Ctx(r, config, auth.Caller("server", server_id, server_id), ip="127.0.0.4")
    while not stop.is_set():
        t0 = time.perf_counter()
        run(op, ctx, {"limit": "10"}, text_fields={"limit"})
        out.append(time.perf_counter() - t0)
        time.sleep(0.005)


def hammer(url: str, config: Config, sender: str, seconds: float, threads: int,
           out: Any) -> None:
    """(In its own process.) ``threads`` threads broadcasting for ``seconds``; counts to out."""
    stop = threading.Event()
    lock = threading.Lock()

    def loop() -> None:
        s = Sender(connect(url), config, sender)
        while not stop.is_set():
            try:
                s.send()
                key = "ok"
            except RateLimited:
                key = "refused"
            with lock:
                out[key] += 1

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()


def flood(url: str, config: Config, sender: str, quiet: str, seconds: float,
          threads: int) -> dict:
    """One server broadcasting as fast as ``threads`` threads of another process can, at
    ``config``'s budget, while this process times a quiet server's message.read."""
    r = connect(url)
    idle: list[float] = []
    stop = threading.Event()
    reader = threading.Thread(target=read_latency, args=(connect(url), config, quiet, stop, idle))
    reader.start()
    time.sleep(2)
    stop.set()
    reader.join()
    busy: list[float] = []
    stop = threading.Event()
    reader = threading.Thread(target=read_latency, args=(connect(url), config, quiet, stop, busy))
    mp = multiprocessing.get_context("fork")
    counts = mp.Manager().dict(ok=0, refused=0)
    mem0, t0 = memory(r), time.monotonic()
    proc = mp.Process(target=hammer, args=(url, config, sender, seconds, threads, counts))
    proc.start()
    reader.start()
    proc.join()
    stop.set()
    reader.join()
    elapsed, grown = time.monotonic() - t0, memory(r) - mem0
    return {"elapsed": elapsed, "grown": grown, "ok": counts["ok"], "refused": counts["refused"],
            "read_ms_idle": statistics.median(idle) * 1000,
            "read_ms_flood": statistics.median(busy) * 1000}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sendbudget",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=25.0)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=20)
    opts = ap.parse_args(argv)
    redis = EmbeddedRedis(tempfile.mkdtemp(prefix="ssm-sendbudget-"), appendonly=False).start()
    try:
        r = connect(redis.url)
        default = Config.from_env({}, redis_url=redis.url)
        off = dataclasses.replace(default, message_send_budget=0)
        create = load()["server.create"]
        admin = Ctx(r, default, auth.ADMIN_CALLER, ip="127.0.0.2")
        t0 = time.monotonic()
        ids = [run(create, admin, {"name": f"bench {i}"}).body["id"]
               for i in range(opts.servers)]
        print(f"registered {len(ids)} servers in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        recipients = len(ids) - 1
        cost = broadcast_cost(r, off, ids[0], recipients, opts.rounds)
        checked = broadcast_cost(r, dataclasses.replace(default, message_send_budget=10**9,
                                                        message_send_burst=10**9),
                                 ids[1], recipients, opts.rounds)
        fl = flood(redis.url, default, ids[2], ids[3], opts.seconds, opts.threads)
        assert r.exists(keys.send_budget(ids[2]))
    finally:
        redis.stop()
    rate_per_s = default.message_send_budget / 60
    burst = default.message_send_burst
    flood_units = fl["ok"] * recipients
    flood_per_copy = fl["grown"] / max(flood_units, 1)
    per_copy = max(cost["bytes_per_recipient"], flood_per_copy)
    worst = (burst + default.message_send_budget) * per_copy / 1e6
    refill_units = max(flood_units - burst, 0)  # the burst once, the refill per second after
    flood_min = (burst + refill_units / fl["elapsed"] * 60) * flood_per_copy / 1e6
    rows = [
        ("servers registered", len(ids)),
        ("broadcast to all others, Redis time (ms)", cost["broadcast_ms"]),
        ("Redis time per recipient (us)", cost["us_per_recipient"]),
        ("Redis time per recipient, budget on (us)", checked["us_per_recipient"]),
        ("Redis growth per recipient, 1 KiB body (B)", cost["bytes_per_recipient"]),
        ("  the same during the flood (B)", round(flood_per_copy)),
        ("default MESSAGE_SEND_BUDGET (recipients/min)", default.message_send_budget),
        ("default MESSAGE_SEND_BURST (recipients)", burst),
        ("flood: seconds, threads", f"{fl['elapsed']:.1f}, {opts.threads}"),
        ("flood: broadcasts accepted / refused", f"{fl['ok']} / {fl['refused']}"),
        ("flood: recipients accepted per second", round(fl["ok"] * recipients / fl["elapsed"])),
        ("budget refill (recipients per second)", round(rate_per_s, 1)),
        ("flood: Redis grew (MB)", round(fl["grown"] / 1e6, 2)),
        ("flood: growth over a minute (MB)", round(flood_min, 2)),
        ("worst minute, (burst + budget) x B/recipient (MB)", round(worst, 2)),
        ("bar (MB per minute)", BAR_MB_PER_MIN),
        ("message.read median idle / during flood (ms)",
         f"{fl['read_ms_idle']:.2f} / {fl['read_ms_flood']:.2f}"),
        ("message.read slowdown during flood (x)",
         round(fl["read_ms_flood"] / fl["read_ms_idle"], 2)),
    ]
    width = max(len(k) for k, _ in rows) + 2
    for k, v in rows:
        print(f"{k:<{width}}{v:>14}")
    ok = worst <= BAR_MB_PER_MIN and flood_min <= BAR_MB_PER_MIN
    print(f"verdict: {'PASS' if ok else 'MISS'} (worst minute {worst:.1f} MB, "
          f"flood {flood_min:.1f} MB, bar {BAR_MB_PER_MIN:.0f} MB)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
