"""Data versions and migrations (docs/OPERATIONS.md): the first release's store upgrades with
nothing lost.

``tests/fixtures/first_release.json`` holds a store written by the first release's own code
(commit 5cf9d85), made by ``python -m tests.fixtures.make_first_release``: every key's DUMP
payload and TTL, and what that release answered. Today's code runs on it after the migrations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared import keys, migrations
from shared.migrations import index_old_sessions, move_ban_pushes

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "first_release.json").read_text())


def restore_first_release(r: Any) -> dict:
    for key, entry in FIXTURE["keys"].items():
        r.restore(key, max(entry["pttl"], 0), bytes.fromhex(entry["dump"]), replace=True)
    return FIXTURE["world"]


def contains(new: Any, old: Any, where: str = "") -> None:
    """Every field the old release answered is answered the same today (new fields allowed)."""
    if isinstance(old, dict):
        assert isinstance(new, dict), where
        for k, v in old.items():
            assert k in new, f"{where}.{k} missing"
            contains(new[k], v, f"{where}.{k}")
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), where
        for i, (n, o) in enumerate(zip(new, old, strict=True)):
            contains(n, o, f"{where}[{i}]")
    else:
        assert new == old, f"{where}: {new!r} != {old!r}"


def test_first_release_store_upgrades_with_every_credential_and_nothing_lost(client, api, r):
    world = restore_first_release(r)
    assert client.get("/v1/boards").get_json() == {"boards": []}  # the gap the migration fills
    assert migrations.read_version(r) is None  # written before versions were kept

    done = migrations.migrate(r)
    assert done == ["list_old_boards", "index_old_sessions", "move_ban_pushes"]
    assert migrations.read_version(r) == migrations.VERSION
    assert migrations.migrate(r) == []  # nothing left to do

    boards = client.get("/v1/boards").get_json()["boards"]
    assert [b["board"] for b in boards] == ["ctf.old_map", "time.old_map"]
    assert {(b["order"], b["operator"]) for b in boards} == {("desc", "best"), ("asc", "best")}
    paths = {"board ctf.old_map": "/v1/boards/ctf.old_map/records",
             "board time.old_map": "/v1/boards/time.old_map/records",
             "rank of Second": "/v1/boards/ctf.old_map/records/Second",
             "records of Second": "/v1/players/Second/records"}
    for what, path in paths.items():
        resp = client.get(path)
        assert resp.status_code == 200, (what, resp.get_json())
        contains(resp.get_json(), world["anonymous"][what], what)
    profile = client.get("/v1/players/OldTimer").get_json()
    old = world["anonymous"]["profile OldTimer"]
    assert {k: profile[k] for k in ("id", "name", "created")} == {
        k: old[k] for k in ("id", "name", "created")}

    old_timer = api.bearer(world["players"]["OldTimer"]["token"])  # the old session token
    contains(client.get("/v1/mail", headers=old_timer).get_json(), world["mail"], "mail")
    contains(client.get("/v1/players/OldTimer/settings", headers=old_timer).get_json(),
             world["settings"], "settings")
    # today's account reads on an old player: its sessions (the old one among them), its export
    listed = client.get("/v1/sessions", headers=old_timer)
    assert listed.status_code == 200, listed.get_json()
    assert len(listed.get_json()["sessions"]) == 1, listed.get_json()
    exported = client.get("/v1/players/OldTimer/export", headers=old_timer)
    assert exported.status_code == 200, exported.get_json()
    for name, player in world["players"].items():  # the old passwords
        resp = client.post("/v1/sessions", json={"name": name, "password": player["password"]})
        assert resp.status_code == 200, resp.get_json()

    alpha, bravo = world["servers"]["Alpha"], world["servers"]["Bravo"]
    resp = client.get(f"/v1/servers/{alpha['id']}/settings", headers=api.bearer(alpha["key"]))
    contains(resp.get_json(), world["server_settings"], "server settings")
    assert api.heartbeat(alpha["id"], api.bearer(alpha["key"])).status_code == 200
    inbox = client.get("/v1/messages", headers=api.bearer(bravo["key"])).get_json()
    assert "gg from alpha" in json.dumps(inbox), inbox

    # the old session is in today's index: a password change from a new session ends it
    fresh = api.login("OldTimer", "oldpass1")
    resp = client.put("/v1/players/OldTimer/password", headers=fresh,
                      json={"old": "oldpass1", "new": "newpass1"})
    assert resp.status_code == 200 and resp.get_json()["sessions_ended"] >= 1, resp.get_json()
    assert client.get("/v1/mail", headers=old_timer).status_code == 401
    assert client.get("/v1/mail", headers=fresh).status_code == 200


def test_a_zset_of_ban_pushes_at_the_old_name_moves_and_bans_work(client, api, r):
    r.set(keys.data_version(), 2)  # data from before the move
    r.zadd(keys.outbox("bans"), {"ban:b1": 100, "unban:b2": 200})
    r.zadd(keys.ban_outbox(), {"ban:b1": 50})
    assert migrations.migrate(r) == ["move_ban_pushes"]
    assert r.type(keys.outbox("bans")) == "none"
    assert r.zrange(keys.ban_outbox(), 0, -1, withscores=True) == [
        ("ban:b1", 50.0), ("unban:b2", 200.0)]
    assert move_ban_pushes.run(r) == 0  # idempotent
    api.player("victim")
    resp = client.post("/v1/bans", json={"player": "victim", "reason": "aimbot"},
                       headers=api.admin)
    assert resp.status_code == 201, resp.get_json()
    assert r.type(keys.outbox("bans")) == "stream"


def test_a_migration_stopped_half_way_resumes_where_it_stopped(r, monkeypatch):
    restore_first_release(r)

    def crash(_r: Any) -> int:
        raise ConnectionError("killed mid-migration")

    monkeypatch.setattr(index_old_sessions, "run", crash)
    with pytest.raises(ConnectionError):
        migrations.migrate(r)
    assert migrations.read_version(r) == 1  # the first step is done and recorded
    monkeypatch.undo()
    assert migrations.migrate(r) == ["index_old_sessions", "move_ban_pushes"]


def test_an_empty_store_is_stamped_and_old_data_is_served_unstamped(r):
    assert migrations.check(r) == migrations.VERSION
    assert r.get(keys.data_version()) == str(migrations.VERSION)
    r.delete(keys.data_version())
    r.hset(keys.board("old"), mapping={"order": "asc", "operator": "best"})
    assert migrations.check(r) == 0  # served as it is; the worker migrates
    assert r.get(keys.data_version()) is None


@pytest.mark.parametrize("cmd", [["relay"], ["shared.worker"],
                                 ["gunicorn", "wsgi:app", "-c", "shared/gunicorn_conf.py"]],
                         ids=["relay", "worker", "web"])
def test_data_newer_than_the_release_stops_each_process_with_a_message(cmd, redis_server, r):
    r.set(keys.data_version(), migrations.VERSION + 1)
    from stack.embedded import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("SSM_")}
    env.update(REDIS_URL=redis_server.url, PORT=str(free_port()), RELAY_PORT=str(free_port()),
               WEB_CONCURRENCY="1")
    argv = [sys.executable, "-m", *cmd]
    try:
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60)
    finally:
        r.delete(keys.data_version())  # for tests after this one that flush nothing
    assert proc.returncode != 0
    assert f"data version {migrations.VERSION + 1}, newer than this release" in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


def test_the_worker_brings_the_data_forward_at_start(redis_server, r, client):
    restore_first_release(r)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSM_")}
    env.update(REDIS_URL=redis_server.url)
    proc = subprocess.run([sys.executable, "-m", "shared.worker", "--burst", "--queue", "status"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "data version 1: list_old_boards" in proc.stdout, proc.stdout
    assert migrations.read_version(r) == migrations.VERSION
    assert len(client.get("/v1/boards").get_json()["boards"]) == 2


def test_shared_up_stops_before_the_processes_on_newer_data(redis_server, r, tmp_path):
    r.set(keys.data_version(), migrations.VERSION + 1)
    procfile = tmp_path / "Procfile"
    marker = tmp_path / "ran"
    procfile.write_text(f"probe: touch {marker}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSM_")}
    env.update(REDIS_URL=redis_server.url)
    try:
        proc = subprocess.run([sys.executable, "-m", "shared.up", "--procfile", str(procfile)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    finally:
        r.delete(keys.data_version())  # for tests after this one that flush nothing
    assert proc.returncode == 1
    assert "newer than this release" in proc.stderr, proc.stderr
    assert not marker.exists()


def test_a_first_release_server_key_logs_in_over_the_relay(redis_server, r):
    import socket

    from stack.embedded import free_port
    from tests.conftest import wait_for

    world = restore_first_release(r)
    migrations.migrate(r)
    alpha = world["servers"]["Alpha"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSM_")}
    env.update(REDIS_URL=redis_server.url, RELAY_PORT=str(port), RELAY_HOST="127.0.0.1")
    relay = subprocess.Popen([sys.executable, "-m", "relay"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def connect() -> socket.socket | None:
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                return None

        with wait_for(connect, timeout=30, what="the relay") as s:
            lines = s.makefile("rb")
            assert b"CONNECTED" in lines.readline()
            s.sendall(b"MODE SERVER\r\n")
            assert b"Mode: SERVER" in lines.readline()
            s.sendall(json.dumps({"cmd": "AUTH", "args": f"{alpha['id']} {alpha['key']}"}
                                 ).encode() + b"\r\n")
            got = json.loads(lines.readline())
            assert got["state"] == "OK" and got["data"]["id"] == alpha["id"], got
    finally:
        relay.terminate()
        relay.wait(15)
