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
    mod = _module("relay_bench")
    raise RuntimeError(f"relay_bench API not wired yet: {sorted(dir(mod))}")


def mail(stack: Any, world: Any, plan: dict[str, Any]) -> dict[str, Any]:  # noqa: ARG001
    """Mail notice latency on this run's stack; jobs/s of one worker of each class, each on a
    Redis of its own (the stack's worker would take a share of the jobs)."""
    from shared.embedded import EmbeddedRedis

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
