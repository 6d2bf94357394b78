"""``python -m bench [--quick] [--cluster]``: every performance figure beside its target.

Starts its own embedded Redis and the Procfile's processes (bench/stack.py), runs the scenarios,
prints a table and writes the same figures to bench/results.json. See docs/BENCHMARKS.md.
``--cluster`` runs the same processes on a 3-master embedded Redis Cluster with a queue Redis
(REDIS_CLUSTER=1, docs/CLUSTER.md), by default the round trips per operation, the fan-out and the
fleet scenario, and writes bench/results-cluster.json.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import fanout, fleet, http_load, http_ops, logins, roundtrips
from bench.stack import Stack, interrupt
from bench.world import World
from shared.config import Config
from shared.redis_conn import connect_data
from shared.registry import load

RESULTS = Path(__file__).resolve().parent / "results.json"
RESULTS_CLUSTER = RESULTS.with_name("results-cluster.json")
# Latency scenarios first; the per-operation HTTP table last: it queues thousands of mail
# notices (mail.send at full speed) that the worker drains for a while afterwards.
SCENARIOS = ("roundtrips", "relay", "fanout", "mail", "fleet", "logins", "http")
CLUSTER_SCENARIOS = ("roundtrips", "fanout", "fleet")

# key -> (comparison, target, what)
TARGETS: dict[str, tuple[str, float, str]] = {
    "http_read_ratio_min": (">=", 0.7, "worst read op / GET /readyz req/s"),
    "http_write_ratio_min": (">=", 0.5, "worst write op / GET /readyz req/s"),
    "redis_roundtrips_max": ("<=", 2, "Redis round trips per request, auth included"),
    "relay_kib_per_conn_ratio": ("<=", 3, "relay KiB/conn / bare asyncio server KiB/conn"),
    "relay_cmd_ratio": (">=", 0.4, "relay cmd/s / bare asyncio server cmd/s"),
    "fanout_p99_ms": ("<", 100, "broadcast to 1,000 relay-connected servers, p99"),
    "mail_notice_p99_ms": ("<", 250, "POST /v1/mail -> PUSH on the relay, p99"),
    "fleet_errors": ("==", 0, "errors in the fleet simulation"),
    "logins_per_s": ("", 0, "session.login over HTTP at the configured scrypt cost"),
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def verdict(key: str, value: Any) -> str:
    op, target, _ = TARGETS.get(key, ("", 0, ""))
    if not op:
        return ""
    if not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    ok = {">=": value >= target, "<=": value <= target, "<": value < target,
          "==": value == target}[op]
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs (under three minutes)")
    ap.add_argument("--only", default=",".join(SCENARIOS),
                    help=f"comma-separated scenarios to run ({','.join(SCENARIOS)})")
    ap.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto",
                    help="HTTP load generator (auto: wrk when installed)")
    ap.add_argument("--out", default=None, help=f"default {RESULTS.name}")
    ap.add_argument("--cluster", action="store_true",
                    help="on a 3-master Redis Cluster + a queue Redis (default scenarios: "
                         + ",".join(CLUSTER_SCENARIOS) + ")")
    opts = ap.parse_args(argv)
    if opts.out is None:
        opts.out = str(RESULTS_CLUSTER if opts.cluster else RESULTS)
    if opts.cluster and opts.only == ",".join(SCENARIOS):
        opts.only = ",".join(CLUSTER_SCENARIOS)
    only = [s.strip() for s in opts.only.split(",") if s.strip()]
    quick = opts.quick
    plan = {
        "duration": 1 if quick else 5, "every": 1, "connections": 32,
        "fleet_s": 20 if quick else 60, "fleet_servers": 200, "fanout_n": 1000,
        "fanout_rounds": 3, "relay_conns": 10000, "relay_s": 2 if quick else 3,
        "mail_n": 100 if quick else 300, "jobs_n": 300 if quick else 2000,
        "login_s": 2 if quick else 5,
    }
    signal.signal(signal.SIGTERM, interrupt)
    started = time.monotonic()
    figures: dict[str, Any] = {}
    details: dict[str, Any] = {"quick": quick, "plan": plan, "cluster": opts.cluster,
                               "load_generator": http_load.tool_name(opts.tool)}
    stack = Stack(cluster=opts.cluster)
    try:
        log(f"bench: starting Redis and the Procfile's processes ({'quick' if quick else 'full'})")
        stack.start()
        log(f"bench: processes {sorted(stack.procs)}; logs in {stack.workdir}")
        config = Config.from_env(stack.env)
        r = connect_data(config)
        registry = load()
        world = World(r, config, registry).build()
        scenarios: dict[str, Callable[[], dict[str, Any]]] = {
            "http": lambda: _http(stack, world, registry, plan, opts.tool, details),
            "roundtrips": lambda: _roundtrips(stack, config, registry, details),
            "logins": lambda: logins.run(stack.base_url, world, registry, plan["login_s"],
                                         8, opts.tool),
            "relay": lambda: _relay(stack, plan),
            "fanout": lambda: _fanout(stack, world, plan),
            "mail": lambda: _mail(stack, world, plan),
            "fleet": lambda: fleet.run(world, stack.base_url, plan["fleet_servers"],
                                       plan["fleet_s"]),
        }
        for name in SCENARIOS:
            if name not in only:
                continue
            log(f"bench: scenario {name} ({time.monotonic() - started:.0f} s in)")
            try:
                out = scenarios[name]()
            except Exception as err:  # one scenario failing must not hide the rest
                log(f"bench: scenario {name} failed: {err!r}\n{traceback.format_exc()}")
                details.setdefault("failed", {})[name] = repr(err)
                continue
            for k, v in out.items():
                (figures if isinstance(v, (int, float)) and not isinstance(v, bool)
                 else details)[k] = v
        details["redis_slowlog"] = _slowlog(stack)
    except KeyboardInterrupt:
        log("bench: interrupted")
        return 130
    finally:
        stack.stop()
    details["elapsed_s"] = round(time.monotonic() - started, 1)
    for key in TARGETS:
        figures.setdefault(key, None)
    Path(opts.out).write_text(json.dumps({**figures, "details": details}, indent=1,
                                         default=str) + "\n")
    print_table(figures, details)
    log(f"bench: wrote {opts.out} in {details['elapsed_s']} s")
    return 0


def print_table(figures: dict[str, Any], details: dict[str, Any]) -> None:
    print(f"\nSSMGlobal benchmarks ({'quick' if details['quick'] else 'full'} run"
          f"{', on a 3-master Redis Cluster' if details.get('cluster') else ''}, load "
          f"generator: {details['load_generator']})")
    ops = details.get("ops", {})
    if ops:
        print(f"\n{'operation':26}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}{'target':>8}"
              f"{'':>6}{'non2xx':>8}{'RT':>4}")
        rts = details.get("roundtrips", {})
        for name, d in sorted(ops.items()):
            target = "" if d["kdf"] else (0.7 if d["read"] else 0.5)
            mark = "" if d["kdf"] else ("PASS" if d["ratio"] >= target else "MISS")
            rt = rts.get(name, {}).get("roundtrips", "")
            print(f"{name:26}{d['rps']:9.0f}{d['p50_ms']:9.1f}{d['p99_ms']:9.1f}{d['ratio']:8.2f}"
                  f"{target!s:>8}{mark:>6}{d['non2xx'] + d['socket_errors']:8}{rt!s:>4}")
        print(f"{'GET /readyz (ceiling)':26}{figures.get('http_readyz_rps', 0):9.0f}")
        print("(KDF-bound ops, no ratio target: player.register, session.login, player.password)")
    elif details.get("roundtrips"):
        print("\nRedis round trips: " + ", ".join(
            f"{k} {v['roundtrips']}" for k, v in sorted(details["roundtrips"].items())))
    if details.get("fleet_ops"):
        print(f"\nfleet: {figures.get('fleet_servers')} servers, {figures.get('fleet_seconds')} s,"
              f" {figures.get('fleet_requests')} requests")
        for name, d in details["fleet_ops"].items():
            print(f"  {name:24}{d['count']:7}{d['p50_ms']:9.1f}{d['p99_ms']:9.1f}")
    print(f"\n{'figure':28}{'value':>12}  {'target':10}{'':6}what")
    for key, (op, target, what) in TARGETS.items():
        value = figures.get(key)
        shown = "-" if value is None else (f"{value:.3g}" if isinstance(value, float) else value)
        print(f"{key:28}{shown!s:>12}  {(op + ' ' + str(target)) if op else '':10}"
              f"{verdict(key, value):6}{what}")
    others = {k: v for k, v in figures.items() if k not in TARGETS and v is not None
              and not (k.startswith("http_") and k.endswith("_ratio"))}
    if others:
        print("\nother figures: " + ", ".join(f"{k} {v}" for k, v in others.items()))
    if details.get("kdf_hashes_per_s_one_core"):
        print("scrypt hashes/s on one core by cost: " + ", ".join(
            f"{k}: {v}" for k, v in details["kdf_hashes_per_s_one_core"].items()))
    for k, v in details.get("notes", {}).items():
        print(f"note ({k}): {v}")
    for k, v in details.get("failed", {}).items():
        print(f"FAILED scenario {k}: {v}")


def _slowlog(stack: Stack) -> list[list[Any]]:
    """Redis commands slower than 10 ms during the run (one slow script stalls every client)."""
    r = connect_data(Config.from_env(stack.env))
    try:
        got = r.slowlog_get(10)
        if isinstance(got, dict):  # a cluster: {node: entries}
            got = [e for entries in got.values() for e in entries]
        return [[e["duration"], str(e["command"])[:120]] for e in got]
    finally:
        r.close()


def _http(stack: Stack, world: World, registry: dict, plan: dict, tool: str,
          details: dict) -> dict[str, Any]:
    out = http_ops.run(stack.base_url, world, registry, plan["duration"], plan["every"],
                       plan["connections"], tool, log=log)
    details["ops"], details["readyz"] = out["ops"], out["readyz"]
    return out["figures"]


def _roundtrips(stack: Stack, config: Config, registry: dict, details: dict) -> dict[str, Any]:
    counts = roundtrips.count(stack.redis_url, config, registry,
                              lambda rc: World(rc, config, registry, prefix="c").build())
    details["roundtrips"] = counts
    bad = {k: v["status"] for k, v in counts.items() if not 200 <= v["status"] < 300}
    if bad:
        details.setdefault("notes", {})["roundtrips"] = f"non-2xx while counting: {bad}"
    return {"redis_roundtrips_max": roundtrips.summary(counts)}


def _relay(stack: Stack, plan: dict) -> dict[str, Any]:
    from bench import relay_glue

    return relay_glue.relay(stack, plan)


def _fanout(stack: Stack, world: World, plan: dict) -> dict[str, Any]:
    if not stack.has("relay"):
        raise RuntimeError("no relay process in the Procfile")
    return fanout.run(world, stack.base_url, stack.relay_port, plan["fanout_n"],
                      plan["fanout_rounds"])


def _mail(stack: Stack, world: World, plan: dict) -> dict[str, Any]:
    from bench import relay_glue

    return relay_glue.mail(stack, world, plan)


if __name__ == "__main__":
    sys.exit(main())
