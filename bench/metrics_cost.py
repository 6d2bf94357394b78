"""What metrics (and request lines) cost the web process: ``python -m bench.metrics_cost``.

Starts one embedded Redis and three gunicorn web processes as the Procfile runs them (2 gevent
workers each): ``SSM_METRICS=1`` (the default), ``SSM_METRICS=0``, and metrics plus JSON request
lines (``WEB_ACCESS_LOG=1 LOG_FORMAT=json``, written to a file). Only one is loaded at a time;
rounds alternate the order, so drift on a shared machine hits every arm alike. Measures req/s of
``GET /readyz`` and of a read operation (``GET /v1/status``, status.list, with a few servers
listed) and prints the medians and each ratio to the metrics-off arm, from this one run.

On a shared machine req/s swings with whatever else runs; the CPU time the web workers spent per
request (user + system, read from /proc before and after each measurement) swings much less,
and is what the throughput ratio comes to when the web process is CPU-bound. Both are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

from bench import http_load
from bench.world import Req
from stack.embedded import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "bench-admin-token-0123456789"
ARMS = {"metrics off": {"SSM_METRICS": "0"},
        "metrics on": {"SSM_METRICS": "1"},
        "metrics + json request lines": {"SSM_METRICS": "1", "WEB_ACCESS_LOG": "1",
                                         "LOG_FORMAT": "json"}}
PATHS = {"/readyz": "GET /readyz", "/v1/status": "status.list"}


def start_web(redis_url: str, extra: dict[str, str], logdir: Path, tries: int = 3
              ) -> tuple[subprocess.Popen, str]:
    """A web process on a free port (another port if someone took it meanwhile)."""
    for _ in range(tries):
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SSM_", "LOG_", "WEB_", "PROMETHEUS_"))}
        env.update(REDIS_URL=redis_url, PORT=str(port), SSM_ADMIN_TOKEN=ADMIN,
                   WEB_CONCURRENCY="2", **extra)
        log = open(logdir / f"web-{port}.log", "wb")  # kept open for the child
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "wsgi:app", "-c",
                                 "shared/gunicorn_conf.py"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=1):
                    return proc, url
            except OSError:
                time.sleep(0.1)
        proc.kill()
        proc.wait()
    raise RuntimeError(f"web did not start: see {logdir}")


def _cpu(procs: list[psutil.Process]) -> float:
    """CPU seconds (user + system) the processes have used so far."""
    return sum(sum(p.cpu_times()[:2]) for p in procs)


def list_servers(url: str, n: int) -> None:
    """A few live servers, so status.list has something to read."""
    import json

    for i in range(n):
        req = urllib.request.Request(url + "/v1/servers", method="POST",
                                     data=json.dumps({"name": f"bench{i}"}).encode(),
                                     headers={"Authorization": f"Bearer {ADMIN}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            made = json.loads(resp.read())
        body = {"name": f"Bench {i}", "host": "ac.example.org", "port": 28763 + i,
                "map": "ac_desert", "mode": "ctf", "players": [], "max_players": 16,
                "version": "1.3", "public": True}
        req = urllib.request.Request(url + f"/v1/servers/{made['id']}/status", method="PUT",
                                     data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {made['key']}",
                                              "Content-Type": "application/json"})
        urllib.request.urlopen(req).close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_cost",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--tool", default="auto", choices=("auto", "wrk", "python"))
    opts = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ssm-metrics-cost-"))
    redis = EmbeddedRedis(work / "redis", appendonly=False).start()
    procs: list[subprocess.Popen] = []
    try:
        urls = {}
        for arm, extra in ARMS.items():
            proc, urls[arm] = start_web(redis.url, extra, work)
            procs.append(proc)
        list_servers(urls["metrics on"], 5)
        time.sleep(0.5)
        rps: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        workers = {a: psutil.Process(p.pid).children() for a, p in zip(ARMS, procs, strict=True)}
        for arm in ARMS:  # warm up every worker
            for path in PATHS:
                http_load.run(urls[arm], [Req("GET", path)], 1, opts.connections, opts.tool)
        for rnd in range(opts.rounds):
            order = list(ARMS) if rnd % 2 == 0 else list(reversed(ARMS))
            for arm in order:
                for path in PATHS:
                    used = _cpu(workers[arm])
                    res = http_load.run(urls[arm], [Req("GET", path)], opts.seconds,
                                        opts.connections, opts.tool)
                    used = _cpu(workers[arm]) - used
                    if res.non2xx or res.socket_errors:
                        raise RuntimeError(f"{arm} {path}: {res.as_dict()}")
                    rps.setdefault((arm, path), []).append(res.rps)
                    cpu.setdefault((arm, path), []).append(used / res.requests * 1e6)
        print(f"load: {http_load.tool_name(opts.tool)}, {opts.connections} connections, "
              f"{opts.rounds} rounds x {opts.seconds:g} s, 2 gevent workers per web process")
        base = "metrics off"
        for path, what in PATHS.items():
            off = statistics.median(rps[(base, path)])
            off_cpu = statistics.median(cpu[(base, path)])
            for arm in ARMS:
                med = statistics.median(rps[(arm, path)])
                med_cpu = statistics.median(cpu[(arm, path)])
                spread = ", ".join(f"{v:.0f}" for v in rps[(arm, path)])
                print(f"{what:12} {arm:29} {med:6.0f} req/s ({spread}); ratio {med / off:.3f}"
                      f" | CPU {med_cpu:5.0f} us/req; throughput ratio {off_cpu / med_cpu:.3f}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
