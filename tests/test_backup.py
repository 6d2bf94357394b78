"""Backups (docs/OPERATIONS.md): ``python -m shared.backup create`` then ``restore`` answers every
read as
before; a non-empty target is refused; a backup restores into an empty data folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SERVERS
from tests.world import world

ROOT = Path(__file__).resolve().parent.parent


def backup(*args: str, **env_over: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSM_")}
    env.update(env_over)
    return subprocess.run([sys.executable, "-m", "shared.backup", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def reads(client: Any, api: Any, real: dict, callers: dict) -> dict[str, Any]:
    from tests.world import SERVER

    sid = real[SERVER]
    player, server, admin = callers["player"], callers["server"], api.admin
    asked = {"/v1/status": {}, "/v1/boards": {}, "/v1/boards/ctf.ac_desert/records": {},
             "/v1/boards/ctf.ac_desert/records/bob": {}, "/v1/players/alice": {},
             "/v1/players/alice/records": {}, "/v1/clans/ACE": {},
             "/v1/mail": player, "/v1/mail/unread": player,
             "/v1/players/alice/settings": player, f"/v1/servers/{sid}/settings": server,
             "/v1/messages": server, "/v1/servers": admin, "/v1/bans": admin,
             "/v1/webhooks": admin, "/v1/audit": admin}
    got = {}
    for path, headers in asked.items():
        resp = client.get(path, headers=headers)
        got[path] = (resp.status_code, resp.get_json())
    return got


def wipe(r: Any) -> None:
    from shared.redis_conn import primaries

    for node in primaries(r):
        node.flushall()
    if SERVERS.queue is not None:
        SERVERS.queue.client().flushall()


@pytest.mark.parametrize("how", [(), ("--scan",)], ids=["snapshot", "scan"])
def test_a_backup_restores_to_identical_reads_and_refuses_a_target_with_data(
        how, client, api, r, redis_server, tmp_path):
    real, callers = world(api, "clan.get")
    made = client.post("/v1/bans", json={"player": "bob", "reason": "wallhack"},
                       headers=api.admin)
    assert made.status_code == 201
    before = reads(client, api, real, callers)
    assert all(status == 200 for status, _ in before.values()), before
    file = tmp_path / "world.ssmbackup"
    out = backup("create", str(file), *how, REDIS_URL=redis_server.url)
    assert out.returncode == 0, out.stderr
    assert "data key(s)" in out.stdout

    wipe(r)
    assert reads(client, api, real, callers) != before
    out = backup("restore", str(file), REDIS_URL=redis_server.url)
    assert out.returncode == 0, out.stderr
    assert reads(client, api, real, callers) == before
    assert client.post("/v1/sessions", json={"name": "alice", "password": "correct-horse-42"}
                       ).status_code == 200

    out = backup("restore", str(file), REDIS_URL=redis_server.url)
    assert out.returncode == 1
    assert "is not empty" in out.stderr and "Traceback" not in out.stderr, out.stderr


@pytest.mark.skipif(SERVERS.queue is not None, reason="the folder holds one Redis here")
def test_a_backup_restores_into_an_empty_data_folder_only(client, api, r, redis_server,
                                                          tmp_path):
    from stack.embedded import EmbeddedRedis

    api.player("keeper", "secret-keeper-1")
    file = tmp_path / "b.ssmbackup"
    assert backup("create", str(file), REDIS_URL=redis_server.url).returncode == 0
    folder = tmp_path / "restored"
    out = backup("restore", str(file), SSM_DATA_DIR=str(folder))
    assert out.returncode == 0, out.stderr
    server = EmbeddedRedis(folder, appendonly=True).start()  # as shared.up would serve it
    try:
        copy = server.client()
        assert sorted(copy.scan_iter()) == sorted(r.scan_iter())  # names: a diff says which
        assert copy.hget("ssm:{p:keeper}:acct", "name") == "keeper"
    finally:
        server.stop()
    out = backup("restore", str(file), SSM_DATA_DIR=str(folder))
    assert out.returncode == 1 and "is not empty" in out.stderr, out.stderr
