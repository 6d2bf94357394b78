"""``python -m bench.profile OP [OP...]``: where a gunicorn worker spends its time on one operation.

Starts the stack, builds the fixtures, loads the web process with OP's request (as scenario 1
does) and samples every web worker with py-spy (``pip install py-spy``; not a project
dependency). Prints the top functions by own time and by total time, per operation.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import psutil

from bench import http_load
from bench.stack import Stack
from bench.world import Req, World, requests_for
from shared.config import Config
from shared.redis_conn import connect
from shared.registry import load


def sample(pids: list[int], seconds: int, out: Path) -> list[subprocess.Popen]:
    return [subprocess.Popen(["py-spy", "record", "-p", str(pid), "-d", str(seconds), "-r", "200",
                              "-f", "raw", "-o", str(out / f"{pid}.txt"), "--nonblocking"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in pids]


def summarize(out: Path, top: int) -> str:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for f in out.glob("*.txt"):
        for line in f.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            frames = [fr.split(" (")[0] + " " + fr.split("/")[-1].rstrip(")")
                      for fr in stack.split(";") if fr]
            if not frames:
                continue
            samples += int(n)
            own[frames[-1]] += int(n)
            for fr in set(frames):
                total[fr] += int(n)
    lines = [f"{samples} samples", "own time:"]
    lines += [f"  {100 * n / samples:5.1f}%  {fr}" for fr, n in own.most_common(top)]
    lines.append("total time (incl. callees):")
    lines += [f"  {100 * n / samples:5.1f}%  {fr}" for fr, n in total.most_common(top * 2)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile")
    ap.add_argument("ops", nargs="+", help="operation names, or 'readyz'")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--top", type=int, default=15)
    opts = ap.parse_args(argv)
    stack = Stack(only=("web", "worker"))
    try:
        stack.start()
        config, registry = Config.from_env(stack.env), load()
        world = World(connect(stack.redis_url), config, registry).build()
        workers = [c.pid for c in psutil.Process(stack.pid("web")).children()]
        for name in opts.ops:
            reqs = ([Req("GET", "/readyz")] if name == "readyz"
                    else requests_for(world, registry[name], 20000))
            out = Path(tempfile.mkdtemp(prefix="ssm-prof-"))
            result: list[http_load.Result] = []
            load_thread = threading.Thread(target=lambda res=result, rq=reqs: res.append(
                http_load.run(stack.base_url, rq, opts.seconds + 1, 32)))
            load_thread.start()
            for p in sample(workers, opts.seconds, out):
                p.wait()
            load_thread.join()
            print(f"== {name}: {result[0].rps:.0f} req/s under the profiler")
            print(summarize(out, opts.top))
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
