"""A JSON relay command carrying ``"as": <player session token>`` (docs/RELAY.md): that one
command runs as the player, with the same checks as an HTTP bearer; the connection keeps its own
identity; a bad or revoked token is refused for that command only; the token is
never echoed or logged. Real sockets, the real embedded Redis, a relay process where it counts.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from relay import protocol as p
from relay.session import Expired
from shared import keys
from shared.auth import Caller
from shared.errors import Unauthenticated
from shared.redis_conn import counting_client
from stack.embedded import free_port
from tests.conftest import ADMIN_TOKEN, on_cluster, wait_for
from tests.relay_client import InProcessRelays, authed, greeted

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def relays(config: Any, r: Any) -> Any:
    running = InProcessRelays(config)
    yield running
    running.stop_all()


@pytest.fixture
def relay(relays: Any) -> Any:
    return relays.start()


def _server(api: Any, name: str = "srv") -> tuple[str, str]:
    server_id, headers = api.server(name)
    return server_id, api.token(headers)


def _token(api: Any, name: str) -> str:
    return api.token(api.player(name))


def _mail(client: Any, api: Any, sender_token: str, to: str, subject: str) -> str:
    resp = client.post("/v1/mail", json={"to": to, "subject": subject, "body": "hi " + to},
                       headers=api.bearer(sender_token))
    assert resp.status_code == 201, resp.json
    return resp.json["id"]


def test_a_player_token_runs_mail_commands_for_that_player(relay, api, client):
    server_id, key = _server(api)
    alice, bob = _token(api, "alice"), _token(api, "bob")
    mail_id = _mail(client, api, bob, "alice", "rematch?")
    c = authed(relay.port, server_id, key)

    assert c.cmd("mail.unread_count", {}, **{"as": alice}) == {
        "state": "OK", "msg": "mail.unread_count", "data": {"unread": 1}}
    listed = c.cmd("mail.list", {}, **{"as": alice, "id": 7})
    assert listed["id"] == 7 and [m["id"] for m in listed["data"]["mail"]] == [mail_id]
    assert listed["data"] == client.get("/v1/mail", headers=api.bearer(alice)).json
    read = c.cmd("mail.read", {"id": mail_id}, **{"as": alice})
    assert read["data"]["from"] == "bob" and read["data"]["body"] == "hi alice"
    # mail.send as the player: the sender is the player, not the server (no `from` needed)
    sent = c.cmd("mail.send", {"to": "bob", "body": "yes!"}, **{"as": alice})
    assert sent["state"] == "OK", sent
    assert c.cmd("UNREAD", "", **{"as": bob})["data"] == {"unread": 1}  # words work too
    got = client.get(f"/v1/mail/{sent['data']['id']}", headers=api.bearer(bob)).json
    assert got["from"] == "alice" and got["body"] == "yes!"
    assert c.cmd("mail.delete", {"id": mail_id}, **{"as": alice}) == {
        "state": "OK", "msg": "mail.delete"}
    assert client.get(f"/v1/mail/{mail_id}", headers=api.bearer(alice)).status_code == 404
    # the connection is still the server
    me = c.cmd("server.settings.get", server_id)
    assert me == {"state": "OK", "msg": "server.settings.get", "data": {"settings": {}}}


def test_password_and_logout_for_a_player(relay, api, client):
    server_id, key = _server(api)
    alice = _token(api, "alice")
    other = api.token(api.login("alice"))  # a second session of alice's
    c = authed(relay.port, server_id, key)
    wrong = c.cmd("player.password", {"name": "alice", "old": "nope-nope", "new": "secret2"},
                  **{"as": alice})
    assert wrong["code"] == "invalid_credentials", wrong
    changed = c.cmd("player.password", {"name": "alice", "old": "secret1", "new": "secret2"},
                    **{"as": alice})
    assert changed == {"state": "OK", "msg": "player.password", "data": {"sessions_ended": 1}}
    assert client.get("/v1/mail/unread", headers=api.bearer(other)).status_code == 401
    # the owner check is HTTP's: alice's token cannot change bob's password
    _token(api, "bob")
    theirs = c.cmd("player.password", {"name": "bob", "old": "secret1", "new": "secret3"},
                   **{"as": alice})
    assert theirs["code"] == "forbidden"
    assert c.cmd("session.logout", "", **{"as": alice}) == {"state": "OK", "msg": "session.logout"}
    assert client.get("/v1/mail/unread", headers=api.bearer(alice)).status_code == 401
    assert c.cmd("status.list")["state"] == "OK"  # the server's own identity is untouched


def test_another_players_token_cannot_read_someone_elses_mail(relay, api, client):
    server_id, key = _server(api)
    alice, bob = _token(api, "alice"), _token(api, "bob")
    carol = _token(api, "carol")
    mail_id = _mail(client, api, carol, "alice", "for alice only")
    c = authed(relay.port, server_id, key)
    for cmd in ("mail.read", "mail.delete"):
        got = c.cmd(cmd, {"id": mail_id}, **{"as": bob})
        http = client.open(f"/v1/mail/{mail_id}", method="GET" if cmd == "mail.read"
                           else "DELETE", headers=api.bearer(bob))
        assert (got["state"], got["code"], http.status_code) == ("ERROR", "not_found", 404)
    assert c.cmd("mail.list", {}, **{"as": bob})["data"]["mail"] == []
    # and alice's own token still finds it unread (bob's attempts changed nothing)
    assert c.cmd("mail.unread_count", {}, **{"as": alice})["data"] == {"unread": 1}


def test_a_revoked_token_is_refused_for_that_command_alone(relay, api, client):
    server_id, key = _server(api)
    alice = _token(api, "alice")
    c = authed(relay.port, server_id, key)
    assert c.cmd("mail.unread_count", {}, **{"as": alice})["state"] == "OK"
    assert client.delete("/v1/sessions/current", headers=api.bearer(alice)).status_code == 204
    got = c.cmd("mail.unread_count", {}, **{"as": alice, "id": "q1"})
    assert got == {"state": "ERROR", "msg": p.AS_REFUSED, "code": "unauthenticated", "id": "q1"}
    # the same connection goes on as the server, pushes included
    assert c.cmd("status.list") == {"state": "OK", "msg": "status.list", "data": {"servers": []}}
    sent = client.post("/v1/messages", json={"to": server_id, "body": "still here"},
                       headers=api.bearer(key)).json["id"]
    assert wait_for(lambda: c.cmd("HW")["state"] == "OK" and c.pushes, 5)[0]["id"] == sent


@pytest.mark.parametrize("bad", ["p.bm9ib2R5.not-a-session", "garbage", "", "p..x",
                                 ADMIN_TOKEN, "SERVER_KEY"])
def test_anything_but_a_live_player_session_is_unauthenticated(relay, api, bad):
    server_id, key = _server(api)
    c = authed(relay.port, server_id, key)
    token = key if bad == "SERVER_KEY" else bad
    got = c.cmd("status.list", {}, **{"as": token})
    assert (got["state"], got["code"], got["msg"]) == ("ERROR", "unauthenticated", p.AS_REFUSED)
    assert c.cmd("status.list")["state"] == "OK"


def test_as_needs_a_string_and_an_operation(relay, api, client):
    server_id, key = _server(api)
    alice = _token(api, "alice")
    _mail(client, api, alice, "alice", "self")
    c = authed(relay.port, server_id, key)
    for bad in (5, ["x"], {"t": alice}, True):
        got = c.cmd("mail.delete", {"id": "m4t8z1c6v0bn"}, **{"as": bad, "id": 1})
        assert got == {"state": "ERROR", "msg": p.BAD_AS, "code": "invalid_input", "id": 1}
    got = c.cmd("HW", "2", **{"as": alice})
    assert got == {"state": "ERROR", "msg": p.AS_BUILTIN.format("HW"), "code": "invalid_input"}
    assert c.cmd("RESUME", "0", **{"as": alice})["code"] == "invalid_input"
    assert c.cmd("mail.unread_count", {}, **{"as": None})["code"] == "forbidden"  # null: absent


def test_as_does_not_replace_auth_and_leaves_the_connection_as_it_was(relay, api):
    alice = _token(api, "alice")
    s = greeted(relay.port, "SERVER")
    assert s.cmd("mail.unread_count", {}, **{"as": alice})["msg"] == p.NEED_AUTH
    c = greeted(relay.port, "CLIENT")  # an anonymous CLIENT connection: like a bearer per call
    assert c.cmd("mail.unread_count", {}, **{"as": alice})["data"] == {"unread": 0}
    assert c.cmd("mail.unread_count")["code"] == "unauthenticated"
    bob = _token(api, "bob")
    assert c.cmd("TOKEN", bob)["state"] == "OK"
    assert c.cmd("mail.unread_count", {}, **{"as": alice})["state"] == "OK"
    assert c.cmd("player.settings.get", "bob")["state"] == "OK"  # still bob
    # alice logs out through bob's connection: bob stays logged in on it
    assert c.cmd("session.logout", {}, **{"as": alice}) == {"state": "OK",
                                                          "msg": "session.logout"}
    assert c.cmd("player.settings.get", "bob")["state"] == "OK"


def test_a_rotated_server_key_is_noticed_on_an_as_command(relay, api, client):
    """The connection's own key is re-checked with the player's session (the revocation push
    usually closes the connection first; this is the check when it has not arrived)."""
    server_id, key = _server(api)
    alice = _token(api, "alice")
    me = Caller("server", server_id, "srv")
    assert relay.acting(me, key, alice).name == "alice"
    client.post(f"/v1/servers/{server_id}/key", headers=api.admin)
    with pytest.raises(Expired):
        relay.acting(me, key, alice)
    with pytest.raises(Unauthenticated) as refused:  # a bad token: for that command only
        relay.acting(me, key, "p.bm9ib2R5.not-a-session")
    assert type(refused.value) is Unauthenticated and refused.value.message == p.AS_REFUSED


def test_an_as_command_costs_the_round_trips_of_a_token_connection(relays, api, redis_server):
    """The server's own key check rides in the round trip of the player's session check, so
    ``as`` costs what the same command costs on a connection that sent ``TOKEN`` (on a
    cluster, one more exchange when the server's group is on another node: the same pipeline
    sends both at once)."""
    client, counter = counting_client(redis_server.url, on_cluster())
    relay = relays.start(redis_client=client)
    server_id, key = _server(api)
    alice = _token(api, "alice")
    by_as, by_token = authed(relay.port, server_id, key), greeted(relay.port, "CLIENT")
    assert by_token.cmd("TOKEN", alice)["state"] == "OK"
    spent = []
    for c, extra in ((by_as, {"as": alice}), (by_token, {})):
        before = counter.n
        assert c.cmd("mail.unread_count", {}, **extra)["data"] == {"unread": 0}
        spent.append(counter.n - before)
    apart = on_cluster() and client.get_node_from_key(keys.server(server_id)) != \
        client.get_node_from_key(keys.player("alice"))
    assert spent[0] == spent[1] + apart, spent


def test_the_token_is_never_echoed_or_logged(relay, api, client, caplog):
    caplog.set_level(logging.DEBUG)
    server_id, key = _server(api)
    alice = _token(api, "alice")
    c = authed(relay.port, server_id, key)
    _run_story(c, alice, client, api)
    secret = alice.rsplit(".", 1)[1]
    assert secret not in c.seen.decode()
    assert secret not in caplog.text and alice not in caplog.text


def _run_story(c: Any, alice: str, client: Any, api: Any) -> None:
    """Good, malformed and revoked uses of ``alice``'s token on one connection."""
    assert c.cmd("mail.unread_count", {}, **{"as": alice})["state"] == "OK"
    assert c.cmd("mail.send", {"to": "nobody", "body": "x"}, **{"as": alice})["state"] == "ERROR"
    assert c.cmd("mail.read", {"id": "!"}, **{"as": alice})["code"] == "invalid_input"
    assert c.cmd("HW", "", **{"as": alice})["code"] == "invalid_input"
    assert c.cmd("NOSUCH", "", **{"as": alice})["msg"] == p.NOT_FOUND
    c.send(json.dumps({"cmd": "mail.list", "as": alice, "args": [1]}))
    assert c.reply()["msg"] == p.BAD_ARGS
    client.delete("/v1/sessions/current", headers=api.bearer(alice))
    assert c.cmd("mail.unread_count", {}, **{"as": alice})["code"] == "unauthenticated"


def test_a_relay_process_logs_no_token(redis_server, r, api, client, tmp_path):
    """``python -m relay`` at debug level: its whole stderr holds no part of the token."""
    server_id, key = _server(api)
    alice = _token(api, "alice")
    port = free_port()
    env = dict(os.environ, REDIS_URL=redis_server.url, RELAY_PORT=str(port),
               RELAY_HOST="127.0.0.1", LOG_LEVEL="debug", SSM_ADMIN_TOKEN=ADMIN_TOKEN)
    log = open(tmp_path / "relay.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "relay"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _listening(port), 10, "the relay to listen")
        c = authed(port, server_id, key)
        _run_story(c, alice, client, api)
        c.close()
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    text = (tmp_path / "relay.log").read_text()
    assert "relay listening" in text  # the log was captured
    assert alice.rsplit(".", 1)[1] not in text


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        time.sleep(0.05)
        return False


def test_wrong_passwords_through_a_server_lock_the_name_there_only(relay, api, client, config):
    """A wrong ``old`` sent ``as`` a player through a game server counts like a login that
    server makes for the player: the name is locked through that server only, and the game
    server's address is not locked for everyone else (docs/API.md)."""
    server_id, key = _server(api)
    other_id, other_key = _server(api, "other")
    alice = _token(api, "alice")
    c = authed(relay.port, server_id, key)
    wrong = {"name": "alice", "old": "not-it-1", "new": "secret2"}
    for _ in range(config.login_name_fails):
        assert c.cmd("player.password", wrong, **{"as": alice})["code"] == "invalid_credentials"
    locked = c.cmd("player.password", wrong, **{"as": alice})
    assert locked["code"] == "rate_limited" and locked["retry_after"] > 0
    # elsewhere the name is not locked: a direct login, and a password change through another
    assert client.post("/v1/sessions", json={"name": "alice", "password": "secret1"}
                       ).status_code == 200
    o = authed(relay.port, other_id, other_key)
    right = {"name": "alice", "old": "secret1", "new": "secret2"}
    assert o.cmd("player.password", right, **{"as": alice})["state"] == "OK"
