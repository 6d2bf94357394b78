"""What an idle stack costs: ``python -m bench.idle [--seconds 60]``.

Starts ``python -m shared.up`` (embedded Redis, AOF on, temporary data dir, free ports), waits
for ``/readyz``, lets it settle, then for ``--seconds`` with no traffic at all counts:

- bytes appended to the embedded Redis's append-only file;
- commands Redis ran (``MONITOR``), by command name, and writes that changed data
  (``rdb_changes_since_last_save``);
- lines the processes printed (honcho's merged output).

and prints each per idle minute.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import redis

from stack.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


def changes(port: int) -> int:
    """Redis's count of writes that changed the data set (never reset: no RDB saves)."""
    return int(redis.Redis(port=port).info("persistence")["rdb_changes_since_last_save"])


def aof_bytes(data_dir: Path) -> int:
    return sum(f.stat().st_size for f in (data_dir / "appendonlydir").glob("*") if f.is_file())


class Lines(threading.Thread):
    """Reads the stack's output; counts lines (and keeps them) from ``start()`` of a window."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.counting, self.lines = stream, False, []

    def run(self) -> None:
        for raw in self.stream:
            if self.counting:
                self.lines.append(raw.decode(errors="replace").rstrip())


def measure(seconds: float, settle: float = 8.0) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="ssm-idle-"))
    port, rport = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("SSM_")}
    env.update(PORT=str(port), RELAY_PORT=str(free_port()), SSM_REDIS_PORT=str(rport),
               SSM_DATA_DIR=str(tmp), SSM_ADMIN_TOKEN="idle-admin-0123456789",
               PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "shared.up"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = Lines(proc.stdout)
    lines.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("stack did not start") from None
                time.sleep(0.2)
        time.sleep(settle)
        counts: collections.Counter = collections.Counter()
        mon_conn = redis.Redis(port=rport)
        stop = threading.Event()

        def watch() -> None:
            try:
                with mon_conn.monitor() as m:
                    for cmd in m.listen():
                        if stop.is_set():
                            return
                        counts[cmd["command"].split(" ", 1)[0].upper()] += 1
            except redis.RedisError:  # the stack stopped
                return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        before = aof_bytes(tmp)
        dirty = changes(rport)
        lines.counting = True
        time.sleep(seconds)
        lines.counting = False
        after = aof_bytes(tmp)
        dirty = changes(rport) - dirty
        stop.set()
        redis.Redis(port=rport).ping()  # wakes the monitor loop so it can see ``stop``
        watcher.join(2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    per_min = 60.0 / seconds
    return {"seconds": seconds, "aof_bytes_per_min": (after - before) * per_min,
            "commands_per_min": sum(counts.values()) * per_min,
            "changes_per_min": dirty * per_min, "log_lines_per_min": len(lines.lines) * per_min,
            "commands": dict(counts.most_common()), "lines": lines.lines[:20]}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    opts = parser.parse_args()
    got = measure(opts.seconds)
    print(f"idle for {got['seconds']:.0f} s (figures per idle minute)")
    print(f"  AOF bytes appended   {got['aof_bytes_per_min']:10.0f}")
    print(f"  Redis commands       {got['commands_per_min']:10.0f}  (inside scripts included)")
    print(f"  keys changed         {got['changes_per_min']:10.0f}  (rdb_changes_since_last_save)")
    print(f"  log lines            {got['log_lines_per_min']:10.0f}")
    print("  commands seen: " + ", ".join(f"{c} {n}" for c, n in got["commands"].items()))
    for line in got["lines"]:
        print("  | " + line)


if __name__ == "__main__":
    main()
