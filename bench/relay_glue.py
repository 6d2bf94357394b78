"""Glue to the relay and worker benchmarks other modules own (bench/relay_bench.py,
bench/worker_bench.py): call their functions against this run's stack and map their figures
to the keys of bench/results.json."""

from __future__ import annotations

import importlib
from typing import Any


def _module(name: str) -> Any:
    try:
        return importlib.import_module(f"bench.{name}")
    except ImportError as err:
        raise RuntimeError(f"bench/{name}.py is not available yet ({err})") from None


def relay(stack: Any, plan: dict[str, Any]) -> dict[str, Any]:
    """One relay process (the Procfile's command, limits off, on this run's Redis) and the bare
    asyncio line server, measured the same way in the same run."""
    mod = _module("relay_bench")
    figs = mod.run(n=plan["relay_conns"], conns=100, seconds=plan["relay_s"],
                   redis_url=stack.redis_url)
    relay_f, bare = figs["relay"], figs["bare"]
    return {"relay_kib_per_conn_ratio": figs["kib_per_conn_ratio"],
            "relay_cmd_ratio": figs["cmd_ratio"],
            "relay_kib_per_conn": relay_f["kib_per_conn"],
            "bare_kib_per_conn": bare["kib_per_conn"],
            "relay_cmd_per_s": relay_f["cmd_per_s"], "bare_cmd_per_s": bare["cmd_per_s"],
            "relay_op_per_s": relay_f.get("op_per_s", 0),
            "relay_connections": relay_f["connections"], "relay_greeted": relay_f["greeted"],
            "relay_detail": figs}


def mail(stack: Any, world: Any, plan: dict[str, Any]) -> dict[str, Any]:
    """Mail notice latency on this run's stack; jobs/s of one worker of each class, each on a
    Redis of its own (the stack's worker would take a share of the jobs)."""
    from stack.embedded import EmbeddedRedis

    mod = _module("worker_bench")
    out: dict[str, Any] = mod.mail_latency(stack, n=plan["mail_n"])
    jobs = []
    for simple in (False, True):
        quiet = EmbeddedRedis(stack.workdir / f"jobs-redis-{int(simple)}", appendonly=True).start()
        try:
            jobs.append(mod.jobs_per_second(quiet.url, simple, plan["jobs_n"]))
        finally:
            quiet.stop()
    out["worker_jobs"] = jobs
    for job in jobs:
        out[f"worker_jobs_per_s_{job['worker_class'].lower()}"] = job["jobs_per_s"]
    return out
