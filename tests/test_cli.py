"""The admin CLI (web/cli.py): servers and boards through the registry's operations, and
finding the embedded Redis of ``python -m shared.up`` with REDIS_URL unset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared import keys
from stack.embedded import URL_FILE, published

ROOT = Path(__file__).resolve().parent.parent


def test_server_create_list_rotate_delete(cli, client, api, clock):
    made = cli("server", "create", "My CTF server")
    assert made["name"] == "My CTF server" and made["key"].startswith(f"s.{made['id']}.")
    clock.advance(2)  # the list is oldest first
    other = cli("create-server", "Alias server")  # the README's first command still works
    listed = cli("server", "list")["servers"]
    assert [(s["id"], s["name"]) for s in listed] == [(made["id"], "My CTF server"),
                                                     (other["id"], "Alias server")]
    old = api.bearer(made["key"])
    assert client.get(f"/v1/servers/{made['id']}/settings", headers=old).status_code == 200
    rotated = cli("server", "rotate", made["id"])
    assert rotated["id"] == made["id"] and rotated["key"] != made["key"]
    assert client.get(f"/v1/servers/{made['id']}/settings", headers=old).status_code == 401
    assert cli("server", "delete", made["id"]) == {"deleted": made["id"]}
    assert [s["id"] for s in cli("server", "list")["servers"]] == [other["id"]]


def test_board_create_and_list(cli, r):
    made = cli("board", "create", "ctf.ac_desert", "--order", "desc", "--operator", "best")
    assert (made["board"], made["order"], made["operator"]) == ("ctf.ac_desert", "desc", "best")
    cli("board", "create", "kills", "--order", "desc", "--operator", "incr")
    assert cli("board", "list") == {"boards": [
        {"board": "ctf.ac_desert", "order": "desc", "operator": "best"},
        {"board": "kills", "order": "desc", "operator": "incr"}]}
    assert r.hget(keys.board("kills"), "operator") == "incr"


@pytest.mark.parametrize("args,line", [
    (("server", "rotate", "nosuch"), "Error: not_found: no server with id nosuch"),
    (("server", "delete", "nosuch"), "Error: not_found: no server with id nosuch"),
    (("server", "create", "x" * 65), "Error: invalid_input: name:"),
    (("board", "create", "Caps", "--order", "asc", "--operator", "best"),
     "Error: invalid_input: board:"),
])
def test_errors_are_one_line(cli, args, line):
    out = cli(*args, ok=False)
    assert out.startswith(line) and out.count("\n") == 1, out


def test_board_conflict_is_one_line(cli):
    cli("board", "create", "b1", "--order", "desc", "--operator", "best")
    out = cli("board", "create", "b1", "--order", "asc", "--operator", "best", ok=False)
    assert out == "Error: board_exists: board b1 exists with order desc and operator best\n"


# --- finding Redis with REDIS_URL unset -----------------------------------------------------
def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("SSM_")}
    env.update(SSM_DATA_DIR=str(data_dir), SSM_ADMIN_TOKEN="cli-admin-0123456789",
               SSM_REDIS_PORT=str(_free_port()))
    return env


def _free_port() -> int:
    from stack.embedded import free_port

    return free_port()


def _flask(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def test_finds_the_embedded_redis_of_shared_up(tmp_path):
    """shared.up (with a Procfile of one idle process) publishes its embedded Redis; the CLI
    uses it with no REDIS_URL, and says what to set once the stack is gone."""
    data = tmp_path / "data"
    procfile = tmp_path / "Procfile"
    procfile.write_text("idle: sleep 60\n")
    env = _env(data)
    up = subprocess.Popen([sys.executable, "-m", "shared.up", "--procfile", str(procfile)],
                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while published(data) is None:
            assert up.poll() is None and time.monotonic() < deadline, "no redis.url published"
            time.sleep(0.1)
        made = _flask(env, "server", "create", "Next to up")
        assert made.returncode == 0, made.stderr
        listed = _flask(env, "server", "list")
        assert [s["name"] for s in json.loads(listed.stdout)["servers"]] == ["Next to up"]
    finally:
        up.send_signal(signal.SIGTERM)
        assert up.wait(30) == 0
    assert not (data / URL_FILE).exists()
    gone = _flask(env, "server", "list")
    assert gone.returncode == 1 and gone.stdout == ""
    assert gone.stderr.startswith("Error: no Redis: REDIS_URL is not set")
    assert gone.stderr.count("\n") == 1 and "Traceback" not in gone.stderr, gone.stderr


def test_help_works_without_redis(tmp_path):
    out = _flask(_env(tmp_path / "none"), "server", "--help")
    assert out.returncode == 0 and "rotate" in out.stdout, out.stderr


def test_stale_url_file_naming_another_server_is_ignored(tmp_path, redis_server):
    """A redis.url left by a killed run, whose port now serves another Redis (here the test
    server, with its data elsewhere), is not used."""
    data = tmp_path / "data"
    data.mkdir()
    (data / URL_FILE).write_text(redis_server.url + "\n")
    assert published(data) is None
    assert published(tmp_path / "missing") is None
