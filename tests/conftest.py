"""Fixtures: a throwaway embedded Redis (the binary we ship) on a free port, flushed per test.

``pytest --cluster`` runs the same suite against a throwaway 3-master Redis Cluster from the same
binary (``stack.embedded.EmbeddedCluster``) plus a plain queue Redis for RQ (docs/CLUSTER.md):
``REDIS_CLUSTER=1`` and ``REDIS_QUEUE_URL`` are then set for every process the tests start,
``redis_server.url`` names a cluster node, ``r`` is a ``RedisCluster``, and each test flushes
every master and the queue Redis. Nothing here touches any other Redis: the only servers flushed
are the ones this session started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from shared.config import Config
from shared.redis_conn import connect, connect_cluster, primaries
from stack.embedded import EmbeddedCluster, EmbeddedRedis

ADMIN_TOKEN = "test-admin-token-0123456789"
# Relays and workers the tests start serve no metrics unless a test asks (tests/test_metrics.py):
# several at once on this machine would compete for the default ports.
os.environ.setdefault("RELAY_METRICS_PORT", "0")
os.environ.setdefault("WORKER_METRICS_PORT", "0")
# Likewise the legacy UDP verify of the relays the tests start (tests/test_legacy_udp.py picks
# a free port for its own).
os.environ.setdefault("LEGACY_UDP_PORT", "0")


class Servers:
    """What this session runs: one Redis, or a cluster and a queue Redis (``--cluster``)."""

    cluster: EmbeddedCluster | None = None
    queue: EmbeddedRedis | None = None


SERVERS = Servers()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cluster", action="store_true",
                     help="run against a throwaway 3-master Redis Cluster + a queue Redis")


def pytest_configure(config: pytest.Config) -> None:
    """With --cluster: choose the ports now and export the settings, so every process a test
    starts (inheriting os.environ) finds the cluster; the servers start with the first test
    that needs them."""
    if not config.getoption("--cluster", default=False):
        return
    import tempfile

    base = tempfile.mkdtemp(prefix="ssm-cluster-")
    SERVERS.cluster = EmbeddedCluster(os.path.join(base, "cluster"), appendonly=False)
    SERVERS.queue = EmbeddedRedis(os.path.join(base, "queue"), appendonly=False)
    os.environ["REDIS_CLUSTER"] = "1"
    os.environ["REDIS_QUEUE_URL"] = SERVERS.queue.url


def on_cluster() -> bool:
    return SERVERS.cluster is not None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The data Redis (``.url``): one embedded server, or the cluster with --cluster."""
    if SERVERS.cluster is not None and SERVERS.queue is not None:
        SERVERS.queue.start()
        SERVERS.cluster.start()
        yield SERVERS.cluster
        SERVERS.cluster.stop()
        SERVERS.queue.stop()
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
def queue_url(redis_server: Any) -> str:
    """Where RQ's queues are: the queue Redis on a cluster, else the one Redis."""
    return SERVERS.queue.url if SERVERS.queue is not None else redis_server.url


@pytest.fixture
def r(redis_server: Any) -> Iterator[Any]:
    """The data client, every server of this session flushed first."""
    if SERVERS.cluster is not None and SERVERS.queue is not None:
        client: Any = connect_cluster(redis_server.url)
        for node in primaries(client):
            node.flushall()
        queue = SERVERS.queue.client()
        queue.flushall()
        queue.close()
    else:
        client = connect(redis_server.url)
        client.flushall()
    yield client
    client.close()


class Clock:
    """Real time plus an offset that tests can advance."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_config(redis_url: str, **overrides: Any) -> Config:
    base: dict[str, Any] = dict(redis_url=redis_url, admin_token=ADMIN_TOKEN, scrypt_log2_n=4,
                                legacy_udp_port=0)
    if SERVERS.queue is not None:
        base.update(redis_cluster=1, redis_queue_url=SERVERS.queue.url)
    base.update(overrides)
    return Config(**base)


@pytest.fixture
def config(redis_server: Any) -> Config:
    return make_config(redis_server.url)


@pytest.fixture
def app(config: Config, r: Any, clock: Clock) -> Any:
    from wsgi import create_app

    return create_app(config, r, clock=clock)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


class Api:
    """Auth helpers over the Flask test client."""

    def __init__(self, client: Any):
        self.client = client
        self.admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def server(self, name: str = "srv") -> tuple[str, dict[str, str]]:
        """A new game server: (id, auth headers)."""
        resp = self.client.post("/v1/servers", json={"name": name}, headers=self.admin)
        assert resp.status_code == 201, resp.json
        return resp.json["id"], self.bearer(resp.json["key"])

    def player(self, name: str = "alice", password: str = "secret1") -> dict[str, str]:
        """Register and log in a player: their auth headers."""
        resp = self.client.post("/v1/players", json={"name": name, "password": password})
        assert resp.status_code == 201, resp.json
        return self.login(name, password)

    def login(self, name: str, password: str = "secret1") -> dict[str, str]:
        resp = self.client.post("/v1/sessions", json={"name": name, "password": password})
        assert resp.status_code == 200, resp.json
        return self.bearer(resp.json["token"])

    def token(self, headers: dict[str, str]) -> str:
        return headers["Authorization"].split(" ", 1)[1]

    def heartbeat(self, server_id: str, headers: dict[str, str], **over: Any) -> Any:
        body = {"name": "Srv", "host": "ac.example.org", "port": 28763, "map": "ac_desert",
                "mode": "ctf", "players": [], "max_players": 16, "version": "1.3",
                "public": True}
        body.update(over)
        return self.client.put(f"/v1/servers/{server_id}/status", json=body, headers=headers)

    def join(self, server_id: str, server_headers: dict[str, str],
             player_headers: dict[str, str]) -> Any:
        return self.client.post(f"/v1/servers/{server_id}/players",
                                json={"token": self.token(player_headers)},
                                headers=server_headers)


@pytest.fixture(scope="module")
def lua() -> str:
    """lua5.1 with LuaSocket (tests/lua_harness.py); CI fails without it, elsewhere a skip."""
    from tests.lua_harness import lua_exe

    exe = lua_exe()
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("lua5.1 with LuaSocket is required in CI (.ci/run installs them)")
        pytest.skip("lua5.1 with LuaSocket is not installed: apt-get install lua5.1 lua-socket")
    return exe


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright (tests/webbrowser.py); CI fails without it."""
    from tests import webbrowser

    missing = webbrowser.missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the browser tests: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=webbrowser.CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def cli(app: Any) -> Callable[..., Any]:
    """``cli(*args, ok=True)``: the admin CLI (``flask --app wsgi …``) on the test app; its JSON
    answer when it succeeds, else its output (``ok=False`` expects a failure)."""
    runner = app.test_cli_runner()

    def invoke(*args: str, ok: bool = True) -> Any:
        result = runner.invoke(args=list(args))
        assert (result.exit_code == 0) is ok, result.output
        return json.loads(result.output) if ok else result.output

    return invoke


@pytest.fixture
def api(client: Any) -> Api:
    return Api(client)


@pytest.fixture
def start_relay(config: Config, r: Any) -> Iterator[Callable[..., Any]]:
    """``start_relay(cfg=None, **settings)``: a relay in this process on a free port (``.port``),
    with ``cfg`` (default: the test's config) and ``settings`` over it; all stopped after the
    test (tests/relay_client.py)."""
    from tests.relay_client import InProcessRelays

    relays = InProcessRelays(config)
    yield lambda cfg=None, **over: relays.start(config=cfg, **over)
    relays.stop_all()


@pytest.fixture
def relay(start_relay: Callable[..., Any]) -> Any:
    """One in-process relay with the test's config (a test module may define its own)."""
    return start_relay()


class Workers:
    """Worker processes (``python -m shared.worker``) for one test, each logging to a file in
    ``logdir``; SIGTERM (then SIGKILL) for all at ``stop``. The environment is the test's, less
    the variables starting with ``drop``, plus REDIS_URL, ``env`` and each start's own."""

    def __init__(self, url: str, logdir: Path, drop: tuple[str, ...] = ("SSM_",),
                 **env: str):
        self.url, self.logdir, self.drop, self.env = url, logdir, drop, env
        self.procs: list[subprocess.Popen] = []

    def start(self, *args: str, **env_over: str) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if not k.startswith(self.drop)}
        env.update(REDIS_URL=self.url, PYTHONUNBUFFERED="1", **self.env, **env_over)
        log = open(self.logdir / f"worker{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "shared.worker", *args],
                                cwd=Path(__file__).resolve().parent.parent, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self, wait: float = 15) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.kill_strays()

    def kill_strays(self) -> None:
        """SIGKILL any worker process still pointed at this test's Redis: a work-horse whose
        worker a test killed lives on in its own process group, and would otherwise write
        into the Redis the next test file on this xdist worker uses."""
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if ("shared.worker" in (proc.info["cmdline"] or ())
                        and proc.environ().get("REDIS_URL") == self.url):
                    proc.kill()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "",
             every: float = 0.05) -> Any:
    """``check()``'s first true answer, asked every ``every`` seconds; the test fails when none
    comes within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what or check}")
