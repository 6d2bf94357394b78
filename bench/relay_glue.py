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


def mail(stack: Any, world: Any, plan: dict[str, Any]) -> dict[str, Any]:
    mod = _module("worker_bench")
    raise RuntimeError(f"worker_bench API not wired yet: {sorted(dir(mod))}")
