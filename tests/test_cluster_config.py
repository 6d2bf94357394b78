"""REDIS_CLUSTER / REDIS_QUEUE_URL / SSM_WAIT_REPLICAS (docs/CLUSTER.md): start-up refusal, the
queue client, every kind of Redis error as 503, and WAIT on a single Redis with and without a
replica.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)

from shared import keys
from shared.config import Config, ConfigError
from shared.dispatch import Ctx
from shared.redis_conn import connect, queue_for
from stack.embedded import EmbeddedRedis
from tests.conftest import make_config, wait_for
from tests.helpers import procfile
from tests.relay_client import greeted

ROOT = Path(__file__).resolve().parent.parent


def test_cluster_without_queue_url_is_refused():
    config = Config.from_env({"REDIS_URL": "redis://127.0.0.1:7000", "REDIS_CLUSTER": "1"})
    with pytest.raises(ConfigError, match="REDIS_QUEUE_URL"):
        config.require_redis()
    ok = Config.from_env({"REDIS_URL": "redis://a:1", "REDIS_CLUSTER": "1",
                          "REDIS_QUEUE_URL": "redis://q:2"})
    assert ok.require_redis() == "redis://a:1" and ok.queue_url == "redis://q:2"
    single = Config.from_env({"REDIS_URL": "redis://a:1"})
    assert single.redis_cluster == 0 and single.queue_url == "redis://a:1"


@pytest.mark.parametrize("name", sorted(procfile()))
def test_every_process_refuses_a_cluster_without_queue_url(name):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_QUEUE_URL"}
    env.update(PORT="5999", RELAY_PORT="5998", REDIS_URL="redis://127.0.0.1:1",
               REDIS_CLUSTER="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(procfile()[name].strip(), shell=True, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "REDIS_CLUSTER=1 needs REDIS_QUEUE_URL" in proc.stderr


def test_queue_client_is_the_data_client_on_one_redis_else_its_own():
    data = object()
    assert queue_for(Config(redis_url="redis://a:1"), data) is data
    assert queue_for(Config(redis_url="redis://a:1", redis_queue_url="redis://a:1"), data) is data
    own = queue_for(Config(redis_url="redis://a:1", redis_cluster=1,
                           redis_queue_url="redis://q:2"), data)
    assert own is not data and own.connection_pool.connection_kwargs["port"] == 2
    assert own.connection_pool.connection_kwargs.get("decode_responses", False) is False  # RQ
    ctx = Ctx(data, Config(), None)  # type: ignore[arg-type]
    assert ctx.queue is data


class Broken:
    """A data client whose every command (and every pipeline's) raises ``exc``."""

    def __init__(self, exc: BaseException):
        self.exc = exc

    def pipeline(self, *args: Any, **kwargs: Any) -> Broken:
        return self

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise self.exc
        return fail


CLUSTER_ERRORS = [RedisClusterException("no node answers"), SlotNotCoveredError("slot 7"),
                  ClusterDownError("CLUSTERDOWN The cluster is down"),
                  TryAgainError("TRYAGAIN Multiple keys request during rehashing of slot"),
                  ConnectionError("refused")]


@pytest.mark.parametrize("exc", CLUSTER_ERRORS, ids=lambda e: type(e).__name__)
def test_http_answers_503_for_every_redis_error(config, exc):
    from wsgi import create_app

    client = create_app(config, Broken(exc), queue_client=object()).test_client()
    for path in ("/v1/status", "/readyz"):
        resp = client.get(path)
        assert resp.status_code == 503, (path, resp.get_data(as_text=True))
        assert resp.json["error"]["code"] == "unavailable"
        assert resp.headers["Retry-After"] == "1"


@pytest.mark.parametrize("exc", CLUSTER_ERRORS, ids=lambda e: type(e).__name__)
def test_relay_answers_unavailable_for_every_redis_error(config, start_relay, exc,
                                                         monkeypatch):
    import relay.server

    relay_ = start_relay()
    monkeypatch.setattr(relay_, "redis", Broken(exc))
    c = greeted(relay_.port)
    got = c.cmd("status.list")
    assert (got["state"], got.get("code")) == ("ERROR", "unavailable"), got
    assert relay.server  # the relay process stays up: the connection still answers
    assert c.cmd("HW", "1")["msg"] == "Hello, world!"
    c.close()


# --- SSM_WAIT_REPLICAS on one Redis ----------------------------------------------------------
def register(client: Any, name: str) -> Any:
    return client.post("/v1/players", json={"name": name, "password": "secret1"})


@pytest.fixture
def primary(tmp_path: Path) -> Any:
    server = EmbeddedRedis(tmp_path / "primary", appendonly=False).start()
    yield server
    server.stop()


def test_wait_replicas_answers_503_until_a_replica_holds_the_write(primary, tmp_path):
    from wsgi import create_app

    r = connect(primary.url)
    config = make_config(primary.url, wait_replicas=1, wait_timeout_ms=1000, redis_cluster=0,
                         redis_queue_url=None)
    client = create_app(config, r, queue_client=r).test_client()
    alone = register(client, "alone")
    assert alone.status_code == 503 and alone.json["error"]["code"] == "unavailable"
    replica = EmbeddedRedis(tmp_path / "replica", appendonly=False,
                            extra=("--replicaof", "127.0.0.1", str(primary.port))).start()
    try:
        # both ends agree the link is up (the primary counts the replica as online)
        wait_for(lambda: replica.client().info("replication").get("master_link_status") == "up"
                 and r.info("replication").get("slave0", {}).get("state") == "online",
                 timeout=60, what="the replica in sync")
        held = register(client, "held")
        assert held.status_code == 201, held.json
        assert replica.client().hget(keys.player("held"), "name") == "held"  # already there
        reads = client.get("/v1/players/held")  # a read never waits
        assert reads.status_code == 200
    finally:
        replica.stop()
        r.close()
