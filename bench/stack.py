"""The system under test: an embedded Redis plus the Procfile's processes, torn down always.

The Procfile is read line by line (``name: command``) and each process is started directly in
its own process group with the bench's environment (what honcho does, minus the log prefixing),
so the bench can find each process's pid (relay memory) and always kill what it started.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from stack.embedded import EmbeddedCluster, EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"


def procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """``{name: command}`` from the Procfile."""
    procs: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, _, cmd = line.partition(":")
        procs[name.strip()] = cmd.strip()
    return procs


def bench_env(redis_url: str, port: int, relay_port: int) -> dict[str, str]:
    """The environment every process of the stack gets (limits raised for load runs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SSM_", "RELAY_"))}
    env.update({
        "REDIS_URL": redis_url, "PORT": str(port), "RELAY_PORT": str(relay_port),
        "RELAY_HOST": "127.0.0.1", "SSM_ADMIN_TOKEN": ADMIN_TOKEN,
        "RELAY_MAX_CLIENTS": "0", "RELAY_MAX_PER_IP": "0", "RELAY_IDLE_TIMEOUT": "0",
        "MAILBOX_MAX": "10000000", "REGISTER_LIMIT_PER_IP_HOUR": "0",
        "MESSAGE_SEND_BUDGET": "0", "MAIL_UNREAD_PER_SENDER_MAX": "0",  # bench.sendbudget
        # the abuse budgets (README "Abuse budgets") off for load runs; bench.dos's abuse floods
        # keep them
        "MAIL_SEND_PER_MINUTE": "0", "MAIL_SEND_PER_DAY": "0",
        "MAIL_SEND_PER_DAY_NEW_ACCOUNT": "0", "MOD_WRITES_PER_SERVER_MINUTE": "0",
        "REGISTER_LIMIT_PER_SERVER_HOUR": "0",
        "SSM_SCRYPT_LOG2_N": os.environ.get("SSM_SCRYPT_LOG2_N", "14"),
        "PYTHONUNBUFFERED": "1"})
    env.pop("WEB_ACCESS_LOG", None)
    return env


@dataclass
class Stack:
    """Start with :meth:`start`, always :meth:`stop` (also on Ctrl-C)."""

    only: tuple[str, ...] | None = None  # Procfile process names to run (None: all)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ssm-bench-")))
    redis: EmbeddedRedis | None = None  # the one Redis, or the queue Redis (cluster)
    cluster: bool = False  # a 3-master cluster for the data (REDIS_CLUSTER=1) + a queue Redis
    data: EmbeddedCluster | None = None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    port: int = 0
    relay_port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    # environment changes over bench_env's (a value of None removes the variable: its default)
    overrides: dict[str, str | None] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redis_url(self) -> str:
        """REDIS_URL: the one Redis, or a node of the cluster."""
        if self.data is not None:
            return self.data.url
        assert self.redis is not None
        return self.redis.url

    def has(self, name: str) -> bool:
        return name in self.procs and self.procs[name].poll() is None

    def pid(self, name: str) -> int | None:
        """The pid of the process itself (the shell's child when started through ``sh -c``)."""
        proc = self.procs.get(name)
        return proc.pid if proc else None

    def start(self) -> Stack:
        self.redis = EmbeddedRedis(self.workdir / "redis", appendonly=True).start()
        if self.cluster:
            self.data = EmbeddedCluster(self.workdir / "cluster", appendonly=True).start()
        self.port, self.relay_port = free_port(), free_port()
        self.env = bench_env(self.redis_url, self.port, self.relay_port)
        for name, value in self.overrides.items():
            if value is None:
                self.env.pop(name, None)
            else:
                self.env[name] = value
        if self.data is not None:
            self.env.update(REDIS_CLUSTER="1", REDIS_QUEUE_URL=self.redis.url)
        for name, cmd in procfile().items():
            if self.only is not None and name not in self.only:
                continue
            log = open(self.workdir / f"{name}.log", "wb")  # kept open for the child
            self.procs[name] = subprocess.Popen(
                ["/bin/sh", "-c", "exec " + cmd], cwd=ROOT, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        waiting = {"web": self._web_ready, "relay": self._relay_ready}
        waiting = {k: v for k, v in waiting.items() if k in self.procs}
        while waiting:
            for name, ready in list(waiting.items()):
                if self.procs[name].poll() is not None:
                    raise RuntimeError(f"{name} exited at start:\n{self.log_tail(name)}")
                if ready():
                    del waiting[name]
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout} s: {sorted(waiting)}")
            time.sleep(0.1)
        time.sleep(0.5)  # let the workers of each process finish booting

    def _web_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/readyz", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def _relay_ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.relay_port), timeout=1) as s:
                return s.recv(200).startswith(b"{")
        except OSError:
            return False

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM every process group, SIGKILL what is left after 10 s, then Redis."""
        for proc in self.procs.values():
            _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal(proc, signal.SIGKILL)  # the group: anything a process left behind
            proc.wait()
        self.procs.clear()
        if self.data is not None:
            self.data.stop()
            self.data = None
        if self.redis is not None:
            self.redis.stop()
            self.redis = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def interrupt(signum: int, frame: object) -> None:  # a signal handler's signature
    """SIGTERM handler: unwind like Ctrl-C so every ``finally`` tears the stack down."""
    raise KeyboardInterrupt


def main() -> int:
    """``python -m bench.stack``: start the stack and wait for Ctrl-C (for manual poking)."""
    signal.signal(signal.SIGTERM, interrupt)
    stack = Stack()
    try:
        stack.start()
        print(f"web {stack.base_url} relay 127.0.0.1:{stack.relay_port} redis {stack.redis_url} "
              f"admin token {shlex.quote(ADMIN_TOKEN)}; logs in {stack.workdir}", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
