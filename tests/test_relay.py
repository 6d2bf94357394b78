"""The relay over real sockets against the real embedded Redis (docs/RELAY.md).

Most tests run the relay in-process (its own event loop in a thread, a free port); the
multi-process, SIGTERM and `python -m relay` tests run it as subprocesses.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from relay import protocol as p
from relay.server import Relay
from relay.session import BUILTINS, Session
from shared import keys
from shared.auth import ADMIN_CALLER
from shared.dispatch import Ctx, run
from shared.registry import load
from shared.storage import messages
from shared.web import apidoc
from stack.embedded import EmbeddedRedis
from tests.conftest import wait_for
from tests.relay_client import Client, authed, greeted, server_creds, spawn

ROOT = Path(__file__).resolve().parent.parent


# --- the legacy transcript ------------------------------------------------------------------
def test_mode_list_then_anything_but_mode_closes(relay):
    c = Client(relay.port)
    c.line()
    c.send("MODE LIST")
    assert c.line() == b'{"state": "OK", "msg": "SERVER CLIENT HUMAN"}\r\n'
    c.send("HW")
    assert c.line() == b'{"state": "ERROR", "msg": "No mode set."}\r\n'
    assert c.is_closed()


@pytest.mark.parametrize("first,answer", [
    (b"HELP", b'{"state": "ERROR", "msg": "No mode set."}\r\n'),
    (b'{"cmd": "HW"}', b'{"state": "ERROR", "msg": "No mode set."}\r\n'),
    (b"MODE FOO", b'{"state": "ERROR", "msg": "Invalid mode: FOO"}\r\n'),
    (b'{"cmd": "MODE", "args": "X"}', b'{"state": "ERROR", "msg": "Invalid mode: X"}\r\n'),
])
def test_first_command_errors_close(relay, first, answer):
    c = Client(relay.port)
    c.line()
    c.send(first)
    assert c.line() == answer
    assert c.is_closed()


def test_mode_as_json_and_json_mode_transcript(relay):
    c = Client(relay.port)
    c.line()
    c.send('{"cmd": "MODE", "args": "CLIENT"}')
    assert c.line() == b'{"state": "OK", "msg": "Mode: CLIENT"}\r\n'
    c.send('{"cmd": "HW", "args": "3"}')
    assert c.line() == (b'{"state": "OK", "msg": "Hello, world! Hello, world! '
                        b'Hello, world!"}\r\n')
    c.send('{"cmd": "NOPE"}')
    assert c.line() == b'{"state": "ERROR", "msg": "Command not found."}\r\n'
    c.send("HW 3")
    assert c.line() == b'{"state": "ERROR", "msg": "Invalid JSON."}\r\n'
    assert c.cmd("HW", "65")["state"] == "ERROR"
    names = c.cmd("help")["msg"].split()
    assert {"MODE", "QUIT", "HELP", "HW", "AUTH", "LOGIN", "TOKEN", "RESUME"} <= set(names)
    assert set(load()) <= set(names)
    c.send('{"cmd": "QUIT"}')
    assert c.line() == b'{"state": "OK", "msg": "Goodbye."}\r\n'
    assert c.is_closed()


def test_human_mode_transcript(relay):
    c = Client(relay.port)
    c.line()
    c.send("MODE HUMAN")
    assert c.upto(b"> ") == b"Welcome to serversquared Modification Global Backend.\r\n> "
    c.send("HW 3")
    assert c.upto(b"> ") == b"Hello, world!\r\n" * 3 + b"> "
    c.send("")
    assert c.upto(b"> ") == b"> "
    c.send("help all")
    lines = c.upto(b"\r\n> ").decode().split("\r\n")
    assert lines[0] == "Available commands:"
    for name in ["MODE", "QUIT", "HELP", "HW", *load()]:
        assert sum(1 for line in lines if line.strip().startswith(name)) >= 1, name
    c.send("frobnicate")
    assert c.upto(b"> ") == b"ERROR: Command not found.\r\n> "
    c.send("servers")
    assert c.upto(b"> ") == b"servers: []\r\n> "
    c.send("quit")
    assert c.line() == b"Goodbye.\r\n"
    assert c.is_closed()


def test_mode_cannot_change_once_set(relay):
    c = greeted(relay.port, "CLIENT")
    assert c.cmd("MODE", "LIST")["msg"] == "SERVER CLIENT HUMAN"
    assert c.cmd("MODE", "CLIENT")["msg"] == "Mode: CLIENT"
    assert c.cmd("MODE", "HUMAN") == {"state": "ERROR", "msg": "Mode already set: CLIENT"}


# --- auth -----------------------------------------------------------------------------------
def test_server_mode_needs_auth_and_three_strikes_close(relay, api):
    server_id, key, _ = server_creds(api)
    c = greeted(relay.port, "SERVER")
    assert c.cmd("status.list")["code"] == "unauthenticated"
    assert c.cmd("HW")["state"] == "OK"
    for _ in range(2):
        got = c.cmd("AUTH", f"{server_id} s.{server_id}.wrong")
        assert (got["state"], got["code"]) == ("ERROR", "unauthenticated")
    assert c.cmd("AUTH", "nosuch key")["code"] == "unauthenticated"
    assert c.is_closed()
    c = authed(relay.port, server_id, key)
    assert c.cmd("status.list") == {"state": "OK", "msg": "status.list", "data": {"servers": []}}


def test_login_sets_the_caller(relay, api):
    api.player("alice")
    c = greeted(relay.port, "CLIENT")
    assert c.cmd("UNREAD")["code"] == "unauthenticated"
    bad = c.cmd("LOGIN", "alice wrongpass")
    assert (bad["state"], bad["code"]) == ("ERROR", "invalid_credentials")
    got = c.cmd("LOGIN", {"name": "alice", "password": "secret1"})
    assert got["msg"] == "Logged in as alice." and got["data"]["player"]["name"] == "alice"
    assert c.cmd("UNREAD") == {"state": "OK", "msg": "mail.unread_count", "data": {"unread": 0}}
    other = greeted(relay.port, "CLIENT")
    assert other.cmd("TOKEN", got["data"]["token"])["data"]["name"] == "alice"
    assert other.cmd("player.settings.get", "alice")["data"] == {"settings": {}}
    assert other.cmd("LOGOUT") == {"state": "OK", "msg": "session.logout"}  # a 204: no data
    assert other.cmd("player.settings.get", "alice")["code"] == "unauthenticated"
    assert other.cmd("TOKEN", "p.bogus.token")["code"] == "unauthenticated"


REVOKED_ANY = (b'{"state": "ERROR", "msg": "Connection closed: the key or session is no longer '
               b'valid.", "code": "unauthenticated"}\r\n')


def _key_changed_unannounced(r: Any, server_id: str) -> None:
    """The key changes with no revocation entry (a crash between the two steps)."""
    r.hset(keys.server(server_id), "key", "0" * 64)


def test_a_key_that_stopped_working_ends_the_connection_on_its_next_command(relay, api, r):
    server_id, key, _ = server_creds(api)
    c = authed(relay.port, server_id, key)
    assert c.cmd("status.list")["state"] == "OK"
    _key_changed_unannounced(r, server_id)
    c.send(json.dumps({"cmd": "status.list", "id": 7}))
    assert c.line() == REVOKED_ANY[:-3] + b', "id": 7}\r\n'
    assert c.is_closed()


def test_resume_rechecks_the_key(relay, api, r):
    server_id, key, _ = server_creds(api)
    c = authed(relay.port, server_id, key)
    _key_changed_unannounced(r, server_id)
    c.send(json.dumps({"cmd": "RESUME", "args": "0"}))
    assert c.line() == REVOKED_ANY
    assert c.is_closed()


# --- pushes ---------------------------------------------------------------------------------
def test_push_after_http_send_arrives_fast_and_matches_message_read(relay, api, client):
    a_id, a_key, a_headers = server_creds(api, "a")
    b_id, _, b_headers = server_creds(api, "b")
    c = authed(relay.port, a_id, a_key)
    t0 = time.monotonic()
    sent = client.post("/v1/messages", json={"to": a_id, "body": "hi there"}, headers=b_headers)
    assert sent.status_code == 202
    push = c.push()
    assert time.monotonic() - t0 < 1.0
    read = client.get("/v1/messages", headers=a_headers).json["messages"]
    assert push == {"state": "PUSH", "event": "message", "id": sent.json["id"], "data": read[-1]}
    assert push["data"]["body"] == "hi there" and push["data"]["from"] == b_id


def test_relay_send_reaches_relay_connected_target(relay, api):
    a_id, a_key, _ = server_creds(api, "a")
    b_id, b_key, _ = server_creds(api, "b")
    a, b = authed(relay.port, a_id, a_key), authed(relay.port, b_id, b_key)
    got = b.cmd("SEND", f"{a_id} hello over  the relay")
    assert got["state"] == "OK" and got["msg"] == "message.send"
    push = a.push()
    assert push["id"] == got["data"]["id"] and push["data"]["body"] == "hello over  the relay"
    b.cmd("SEND", "* to everyone")
    assert a.push()["data"]["to"] == "*"
    b.cmd("HW")
    assert b.pushes == []  # a broadcast skips its sender


def test_resume_after_reconnect_misses_nothing(relay, api):
    a_id, a_key, _ = server_creds(api, "a")
    b_id, b_key, _ = server_creds(api, "b")
    early = [_send(relay, b_id, a_id, f"early {i}") for i in range(3)]
    a = authed(relay.port, a_id, a_key)
    first = _send(relay, b_id, a_id, "live 0")
    assert a.push()["id"] == first
    a.close()
    missed = [_send(relay, b_id, a_id, f"missed {i}") for i in range(5)]
    a = authed(relay.port, a_id, a_key)
    live_before_resume = _send(relay, b_id, a_id, "live 1")
    assert a.push()["id"] == live_before_resume
    assert a.cmd("RESUME", first)["msg"] == f"Resuming after {first}."
    later = _send(relay, b_id, a_id, "live 2")
    got = [a.push()["id"] for _ in range(6)]
    assert got == missed + [later]  # in order, each once, the one already pushed not again
    a.close()
    a = authed(relay.port, a_id, a_key)
    a.cmd("RESUME", "0")
    everything = [a.push()["id"] for _ in range(11)]
    assert everything == early + [first] + missed + [live_before_resume, later]
    assert a.cmd("RESUME", "x")["code"] == "invalid_input"


def _send(relay: Relay, sender: str, to: str, body: str) -> str:
    data = {"from": sender, "to": to, "type": "text", "body": body, "at": time.time()}
    return messages.deliver(relay.redis, relay.config, to, sender, "message", data)[0]


def test_two_subscriptions_of_one_server_both_get_pushes(relay, api):
    a_id, a_key, _ = server_creds(api, "a")
    one, two = authed(relay.port, a_id, a_key), authed(relay.port, a_id, a_key)
    sent = _send(relay, "x", a_id, "both")
    assert one.push()["id"] == two.push()["id"] == sent
    one.close()
    sent = _send(relay, "x", a_id, "still")
    assert two.push()["id"] == sent


def test_human_player_gets_a_mail_line(start_relay, api, client, monkeypatch):
    monkeypatch.setattr("relay.mailwatch.POLL", 0.1)
    relay = start_relay()
    api.player("alice")
    bob = api.player("bob")
    c = greeted(relay.port, "HUMAN")
    c.send("LOGIN alice secret1")
    assert c.upto(b"> ").startswith(b"Logged in as alice.\r\n")
    resp = client.post("/v1/mail", json={"to": "alice", "subject": "hey", "body": "b"},
                       headers=bob)
    assert resp.status_code == 201, resp.json
    note = c.upto(b"> ").decode()
    assert f"New mail from bob: hey (READMAIL {resp.json['id']})" in note
    assert "* 1 unread" in note


# --- hygiene and limits ---------------------------------------------------------------------
def _prompt_hw(port: int) -> float:
    t0 = time.monotonic()
    c = greeted(port, "CLIENT")
    assert c.cmd("HW")["msg"] == "Hello, world!"
    c.close()
    return time.monotonic() - t0


def test_garbage_huge_lines_and_telnet_never_hurt(relay):
    c = greeted(relay.port, "CLIENT")
    rng = random.Random(7)
    c.sock.sendall(bytes(rng.randrange(256) for _ in range(20000)) + b"\r\n")
    c.sock.sendall(b"x" * 200_000 + b"\r\n")
    assert _prompt_hw(relay.port) < 0.5
    c.send('{"cmd": "HW", "args": "2"}')
    replies = []
    while not replies or replies[-1]["state"] != "OK":
        replies.append(c.reply())
    assert {"msg": "Line too long (max 8192 bytes).", "state": "ERROR", "code": "too_large"} \
        in replies
    c.sock.sendall(b"\xc3\x28\xfe\r\n")
    assert c.reply()["msg"] == "Invalid UTF-8."
    t = Client(relay.port)
    t.line()
    t.sock.sendall(b"\xff\xfd\x18\xff\xfb\x1f\xff\xfa\x18\x01\xff\xf0MODE HUMAN\r\n")
    assert t.upto(b"> ").startswith(b"Welcome")
    t.sock.sendall(b"HW\xff\xf1 2\r\n")
    assert t.upto(b"> ") == b"Hello, world!\r\n" * 2 + b"> "


def test_client_that_never_reads_is_dropped_without_delaying_others(relay, api):
    # A client that does not read its replies is paused (no more commands read), not dropped,
    # and delays nobody.
    lazy = greeted(relay.port, "HUMAN", rcvbuf=4096)
    lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    lazy.sock.settimeout(0.5)
    try:
        for _ in range(600):  # ~4 KB of output each, never read
            lazy.sock.sendall(b"HELP\r\n" * 10)
    except (OSError, TimeoutError):
        pass  # the relay stopped reading from it
    assert _prompt_hw(relay.port) < 0.5
    # A server that does not read its pushes is dropped once OUT_MAX bytes wait for it.
    a_id, a_key, _ = server_creds(api, "a")
    slow = greeted(relay.port, "SERVER", rcvbuf=4096)
    assert slow.cmd("AUTH", f"{a_id} {a_key}")["state"] == "OK"
    before = len(relay.conns)
    deadline = time.monotonic() + 5
    while len(relay.conns) == before and time.monotonic() < deadline:
        for _ in range(50):
            _send(relay, "x", a_id, "é" * 1000)  # ~6 KB a push, never read
        time.sleep(0.01)
    assert len(relay.conns) == before - 1
    assert slow.is_closed(2)
    assert _prompt_hw(relay.port) < 0.5


def test_limits_per_ip_and_max_clients(start_relay):
    per_ip = start_relay(relay_max_per_ip=2)
    keep = [greeted(per_ip.port) for _ in range(2)]
    c = Client(per_ip.port)
    assert c.line() == b'{"state": "ERROR", "msg": "Too many connections."}\r\n'
    assert c.is_closed()
    keep.pop().close()
    wait_for(lambda: per_ip.per_ip.get("127.0.0.1") == 1, 5, "the closed connection let go")
    keep.append(greeted(per_ip.port))
    full = start_relay(relay_max_clients=1)
    keep.append(greeted(full.port))
    c = Client(full.port)
    assert c.line() == b'{"state": "ERROR", "msg": "Server full."}\r\n'
    assert c.is_closed()


def test_idle_connections_are_closed(start_relay):
    relay = start_relay(relay_idle_timeout=1)
    c = greeted(relay.port)
    assert c.line() == b'{"state": "ERROR", "msg": "Idle timeout."}\r\n'
    assert c.is_closed()


def test_pushes_resume_after_redis_restarts(start_relay, config, api, tmp_path):
    own = EmbeddedRedis(tmp_path / "redis", appendonly=True).start()
    try:
        relay = start_relay(dataclasses.replace(config, redis_url=own.url, redis_cluster=0))
        ctx = Ctx(relay.redis, relay.config, ADMIN_CALLER)
        made = run(load()["server.create"], ctx, {"name": "a"}).body
        c = authed(relay.port, made["id"], made["key"])
        own.stop()
        time.sleep(0.3)  # Redis away for a moment: the outage under test
        own.start()
        sent = _send(relay, "x", made["id"], "after restart")
        assert c.push()["id"] == sent
    finally:
        own.stop()


# --- as processes ---------------------------------------------------------------------------
def test_two_relay_processes_deliver_to_each_other(redis_server, r, api):
    a_id, a_key, _ = server_creds(api, "a")
    b_id, b_key, _ = server_creds(api, "b")
    (one, port1), (two, port2) = spawn(redis_server.url), spawn(redis_server.url)
    try:
        a, b = authed(port1, a_id, a_key), authed(port2, b_id, b_key)
        sent = b.cmd("SEND", f"{a_id} across processes")["data"]["id"]
        assert a.push()["id"] == sent
        sent = a.cmd("SEND", f"{b_id} and back")["data"]["id"]
        assert b.push()["data"]["body"] == "and back" and b.pushes == []
        a.close()
        b.close()
    finally:
        for proc in (one, two):
            proc.terminate()
            proc.wait(5)


def test_sigterm_tells_clients_and_exits_cleanly(redis_server):
    proc, port = spawn(redis_server.url)
    c = greeted(port)
    proc.send_signal(signal.SIGTERM)
    assert c.line() == b'{"state": "ERROR", "msg": "Server shutting down."}\r\n'
    assert c.is_closed()
    assert proc.wait(5) == 0


def test_resume_when_inbox_is_gone_finishes_and_live_pushes_continue(relay, api):
    from shared import keys
    a_id, a_key, _ = server_creds(api, "a")
    a = authed(relay.port, a_id, a_key)
    first = _send(relay, "x", a_id, "one")
    assert a.push()["id"] == first  # this process's cursor is now at `first`
    relay.redis.delete(keys.inbox(a_id))  # the inbox is gone (or trimmed shorter)
    assert a.cmd("RESUME", "0")["state"] == "OK"
    time.sleep(0.3)
    assert not any(c.replaying for c in list(relay.conns))  # not re-reading in a loop
    a.sock.settimeout(2)
    later = _send(relay, "x", a_id, "two")
    assert a.push()["id"] == later  # the replay finished; live delivery resumed


def test_reauth_during_replay_stops_the_old_servers_replay(relay, api):
    a_id, a_key, _ = server_creds(api, "a")
    b_id, b_key, _ = server_creds(api, "b")
    _fill_inbox(relay, a_id, 3000, "A")
    c = authed(relay.port, a_id, a_key)
    c.send(json.dumps({"cmd": "RESUME", "args": "0"}) + "\r\n"
           + json.dumps({"cmd": "AUTH", "args": f"{b_id} {b_key}"}))
    assert c.reply()["msg"] == "Resuming after 0."
    assert c.reply()["msg"] == f"Authenticated as server {b_id}."
    c.pushes.clear()  # A's pushes sent before the re-AUTH are fine
    sent = _send(relay, "x", b_id, "for B")
    push = c.push()
    assert push["id"] == sent and push["data"]["to"] == b_id  # no A entry after the AUTH


def _fill_inbox(relay: Relay, server_id: str, n: int, body: str, raw: str | None = None) -> None:
    """``n`` entries straight into the inbox (ids from the id log, as deliver takes them);
    ``raw`` is the ``d`` field as is instead of a message."""
    from shared import keys
    pipe = relay.redis.pipeline(transaction=False)
    for _ in range(n):
        pipe.xadd(keys.message_ids(), {"e": "message"})
    ids = pipe.execute()
    for i, sid in enumerate(ids):
        pipe.xadd(keys.inbox(server_id), {"e": "message", "d": raw if raw is not None else
                                          json.dumps({"from": "x", "to": server_id, "type": "text",
                                                      "body": f"{i} {body}", "at": 1.0})}, id=sid)
    pipe.execute()


def test_a_large_replay_waits_for_the_client_instead_of_dropping_it(relay, api):
    a_id, a_key, _ = server_creds(api, "a")
    _fill_inbox(relay, a_id, 1200, "é" * 1000)  # ~6 KB a line, ~3 MB a replay batch
    c = greeted(relay.port, "SERVER", rcvbuf=8192)
    assert c.cmd("AUTH", f"{a_id} {a_key}")["state"] == "OK"
    assert c.cmd("RESUME", "0")["state"] == "OK"
    time.sleep(0.3)  # a client busy elsewhere for a moment
    got = [c.push()["data"]["body"].split()[0] for _ in range(1200)]
    assert got == [str(i) for i in range(1200)]
    sent = _send(relay, "x", a_id, "live after replay")
    assert c.push()["id"] == sent


def test_a_large_reply_is_paced_not_fatal(relay, api):
    a_id, a_key, _ = server_creds(api, "a")
    _fill_inbox(relay, a_id, 160, "é" * 1000)  # message.read answers with ~1 MB
    c = greeted(relay.port, "SERVER")
    assert c.cmd("AUTH", f"{a_id} {a_key}")["state"] == "OK"
    c.send(json.dumps({"cmd": "message.read", "args": {"limit": 1000}}))
    time.sleep(0.3)  # a client busy elsewhere for a moment
    line = c.line()
    assert json.loads(line)["state"] == "OK"
    assert 900 * 1024 < len(line) <= p.OUT_LINE_MAX + 2
    assert c.cmd("HW")["msg"] == "Hello, world!"  # still connected, reading commands


def test_a_malformed_inbox_entry_is_skipped_and_pushes_go_on(relay, api):
    a_id, a_key, _ = server_creds(api, "a")
    a = authed(relay.port, a_id, a_key)
    _fill_inbox(relay, a_id, 1, "", raw="{not json")
    a.sock.settimeout(2)
    sent = _send(relay, "x", a_id, "after the bad one")
    assert a.push()["id"] == sent
    b = authed(relay.port, a_id, a_key)
    b.sock.settimeout(2)
    assert b.cmd("RESUME", "0")["state"] == "OK"  # a replay skips it too
    assert b.push()["id"] == sent


def test_resume_with_a_future_id_does_not_silence_later_pushes(relay, api):
    a_id, a_key, _ = server_creds(api, "a")
    a = authed(relay.port, a_id, a_key)
    a.sock.settimeout(2)
    first = _send(relay, "x", a_id, "before")
    assert a.push()["id"] == first
    assert a.cmd("RESUME", "9999999999999")["state"] == "OK"
    time.sleep(0.1)
    sent = _send(relay, "x", a_id, "after")
    assert a.push()["id"] == sent


@pytest.mark.parametrize("n", ["³", "١٢", "0", "x"])
def test_hw_rejects_non_ascii_digits_as_invalid_input(relay, n):
    c = greeted(relay.port, "CLIENT")
    got = c.cmd("HW", n)
    assert got["state"] == "ERROR" and got["code"] == "invalid_input", got



# --- request ids and idempotency keys (docs/RELAY.md) ---------------------------------------------
def test_a_json_command_id_is_echoed_last_in_its_reply(relay, api):
    server_id, key, _ = server_creds(api)
    c = greeted(relay.port, "SERVER")
    c.send('{"cmd": "HW", "args": "2", "id": "q-1"}')
    assert c.line() == (b'{"state": "OK", "msg": "Hello, world! Hello, world!", '
                        b'"id": "q-1"}\r\n')
    c.send('{"cmd": "NOPE", "id": 7}')
    assert c.line() == b'{"state": "ERROR", "msg": "Command not found.", "id": 7}\r\n'
    c.send('{"cmd": "status.list", "id": 8}')  # refused before AUTH
    assert c.reply() == {"state": "ERROR", "msg": p.NEED_AUTH, "code": "unauthenticated",
                         "id": 8}
    got = c.cmd("AUTH", f"{server_id} {key}", id=9)
    assert got["id"] == 9 and got["data"]["id"] == server_id
    c.send('{"cmd": "status.list", "id": "list"}')  # runs in the pool, answered later
    assert c.line() == (b'{"state": "OK", "msg": "status.list", "data": {"servers": []}, '
                        b'"id": "list"}\r\n')
    c.send('{"cmd": "status.list"}')
    assert c.line() == b'{"state": "OK", "msg": "status.list", "data": {"servers": []}}\r\n'
    c.send('{"cmd": "HW", "args": [1], "id": 10}')
    assert c.line() == (b'{"state": "ERROR", "msg": "args must be a string or a JSON object.", '
                        b'"id": 10}\r\n')
    c.send('{"cmd": "HW", "id": true}')
    assert c.reply() == {"state": "ERROR", "msg": p.BAD_ID, "code": "invalid_input"}
    c.send('{"cmd": "HW", "id": 11, "idempotency_key": 5}')
    assert c.reply() == {"state": "ERROR", "msg": p.BAD_KEY, "code": "invalid_input", "id": 11}


def test_the_id_of_the_mode_command_is_echoed_too(relay):
    c = Client(relay.port)
    c.line()
    c.send('{"cmd": "MODE", "args": "CLIENT", "id": 0}')
    assert c.line() == b'{"state": "OK", "msg": "Mode: CLIENT", "id": 0}\r\n'


def test_replies_carry_their_id_between_pushes(relay, api):
    a_id, a_key, _ = server_creds(api, "a")
    a = authed(relay.port, a_id, a_key)
    sent = _send(relay, "x", a_id, "in between")
    got = a.cmd("HW", id="after-push")
    assert got == {"state": "OK", "msg": "Hello, world!", "id": "after-push"}
    assert a.push()["id"] == sent


def test_idempotency_key_over_the_relay_replays_the_first_answer(relay, api, r):
    a_id, a_key, _ = server_creds(api, "a")
    b_id, _, _ = server_creds(api, "b")
    a = authed(relay.port, a_id, a_key)
    first = a.cmd("SEND", f"{b_id} only once", idempotency_key="k-1")
    again = a.cmd("SEND", f"{b_id} only once", idempotency_key="k-1")
    assert first["state"] == "OK" and again == first
    assert r.xlen(keys.inbox(b_id)) == 1  # one write
    other = a.cmd("SEND", f"{b_id} only once", idempotency_key="k-2")
    assert other["data"]["id"] != first["data"]["id"]
    assert r.xlen(keys.inbox(b_id)) == 2


# --- limits (docs/RELAY.md) -----------------------------------------------------------------------
def test_bytes_without_a_newline_do_not_keep_a_connection_alive(start_relay):
    relay = start_relay(relay_idle_timeout=1)
    c = greeted(relay.port)
    c.sock.settimeout(0.2)
    deadline = time.monotonic() + 6
    while not c.buf and time.monotonic() < deadline:  # a byte every 0.2 s, never a newline
        c.sock.sendall(b"x")
        try:
            c._fill()
        except TimeoutError:
            continue
    assert c.buf, "still open after 6 s of dribbling with RELAY_IDLE_TIMEOUT=1"
    assert c.line() == b'{"state": "ERROR", "msg": "Idle timeout."}\r\n'
    assert c.is_closed()


def test_complete_lines_keep_a_connection_alive(start_relay):
    relay = start_relay(relay_idle_timeout=1)
    c = greeted(relay.port)
    for _ in range(12):  # 3 s, three idle timeouts
        assert c.cmd("HW") == {"state": "OK", "msg": "Hello, world!"}
        time.sleep(0.25)
    assert c.cmd("HW") == {"state": "OK", "msg": "Hello, world!"}


def _say(c: Client, mode: str, cmd: str, args: str) -> bytes:
    """Send a command in ``mode``; its reply line (HUMAN: all text up to the prompt or close)."""
    if mode != "HUMAN":
        c.send(json.dumps({"cmd": cmd, "args": args}))
        return c.line()
    c.send(f"{cmd} {args}")
    try:
        return c.upto(b"> ")[:-2]
    except EOFError:
        return c.buf


@pytest.mark.parametrize("mode", ["CLIENT", "SERVER", "HUMAN"])
def test_three_failed_tokens_close_the_connection_in_every_mode(relay, api, mode):
    server_id, key, _ = server_creds(api)
    c = greeted(relay.port, mode)
    for token in ["p.YWxpY2U.nope", f"s.{server_id}.wrong"]:
        got = _say(c, mode, "TOKEN", token)
        assert got == (b"ERROR: Invalid or expired token.\r\n" if mode == "HUMAN" else
                       b'{"state": "ERROR", "msg": "Invalid or expired token.", '
                       b'"code": "unauthenticated"}\r\n')
    assert b"Invalid or expired token." in _say(c, mode, "TOKEN", "garbage")
    assert c.is_closed()
    c = greeted(relay.port, mode)  # AUTH and TOKEN failures count together
    assert b"Invalid server id or key." in _say(c, mode, "AUTH", f"{server_id} wrong")
    assert b"Invalid or expired token." in _say(c, mode, "TOKEN", "garbage")
    assert b"Authenticated as server" in _say(c, mode, "TOKEN", key)  # 2 failures: still open
    assert b"Invalid or expired token." in _say(c, mode, "TOKEN", "garbage")
    assert c.is_closed()


def test_server_connections_do_not_count_toward_the_per_address_cap(start_relay, api):
    relay = start_relay(relay_max_per_ip=2)
    server_id, key, _ = server_creds(api)
    servers = [authed(relay.port, server_id, key) for _ in range(2)]
    servers += [greeted(relay.port, "SERVER"), greeted(relay.port, "CLIENT")]  # 3rd and 4th
    assert servers[2].cmd("TOKEN", key)["state"] == "OK"  # a server key through TOKEN too
    anon = greeted(relay.port)
    over = Client(relay.port)  # anonymous: 2 already (anon, servers[3])
    assert over.line() == b'{"state": "ERROR", "msg": "Too many connections."}\r\n'
    assert over.is_closed()
    assert relay.per_ip == {"127.0.0.1": 2}
    for c in [*servers, anon]:
        c.close()
    deadline = time.monotonic() + 3
    while relay.per_ip and time.monotonic() < deadline:
        time.sleep(0.02)
    assert relay.per_ip == {}  # nothing left counted once all are gone


def test_a_server_whose_key_stops_working_ends_and_frees_its_slot(start_relay, api, client):
    relay = start_relay(relay_max_per_ip=1)
    server_id, key, _ = server_creds(api)
    c = authed(relay.port, server_id, key)
    anon = greeted(relay.port)  # the one anonymous place
    assert relay.server_slots == 1
    rotated = client.post(f"/v1/servers/{server_id}/key", headers=api.admin)
    assert rotated.status_code == 200
    assert c.is_closed()
    wait_for(lambda: relay.server_slots == 0, 3, "the slot back")
    assert relay.per_ip == {"127.0.0.1": 1} and relay.holders == {}
    anon.close()


# --- HUMAN mode output ----------------------------------------------------------------------
def test_human_replies_show_utc_times_and_server_names(relay, api, client):
    server_id, headers = api.server("Fun CTF")
    alice = api.player("alice")
    assert api.heartbeat(server_id, headers).status_code == 200
    assert api.join(server_id, headers, alice).status_code == 200
    assert client.put("/v1/clans/AcE", json={"name": "Aces"}, headers=alice).status_code == 201
    profile = client.get("/v1/players/alice").json
    c = greeted(relay.port, "HUMAN")
    c.send("WHOIS alice")
    lines = c.upto(b"> ").decode().split("\r\n")
    created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(profile["created"]))
    assert f"created: {created}" in lines
    assert f"server: Fun CTF ({server_id})" in lines
    assert "clan: AcE" in lines
    c.send(f"STATUS {server_id}")
    text = c.upto(b"> ").decode()
    assert re.search(r"^updated: 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC\r$", text, re.M), text
    json_mode = greeted(relay.port, "CLIENT")  # JSON modes keep the raw values
    assert json_mode.cmd("WHOIS", "alice")["data"]["server"] == server_id


def test_seasons_over_the_relay(relay, api, client):
    server_id, headers = api.server("Fun CTF")
    alice = api.player("alice")
    assert api.heartbeat(server_id, headers).status_code == 200
    assert api.join(server_id, headers, alice).status_code == 200
    assert client.put("/v1/boards/ctf.daily", json={"order": "desc", "operator": "best",
                                                    "reset": "daily"},
                      headers=api.admin).status_code == 201
    assert client.post("/v1/boards/ctf.daily/records", json={"player": "alice", "score": 9},
                       headers=headers).status_code == 200
    season = client.get("/v1/boards/ctf.daily/seasons").json["seasons"][0]
    start, end = (time.strftime("%Y-%m-%d", time.gmtime(season[k])) for k in ("start", "end"))
    c = greeted(relay.port, "HUMAN")
    c.send("SEASONS ctf.daily")
    lines = c.upto(b"> ").decode().split("\r\n")
    assert lines[:2] == ["ctf.daily: season 0 now, reset daily",
                         f"  season 0 (current), {start} to {end}: 1. alice 9"]
    json_mode = greeted(relay.port, "CLIENT")
    got = json_mode.cmd("SEASON", "ctf.daily 0")
    assert [rec["player"] for rec in got["data"]["records"]] == ["alice"], got


# --- HELP -----------------------------------------------------------------------------------
def test_help_mail_shows_only_the_words_the_parser_fills(relay):
    c = greeted(relay.port)
    usage = "mail.send (alias MAIL) <to> <body...> (subject, from: JSON args only)"
    assert c.cmd("HELP", "MAIL") == {"state": "OK", "msg": usage}
    h = greeted(relay.port, "HUMAN")
    h.send("HELP mail")  # HUMAN mode's MAIL also takes a subject (before a |)
    assert h.upto(b"\r\n> ").decode().split("\r\n")[0] == \
        "mail.send (alias MAIL) <to> [subject |] <body...> (from: JSON args only)"


def test_human_help_is_one_screen_an_index_of_topics_from_the_registry(relay):
    from shared import SOURCE_URL
    h = greeted(relay.port, "HUMAN")
    h.send("HELP")
    index = h.upto(b"\r\n> ").decode().split("\r\n")[:-1]
    assert len(index) <= 23  # a 24-line terminal, with the prompt
    assert index[0] == "Available commands:"
    assert index[1:9] == [f"  {cmd.usage}" for cmd in BUILTINS.values()]
    areas = apidoc.grouped(load())
    assert [line.split()[0] for line in index[10:10 + len(areas)]] == [a.key for a, _ in areas]
    assert index[-1] == f"Source: {SOURCE_URL} (AGPL-3.0-or-later)"
    assert not any("mail.send" in line for line in index)
    for area, ops in areas:
        h.send(f"HELP {area.key}")
        topic = h.upto(b"\r\n> ").decode().split("\r\n")[:-1]
        if area.key.upper() in relay.commands:  # "mail" is also MAIL: the command comes first
            op = relay.commands[area.key.upper()]
            assert topic[0] == Relay.usage(op, human=True)
            topic = topic[2:]
        assert topic[0] == f"{area.title} (topic {area.key}):"
        assert [line.split()[0] for line in topic[1:]] == [op.name for op in ops]
    h.send("HELP moderation")
    assert h.upto(b"\r\n> ").decode().split("\r\n")[1].startswith(
        "  ban.create (alias BAN) [player] [duration] <reason...>")
    h.send("HELP nope")
    assert h.upto(b"> ") == b"ERROR: Command not found.\r\n> "
    h.send("HELP all")
    every = h.upto(b"\r\n> ").decode().split("\r\n")[:-1]
    assert every[-1] == f"Source: {SOURCE_URL} (AGPL-3.0-or-later)"
    assert len(every) == 1 + len(BUILTINS) + len(load()) + 1


def test_json_help_answers_are_unchanged_by_human_topics(relay):
    c = greeted(relay.port)
    ops = load().values()
    names = [*BUILTINS, *sorted(op.name for op in ops),
             *sorted({a for op in ops for a in op.aliases} - set(BUILTINS))]
    c.send('{"cmd": "HELP"}')
    assert c.line() == (json.dumps({"state": "OK", "msg": " ".join(names)}) + "\r\n").encode()
    for word in ("ALL", "moderation"):  # HUMAN mode's words only
        assert c.cmd("HELP", word) == {"state": "ERROR", "msg": "Command not found."}
    assert c.cmd("HELP", "HEARTBEAT")["msg"].startswith("status.update (alias HEARTBEAT) <id>")


def test_human_help_shows_the_configured_status_ttl(start_relay):
    relay = start_relay(status_ttl=37)
    h = greeted(relay.port, "HUMAN")
    h.send("HELP HEARTBEAT")
    lines = h.upto(b"\r\n> ").decode().split("\r\n")
    assert lines[1] == ("Heartbeat: publish the calling server's status; "
                        "repeat at least every 37 seconds.")
    h.send("HELP status")
    assert "repeat at least every 37 seconds." in h.upto(b"\r\n> ").decode()


def test_human_mail_sets_a_subject_before_a_bar(relay, api):
    api.player("alice")
    api.player("bob")
    h = greeted(relay.port, "HUMAN")
    h.send("LOGIN alice secret1")
    h.upto(b"\r\n> ")

    def mail(line: str) -> dict[str, str]:
        h.send(line)
        out = h.upto(b"\r\n> ").decode()
        assert out.startswith("id: "), out
        return relay.redis.hgetall(keys.mail("bob", out.split()[1]))
    got = mail("MAIL bob Rematch? | same map at 9, a|b")
    assert (got["subject"], got["body"]) == ("Rematch?", "same map at 9, a|b")
    got = mail("MAIL bob gg, no subject")
    assert (got["subject"], got["body"]) == ("", "gg, no subject")
    got = mail("MAIL bob | a|b")
    assert (got["subject"], got["body"]) == ("", "a|b")
    h.send("MAIL bob only a subject |")
    assert h.upto(b"> ").startswith(b"ERROR: body: ")
    c = greeted(relay.port)  # the JSON modes' words are as they were: all of it is the body
    token = api.token(api.player("carol"))
    assert c.cmd("TOKEN", token)["state"] == "OK"
    sent = c.cmd("MAIL", "bob x | y")
    got = relay.redis.hgetall(keys.mail("bob", sent["data"]["id"]))
    assert (got["subject"], got["body"]) == ("", "x | y")


@pytest.mark.parametrize("name", sorted(load()))
def test_usage_lists_exactly_the_positional_words(name):
    op = load()[name]
    filled = list(p.words(op.fields, " ".join(f"w{i}" for i in range(40)))[0])
    shown = re.findall(r"[<\[]([\w.]+?)(?:\.\.\.)?[>\]]", Relay.usage(op))
    assert shown == filled


def test_each_builtin_declares_itself_once_and_help_lists_it(relay):
    assert list(BUILTINS) == ["MODE", "HELP", "QUIT", "HW", "AUTH", "LOGIN", "TOKEN", "RESUME"]
    assert {n for n, cmd in BUILTINS.items() if cmd.before_auth} == {
        "MODE", "HELP", "QUIT", "HW", "AUTH", "TOKEN"}
    for name, cmd in BUILTINS.items():
        assert cmd.usage.split()[0] == name
        assert cmd.run is getattr(Session, f"cmd_{name.lower()}")
    h = greeted(relay.port, "HUMAN")
    h.send("HELP")
    lines = h.upto(b"\r\n> ").decode().split("\r\n")
    for cmd in BUILTINS.values():
        assert f"  {cmd.usage}" in lines
        h.send(f"HELP {cmd.name.lower()}")
        assert h.upto(b"\r\n> ") == f"{cmd.usage}\r\n> ".encode()
    c = greeted(relay.port)
    assert c.cmd("HELP")["msg"].split()[:8] == list(BUILTINS)
    assert c.cmd("AUTH", "x") == {"state": "ERROR", "msg": "Usage: AUTH <server_id> <key>",
                                  "code": "invalid_input"}


# --- abuse budgets (README "Abuse budgets") -------------------------------------------------------
def _revoked(why: str, human: bool = False) -> bytes:
    msg = f"Connection closed: {why}."
    if human:
        return f"ERROR: {msg}\r\n".encode()
    return json.dumps({"state": "ERROR", "msg": msg, "code": "unauthenticated"}).encode() + b"\r\n"


def _conn_of(relay: Relay, kind: str, who: str) -> Any:
    return wait_for(lambda: next(iter(relay.holders.get((kind, who), ())), None), 3, who)


def test_a_rotated_key_ends_every_connection_that_used_it_at_once(relay, api, client):
    a_id, a_key, _ = server_creds(api, "a")
    b_id, b_key, _ = server_creds(api, "b")
    one, two, other = authed(relay.port, a_id, a_key), authed(relay.port, a_id, a_key), \
        authed(relay.port, b_id, b_key)
    by_token = greeted(relay.port, "CLIENT")
    assert by_token.cmd("TOKEN", a_key)["state"] == "OK"
    assert client.post(f"/v1/servers/{a_id}/key", headers=api.admin).status_code == 200
    for c in (one, two, by_token):  # no command needed: the line comes unasked
        assert c.line() == _revoked("the server key was rotated")
        assert c.is_closed()
    assert other.cmd("HW")["msg"] == "Hello, world!"
    assert client.delete(f"/v1/servers/{b_id}", headers=api.admin).status_code == 204
    assert other.line() == _revoked("the server was deleted")
    assert other.is_closed()


def test_revoked_player_sessions_end_their_connections_at_once(relay, api, client):
    api.player("alice")
    telnet = greeted(relay.port, "HUMAN")
    telnet.send("LOGIN alice secret1")
    assert telnet.upto(b"> ").startswith(b"Logged in as alice.")
    web = api.login("alice")  # another session of alice's
    assert client.put("/v1/players/alice/password", json={"old": "secret1", "new": "secret2"},
                      headers=web).status_code == 200
    assert telnet.upto(b"\r\n") == _revoked("the password was changed", human=True)
    assert telnet.is_closed()
    # logout of one token ends the connections that used it, and only those
    token, other = api.login("alice", "secret2"), api.login("alice", "secret2")
    same, kept = greeted(relay.port, "CLIENT"), greeted(relay.port, "CLIENT")
    assert same.cmd("TOKEN", api.token(token))["state"] == "OK"
    assert kept.cmd("TOKEN", api.token(other))["state"] == "OK"
    assert client.delete("/v1/sessions/current", headers=token).status_code == 204
    assert same.line() == _revoked("the session was logged out")
    assert same.is_closed()
    assert kept.cmd("UNREAD")["data"] == {"unread": 0}
    assert client.delete("/v1/players/alice", headers=api.admin).status_code == 204
    assert kept.line() == _revoked("the account was deleted")
    assert kept.is_closed()


def test_a_player_logging_out_on_the_connection_keeps_it(relay, api):
    api.player("alice")
    c = greeted(relay.port, "CLIENT")
    assert c.cmd("LOGIN", "alice secret1")["state"] == "OK"
    assert c.cmd("LOGOUT") == {"state": "OK", "msg": "session.logout"}
    assert c.cmd("UNREAD")["code"] == "unauthenticated"  # anonymous now, still connected
    assert c.cmd("HW")["msg"] == "Hello, world!"


def test_rotation_over_http_ends_a_connection_on_another_relay_process(redis_server, api, client):
    server_id, key, _ = server_creds(api)
    proc, port = spawn(redis_server.url)
    try:
        c = authed(port, server_id, key)
        assert client.post(f"/v1/servers/{server_id}/key", headers=api.admin).status_code == 200
        assert c.line() == _revoked("the server key was rotated")
        assert c.is_closed()
    finally:
        proc.terminate()
        proc.wait(5)


def test_a_connection_without_mode_is_closed_after_the_handshake_timeout(start_relay):
    relay = start_relay(relay_handshake_timeout=1)
    moded = greeted(relay.port)
    c = Client(relay.port)
    c.line()
    c.sock.settimeout(0.2)
    deadline = time.monotonic() + 5
    while not c.buf and time.monotonic() < deadline:  # empty lines do not count
        c.sock.sendall(b"\r\n")
        try:
            c._fill()
        except TimeoutError:
            continue
    assert c.buf, "still open after 5 s with RELAY_HANDSHAKE_TIMEOUT=1"
    assert c.line() == b'{"state": "ERROR", "msg": "Handshake timeout."}\r\n'
    assert c.is_closed()
    assert moded.cmd("HW")["msg"] == "Hello, world!"  # MODE was sent in time


def test_empty_lines_do_not_keep_a_connection_alive(start_relay):
    relay = start_relay(relay_idle_timeout=1)
    c = greeted(relay.port)
    c.sock.settimeout(0.2)
    deadline = time.monotonic() + 6
    while not c.buf and time.monotonic() < deadline:
        c.sock.sendall(b"\r\n")
        try:
            c._fill()
        except TimeoutError:
            continue
    assert c.buf, "still open after 6 s of empty lines with RELAY_IDLE_TIMEOUT=1"
    assert c.line() == b'{"state": "ERROR", "msg": "Idle timeout."}\r\n'
    assert c.is_closed()


def test_servers_use_slots_of_their_own_at_most_n_per_key(start_relay, api):
    relay = start_relay(relay_max_clients=1, relay_connections_per_server=2)
    a_id, a_key, _ = server_creds(api, "a")
    first = authed(relay.port, a_id, a_key)  # took the one slot, then moved to its own
    anon = greeted(relay.port)  # the one slot again
    refused = Client(relay.port)
    assert refused.line() == b'{"state": "ERROR", "msg": "Server full."}\r\n'
    anon.close()
    wait_for(lambda: len(relay.conns) == 1, 3, "the slot back")
    second = authed(relay.port, a_id, a_key)
    anon = greeted(relay.port)  # three connections with RELAY_MAX_CLIENTS=1
    anon.close()
    wait_for(lambda: len(relay.conns) == 2, 3, "the slot back")
    third = greeted(relay.port, "SERVER")
    third.send(json.dumps({"cmd": "AUTH", "args": f"{a_id} {a_key}"}))
    assert json.loads(third.line()) == {
        "state": "ERROR", "msg": f"Too many connections for server {a_id} (max 2).",
        "code": "rate_limited"}
    assert third.is_closed()
    for c in (first, second):
        assert c.cmd("HW")["msg"] == "Hello, world!"


def test_a_reply_over_one_mib_is_too_large_and_never_sent(relay, api):
    a_id, a_key, _ = server_creds(api, "a")
    _fill_inbox(relay, a_id, 1000, "é" * 1000)  # message.read would answer ~6 MB
    c = authed(relay.port, a_id, a_key)
    c.send(json.dumps({"cmd": "message.read", "args": {"limit": 1000}, "id": "big"}))
    assert json.loads(c.line()) == {"state": "ERROR", "msg": p.REPLY_TOO_LARGE,
                                    "code": "too_large", "id": "big"}
    assert c.cmd("HW")["msg"] == "Hello, world!"
    h = greeted(relay.port, "HUMAN")
    h.send(f"TOKEN {a_key}")
    h.upto(b"> ")
    h.send("message.read 0 0 1000")
    assert h.upto(b"> ") == f"ERROR: {p.REPLY_TOO_LARGE}\r\n> ".encode()


def test_a_push_line_over_one_mib_is_never_sent(relay, api):
    a_id, a_key, _ = server_creds(api, "a")
    _fill_inbox(relay, a_id, 1, "x" * p.OUT_LINE_MAX)
    _fill_inbox(relay, a_id, 1, "small")
    c = authed(relay.port, a_id, a_key)
    assert c.cmd("RESUME", "0")["state"] == "OK"
    assert c.push()["data"]["body"] == "0 small"


def test_pushes_to_a_client_that_does_not_read_are_bounded(start_relay, api):
    relay = start_relay(relay_send_buffer_max=1024 * 1024)
    a_id, a_key, _ = server_creds(api, "a")
    slow = greeted(relay.port, "SERVER", rcvbuf=4096)
    assert slow.cmd("AUTH", f"{a_id} {a_key}")["state"] == "OK"
    conn = _conn_of(relay, "server", a_id)
    most = 0

    def push_some() -> int:
        nonlocal most
        for _ in range(20):
            _send(relay, "x", a_id, "é" * 1000)  # ~6 KB a push, never read
        most = max(most, conn.transport.get_write_buffer_size())
        return most
    # past the 256 KiB at which reading pauses, the connection is still kept ...
    wait_for(lambda: push_some() > 600 * 1024 and not conn.closed, 10, "600 KiB queued")
    # ... until RELAY_SEND_BUFFER_MAX: then it is closed (the server RESUMEs)
    wait_for(lambda: conn.closed or not push_some(), 10, "the slow reader closed")
    assert most <= 1024 * 1024
    assert slow.is_closed()
    assert _prompt_hw(relay.port) < 0.5


def test_a_replay_is_written_as_the_client_reads(relay, api):
    a_id, a_key, _ = server_creds(api, "a")
    _fill_inbox(relay, a_id, 1200, "é" * 1000)  # ~6 KB a line, ~7 MB in all
    c = greeted(relay.port, "SERVER", rcvbuf=4096)
    assert c.cmd("AUTH", f"{a_id} {a_key}")["state"] == "OK"
    conn = _conn_of(relay, "server", a_id)
    assert c.cmd("RESUME", "0")["state"] == "OK"  # then never read again
    size = conn.transport.get_write_buffer_size
    wait_for(lambda: size() > 16 * 1024, 10, "the replay waiting for the client")
    low = conn.transport.get_write_buffer_limits()[0]
    for _ in range(50):  # as it stands blocked: the low-water mark and one line, no batch
        assert size() <= low + 8 * 1024
        time.sleep(0.01)
    assert conn.replaying and not conn.closed


def test_a_session_evicted_by_a_newer_login_ends_its_connection(relay, api, config, r, clock):
    from wsgi import create_app

    api.player("alice")
    capped = create_app(dataclasses.replace(config, sessions_per_player_max=1), r,
                        clock=clock).test_client()
    c = greeted(relay.port, "CLIENT")
    assert c.cmd("LOGIN", "alice secret1")["state"] == "OK"
    assert capped.post("/v1/sessions", json={"name": "alice", "password": "secret1"}
                       ).status_code == 200
    assert c.line() == _revoked("the session was ended by a newer login (too many sessions)")
    assert c.is_closed()
