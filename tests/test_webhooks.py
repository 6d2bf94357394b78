"""Webhooks (docs/WEBHOOKS.md): the operations, the events their causes emit, and delivery.

Delivery goes to a tiny HTTP server in the test on 127.0.0.1 (so WEBHOOK_ALLOW_PRIVATE=1), first
through the job functions in-process, then through real worker processes: the signature, the
retry after a 500, the give-up after the retry window, and a dead endpoint (a socket that
accepts and never answers) that holds back neither the API nor another webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shared import events, keys
from shared.redis_conn import scan_keys
from shared.storage import webhooks
from tests.conftest import Workers, wait_for
from worker import jobs

ROOT = Path(__file__).resolve().parent.parent


# --- a receiver -----------------------------------------------------------------------------------
class Receiver:
    """An HTTP server on 127.0.0.1 recording every POST; ``plan[path]`` lists the statuses to
    answer in turn (then 200)."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.plan: dict[str, list[int]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append({"path": self.path, "headers": dict(self.headers),
                                  "body": body, "at": time.monotonic()})
                statuses = outer.plan.get(self.path) or []
                status = statuses.pop(0) if statuses else 200
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "4")
                self.end_headers()
                self.wfile.write(b"nope" if status >= 300 else b"okay")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def at(self, path: str) -> list[dict[str, Any]]:
        return [g for g in self.got if g["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class DeadEndpoint:
    """A socket that accepts connections and never answers; records when each one opened and
    when the client gave up (closed it)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/dead"
        self.opened: list[float] = []
        self.closed: list[float] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.opened.append(time.monotonic())
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            while conn.recv(65536):
                pass  # read the request, answer nothing
        self.closed.append(time.monotonic())

    def held(self) -> int:
        return len(self.opened) - len(self.closed)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture
def private_ok(redis_server: Any, r: Any) -> Any:
    """An app that may target 127.0.0.1 (the test's receivers)."""
    from tests.conftest import Clock, make_config
    from wsgi import create_app

    return create_app(make_config(redis_server.url, webhook_allow_private=1), r,
                      clock=Clock()).test_client()


def create(client: Any, api: Any, url: str, events_: list[str], **extra: Any) -> dict[str, Any]:
    resp = client.post("/v1/webhooks", json={"url": url, "events": events_, **extra},
                       headers=api.admin)
    assert resp.status_code == 201, resp.json
    return resp.json


def outbox(r: Any, tag: str) -> list[tuple[str, dict[str, Any]]]:
    return [(f["e"], json.loads(f["d"])) for _, f in r.xrange(keys.outbox(tag))]


def board(api: Any, name: str = "ctf", order: str = "desc", operator: str = "best") -> None:
    assert api.client.put(f"/v1/boards/{name}", json={"order": order, "operator": operator},
                          headers=api.admin).status_code == 201


def submit(api: Any, srv: dict[str, str], player: str, score: int, name: str = "ctf") -> Any:
    resp = api.client.post(f"/v1/boards/{name}/records", json={"player": player, "score": score},
                           headers=srv)
    assert resp.status_code == 200, resp.json
    return resp.json


def online(api: Any, *names: str) -> tuple[str, dict[str, str]]:
    """A live server with these players online on it."""
    sid, srv = api.server("Desert CTF")
    assert api.heartbeat(sid, srv, name="Desert CTF").status_code == 200
    for name in names:
        assert api.join(sid, srv, api.player(name)).status_code == 200
    return sid, srv


# --- the operations -------------------------------------------------------------------------------
def test_create_shows_a_generated_secret_once_and_list_never(client, api, r):
    made = create(client, api, "https://hooks.example.com/a", ["record.top", "record.top"])
    assert set(made) == {"id", "url", "events", "format", "created", "secret"}
    assert made["events"] == ["record.top"] and made["format"] == "json"
    assert len(made["secret"]) >= 32
    given = create(client, api, "https://hooks.example.com/b", ["server.online"],
                   format="discord", secret="my-own-secret-0123456789")
    assert "secret" not in given  # the admin's own secret is not echoed
    assert r.hget(keys.webhook(made["id"]), "secret") == made["secret"]  # HMAC needs it
    listed = client.get("/v1/webhooks", headers=api.admin).json["webhooks"]
    assert [h["id"] for h in listed] == [made["id"], given["id"]]
    assert listed[1] == {"id": given["id"], "url": "https://hooks.example.com/b",
                         "events": ["server.online"], "format": "discord",
                         "created": given["created"], "dropped": 0}
    assert "secret" not in json.dumps(listed)
    assert made["secret"] not in json.dumps(listed)

    # an idempotent replay answers the first result without the secret, and stores none
    headers = {**api.admin, "Idempotency-Key": "k1"}
    body = {"url": "https://hooks.example.com/c", "events": ["ban.created"]}
    first = client.post("/v1/webhooks", json=body, headers=headers)
    again = client.post("/v1/webhooks", json=body, headers=headers)
    assert "secret" in first.json and again.status_code == 201
    assert again.json == {k: v for k, v in first.json.items() if k != "secret"}
    assert first.json["secret"] not in json.dumps(
        [r.get(k) for k in scan_keys(r, "ssm:idem:*")])

    assert client.get(f"/v1/webhooks/{made['id']}/deliveries",
                      headers=api.admin).json == {"deliveries": []}
    assert client.delete(f"/v1/webhooks/{made['id']}", headers=api.admin).status_code == 204
    assert client.delete(f"/v1/webhooks/{made['id']}", headers=api.admin).status_code == 404
    assert client.get(f"/v1/webhooks/{made['id']}/deliveries",
                      headers=api.admin).status_code == 404
    assert r.exists(keys.webhook(made["id"])) == 0


@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://hooks.example.com/x", "events": ["record.top"]}, "url"),
    ({"url": "javascript:alert(1)", "events": ["record.top"]}, "url"),
    ({"url": "http://127.0.0.1:8080/x", "events": ["record.top"]}, "url"),
    ({"url": "http://localhost:8080/x", "events": ["record.top"]}, "url"),  # after DNS
    ({"url": "http://10.1.2.3/x", "events": ["record.top"]}, "url"),
    ({"url": "http://192.168.0.10/x", "events": ["record.top"]}, "url"),
    ({"url": "http://169.254.169.254/latest/meta-data", "events": ["record.top"]}, "url"),
    ({"url": "http://[::1]/x", "events": ["record.top"]}, "url"),
    ({"url": "http://[::ffff:127.0.0.1]/x", "events": ["record.top"]}, "url"),
    ({"url": "http://[fe80::1]/x", "events": ["record.top"]}, "url"),
    # IPv6 forms that carry a refused IPv4 address (6to4, NAT64, compatible), site-local, and
    # the IETF protocol assignments 192.0.0.0/24
    ({"url": "http://[2002:7f00:1::1]/x", "events": ["record.top"]}, "url"),
    ({"url": "http://[2002:a9fe:a9fe::1]/x", "events": ["record.top"]}, "url"),
    ({"url": "http://[2002:a00:1::1]/x", "events": ["record.top"]}, "url"),
    ({"url": "http://[64:ff9b::a9fe:a9fe]/x", "events": ["record.top"]}, "url"),
    ({"url": "http://[::169.254.169.254]/x", "events": ["record.top"]}, "url"),
    ({"url": "http://[fec0::1]/x", "events": ["record.top"]}, "url"),
    ({"url": "http://192.0.0.8/x", "events": ["record.top"]}, "url"),
    ({"url": "https://user:pw@hooks.example.com/x", "events": ["record.top"]}, "url"),
    ({"url": "https://hooks.example.com/x", "events": []}, "events"),
    ({"url": "https://hooks.example.com/x", "events": ["record.new"]}, "events[0]"),
    ({"url": "https://hooks.example.com/x", "events": ["record.top"], "format": "xml"},
     "format"),
    ({"url": "https://hooks.example.com/x", "events": ["record.top"], "secret": "short"},
     "secret"),
])
def test_create_refuses_bad_input_naming_the_field(client, api, body, field):
    resp = client.post("/v1/webhooks", json=body, headers=api.admin)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["code"] == "invalid_input"
    assert resp.json["error"]["message"].startswith(f"{field}:")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://[2002:7f00:1::1]/x",
                                 "http://[fec0::1]/x", "http://192.0.0.8/x"])
def test_private_addresses_are_allowed_with_the_setting(private_ok, api, url):
    resp = private_ok.post("/v1/webhooks", json={"url": url, "events": ["record.top"]},
                           headers=api.admin)
    assert resp.status_code == 201


def test_a_6to4_address_of_a_public_ipv4_address_is_allowed(client, api):
    resp = client.post("/v1/webhooks", json={"url": "http://[2002:808:808::1]/x",
                                             "events": ["record.top"]}, headers=api.admin)
    assert resp.status_code == 201, resp.json


def test_only_the_admin_manages_webhooks(client, api):
    _, srv = api.server()
    body = {"url": "https://hooks.example.com/x", "events": ["record.top"]}
    assert client.post("/v1/webhooks", json=body).status_code == 401
    assert client.post("/v1/webhooks", json=body, headers=srv).status_code == 403
    assert client.get("/v1/webhooks", headers=srv).status_code == 403


# --- events, written with their causes ------------------------------------------------------------
def test_record_top_is_emitted_for_a_new_number_one_only(api, r):
    _, srv = online(api, "alice", "bob", "carol")
    board(api)
    submit(api, srv, "alice", 10)   # first record: a new #1
    submit(api, srv, "bob", 5)      # #2: nothing
    submit(api, srv, "alice", 12)   # alice improves her own #1: not a new #1
    submit(api, srv, "carol", 12)   # ties rank after the earlier record: #2
    submit(api, srv, "bob", 20)     # bob takes #1 from alice
    got = outbox(r, "b:ctf")
    assert [e for e, _ in got] == ["record.top", "record.top"]
    first, second = (d for _, d in got)
    assert first == {"board": "ctf", "rank": 1, "player": "alice", "score": 10, "meta": None,
                     "server": first["server"], "at": first["at"], "previous": None}
    assert second["player"] == "bob" and second["score"] == 20
    assert second["previous"] == {"player": "alice", "score": 12}


def test_record_top_keeps_big_scores_exact(api, r):
    _, srv = online(api, "alice", "bob")
    board(api, "big", operator="set")
    submit(api, srv, "alice", 9007199254740990, "big")
    submit(api, srv, "bob", 9007199254740991, "big")
    (_, a), (_, b) = outbox(r, "b:big")
    assert (a["score"], b["score"], b["previous"]["score"]) == (
        9007199254740990, 9007199254740991, 9007199254740990)


def test_server_online_and_offline_pair_up(api, r, monkeypatch, redis_server):
    sid, srv = api.server("Dying")
    assert api.heartbeat(sid, srv, name="Dying").status_code == 200
    assert api.heartbeat(sid, srv, name="Dying").status_code == 200  # still live: nothing
    got = outbox(r, "status")
    assert [e for e, _ in got] == ["server.online"]
    assert got[0][1]["id"] == sid and got[0][1]["name"] == "Dying"
    assert got[0][1]["player_count"] == 0 and got[0][1]["port"] == 28763

    r.zadd(keys.status_live(), {sid: 1000})  # its heartbeat lapsed long ago
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    jobs._env.cache_clear()
    try:
        assert jobs.sweep_status() == [sid]
    finally:
        jobs._env.cache_clear()
    assert api.heartbeat(sid, srv, name="Dying").status_code == 200  # back: online again
    got = outbox(r, "status")
    assert [e for e, _ in got] == ["server.online", "server.offline", "server.online"]
    assert got[1][1] == {"id": sid, "name": "Dying", "last_heartbeat": 1}


def test_ban_created_and_lifted_are_emitted_once_each(api, r, clock):
    sid, srv = api.server("One")
    api.player("Alice")
    made = api.client.post("/v1/bans", json={"player": "alice", "reason": "wall*hack",
                                              "duration": 3600}, headers=api.admin)
    assert made.status_code == 201, made.json
    ban = made.json
    assert outbox(r, "bans") == [("ban.created", ban)]  # the ban as ban.create answers it

    local = api.client.post("/v1/bans", json={"ip": "203.0.113.7", "reason": "spam"},
                            headers=srv).json
    clock.advance(60)
    before = int(clock())
    lift = api.client.delete(f"/v1/bans/{ban['id']}", query_string={"reason": "appeal ok"},
                             headers=api.admin)
    after = int(clock())
    assert lift.status_code == 204
    assert api.client.delete(f"/v1/bans/{ban['id']}", headers=api.admin).status_code == 204
    assert api.client.delete(f"/v1/bans/{ban['id']}", headers=srv).status_code == 403
    assert api.client.delete("/v1/bans/zzzzzzzzzzzz", headers=api.admin).status_code == 404
    assert api.client.delete(f"/v1/bans/{local['id']}", headers=srv).status_code == 204
    got = outbox(r, "bans")
    assert [e for e, _ in got] == ["ban.created", "ban.created", "ban.lifted", "ban.lifted"]
    assert got[1][1] == local and local["scope"] == sid and local["by"] == sid
    lifted_at = got[2][1]["lifted_at"]
    assert got[2][1] == {**ban, "lifted_at": lifted_at, "lifted_by": "admin",
                         "lift_reason": "appeal ok"}
    assert before <= lifted_at <= after  # the time of the lift, read on the app's clock
    assert got[3][1] == {**local, "lifted_at": got[3][1]["lifted_at"], "lifted_by": sid,
                         "lift_reason": None}
    assert "bans" in events.FIXED_TAGS  # the worker drains this outbox


def test_a_ban_whose_id_was_taken_emits_nothing(r):
    from shared.storage import bans

    ban = bans.new_ban("b7n2q4x8r1zc", None, bans.network("203.0.113.7"), "spam", "global",
                       "admin", 1717000000, None)
    assert bans.store(r, ban, bans.network("203.0.113.7"), 1717000000000) is True
    taken = {**ban, "reason": "other"}
    assert bans.store(r, taken, bans.network("203.0.113.7"), 1717000000000) is False
    assert outbox(r, "bans") == [("ban.created", ban)]


def test_emit_helper_writes_one_entry_in_the_callers_transaction(r):
    tx = r.pipeline()
    tx.set("ssm:{bans}:x", 1)
    events.emit(tx, "bans", "ban.created", {"id": "b1", "player": "alice"})
    tx.execute()
    assert outbox(r, "bans") == [("ban.created", {"id": "b1", "player": "alice"})]
    with pytest.raises(AssertionError):
        events.emit(r.pipeline(), "bans", "ban.maybe", {})


# --- jobs in-process ------------------------------------------------------------------------------
@pytest.fixture
def job_env(redis_server: Any, r: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in [k for k in os.environ if k.startswith(("SSM_", "WEBHOOK_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "2")
    jobs._env.cache_clear()
    yield monkeypatch
    jobs._env.cache_clear()


def _hook(r: Any, url: str, fmt: str = "json", evs: tuple[str, ...] = ("record.top",),
          created_ms: int = 0, hook_id: str = "h1") -> str:
    webhooks.create(r, hook_id, url, list(evs), fmt, "s3cret-s3cret-s3cret", created_ms)
    return hook_id


def test_delivery_is_signed_with_the_webhooks_secret(job_env, r, receiver):
    hid = _hook(r, receiver.base + "/in")
    data = {"board": "ctf", "player": "alice", "score": 10}
    assert jobs.deliver_webhook(hid, "b:ctf/1-0", "record.top", 1717000000.25,
                                json.dumps(data)) == "delivered"
    (got,) = receiver.at("/in")
    assert json.loads(got["body"]) == {"event": "record.top", "at": 1717000000.25, "data": data}
    stamp = got["headers"]["X-SSM-Timestamp"]
    assert stamp.isdigit() and abs(int(stamp) - time.time()) < 60
    mac = hmac.new(b"s3cret-s3cret-s3cret", stamp.encode() + b"." + got["body"],
                   hashlib.sha256).hexdigest()
    assert got["headers"]["X-SSM-Signature"] == f"sha256={mac}"
    body_only = hmac.new(b"s3cret-s3cret-s3cret", got["body"], hashlib.sha256).hexdigest()
    assert got["headers"]["X-SSM-Signature"] != f"sha256={body_only}"  # replayable
    assert got["headers"]["X-SSM-Event-Id"] == "b:ctf/1-0"
    assert got["headers"]["Content-Type"] == "application/json"
    (attempt,) = webhooks.deliveries(r, hid)
    assert attempt["status"] == 200 and attempt["error"] is None
    assert attempt["outcome"] == "delivered" and attempt["attempt"] == 1


def test_discord_format_sends_one_readable_line(job_env, r, receiver):
    hid = _hook(r, receiver.base + "/discord", fmt="discord")
    data = {"board": "ctf", "player": "bob_x", "score": 20,
            "previous": {"player": "alice", "score": 12}}
    assert jobs.deliver_webhook(hid, "e", "record.top", 1.0, json.dumps(data)) == "delivered"
    body = json.loads(receiver.at("/discord")[0]["body"])
    assert body == {"content": "New #1 on ctf: bob\\_x with 20 (was alice with 12)",
                    "allowed_mentions": {"parse": []}}


def test_every_event_has_its_discord_line():
    from shared.delivery import DISCORD_LINES

    assert sorted(DISCORD_LINES) == sorted(events.EVENTS)


def test_discord_lines_for_bans_escape_user_text():
    from shared.delivery import discord_line

    ban = {"id": "b7n2q4x8r1zc", "player": "bob_x", "ip": None, "reason": "*wall* @everyone",
           "scope": "global", "by": "admin", "at": 1717000000, "expires_at": 1717243200}
    assert discord_line("ban.created", ban) == \
        "Banned bob\\_x: \\*wall\\* @everyone until 2024-06-01 12:00 UTC"
    local = {**ban, "player": None, "ip": "203.0.113.0/24", "scope": "s1", "expires_at": None}
    assert discord_line("ban.created", local) == \
        "Banned 203.0.113.0/24 on server s1: \\*wall\\* @everyone (permanent)"
    lifted = {**ban, "lifted_at": 1717000100, "lifted_by": "admin", "lift_reason": "appeal_ok"}
    assert discord_line("ban.lifted", lifted) == \
        "Ban lifted: bob\\_x (by admin: appeal\\_ok)"
    assert discord_line("ban.lifted", {**local, "lifted_by": "s1", "lift_reason": None}) == \
        "Ban lifted: 203.0.113.0/24 on server s1 (by s1)"


def test_a_ban_reaches_a_subscribed_webhook_through_the_jobs(job_env, r, api, receiver,
                                                             queue_url):
    import redis
    from rq import Queue

    hid = _hook(r, receiver.base + "/bans", evs=("ban.created", "ban.lifted"))
    api.player("Alice")
    ban = api.client.post("/v1/bans", json={"player": "alice", "reason": "wallhack"},
                          headers=api.admin).json
    assert jobs.webhook_drains_due(r) == ["bans"]
    assert jobs.drain_outbox("bans") == 1
    queue = Queue(jobs.WEBHOOKS_QUEUE, connection=redis.Redis.from_url(queue_url))
    (job,) = [queue.fetch_job(i) for i in queue.job_ids]
    assert jobs.deliver_webhook(*job.args) == "delivered"
    (got,) = receiver.at("/bans")
    body = json.loads(got["body"])
    assert body["event"] == "ban.created" and body["data"] == ban
    assert got["headers"]["X-SSM-Event"] == "ban.created"
    assert got["headers"]["X-SSM-Event-Id"].startswith("bans/")
    assert webhooks.deliveries(r, hid)[0]["outcome"] == "delivered"


def test_season_ended_reaches_a_subscribed_webhook_through_the_jobs(job_env, r, api, receiver,
                                                                   queue_url, clock):
    import redis
    from rq import Queue

    from shared.storage import seasons

    hid = _hook(r, receiver.base + "/seasons", evs=("season.ended",), fmt="discord")
    clock.advance(-3 * 86400)  # the board's first day was three days ago
    sid, srv = api.server("one")
    assert api.heartbeat(sid, srv).status_code == 200
    assert api.join(sid, srv, api.player("alice")).status_code == 200
    assert api.client.put("/v1/boards/ctf.daily", headers=api.admin, json={
        "order": "desc", "operator": "best", "reset": "daily"}).status_code == 201
    assert api.client.post("/v1/boards/ctf.daily/records", headers=srv,
                           json={"player": "alice", "score": 12}).status_code == 200
    assert seasons.archive(r, "ctf.daily", time.time(), 24) == 1  # days 1 and 2: no records
    assert jobs.drain_outbox("b:ctf.daily") == 1  # record.top has no subscriber
    queue = Queue(jobs.WEBHOOKS_QUEUE, connection=redis.Redis.from_url(queue_url))
    (job,) = [queue.fetch_job(i) for i in queue.job_ids]
    assert jobs.deliver_webhook(*job.args) == "delivered"
    (got,) = receiver.at("/seasons")
    assert json.loads(got["body"])["content"] == "Season 0 of ctf.daily ended: 1. alice 12"
    assert got["headers"]["X-SSM-Event"] == "season.ended"
    assert webhooks.deliveries(r, hid)[0]["outcome"] == "delivered"


def test_delivery_refuses_a_private_address_after_dns(job_env, r, receiver):
    job_env.setenv("WEBHOOK_ALLOW_PRIVATE", "0")
    jobs._env.cache_clear()
    hid = _hook(r, receiver.base.replace("127.0.0.1", "localhost") + "/in")
    assert jobs.deliver_webhook(hid, "e", "record.top", 1.0, "{}") == "dropped"
    assert receiver.got == []
    (attempt,) = webhooks.deliveries(r, hid)
    assert attempt["status"] is None and "refused" in attempt["error"]
    assert "localhost (127.0.0.1)" in attempt["error"]


def test_redirects_are_not_followed(job_env, r, receiver):
    hid = _hook(r, receiver.base + "/moved")
    receiver.plan["/moved"] = [302]
    assert jobs.deliver_webhook(hid, "e", "record.top", 1.0, "{}") == "dropped"
    assert len(receiver.got) == 1  # the Location (another port) was never asked
    (attempt,) = webhooks.deliveries(r, hid)
    assert attempt["status"] == 302 and "redirect not followed" in attempt["error"]


def test_a_deleted_webhook_gets_nothing(job_env, r, receiver):
    hid = _hook(r, receiver.base + "/in")
    webhooks.delete(r, hid)
    assert jobs.deliver_webhook(hid, "e", "record.top", 1.0, "{}") == "gone"
    assert receiver.got == [] and not r.exists(keys.webhook_deliveries(hid))


def test_worker_metrics_show_delivery_counts_from_redis(job_env, r, receiver):
    from shared import metrics

    bad, good = _hook(r, receiver.base + "/bad"), _hook(r, receiver.base + "/in", hook_id="h2")
    receiver.plan["/bad"] = [500]
    assert jobs.deliver_webhook(bad, "e1", "record.top", 1.0, "{}") == "dropped"
    assert jobs.deliver_webhook(good, "e1", "record.top", 1.0, "{}") == "delivered"
    (family,) = metrics._Webhooks(r).collect()
    assert family.name == "ssm_webhook_deliveries"
    assert {s.labels["outcome"]: s.value for s in family.samples} == {
        "delivered": 1, "failed": 0, "dropped": 1}


def test_retry_intervals_span_the_window():
    assert jobs.retry_intervals(3600) == [10, 20, 40, 80, 160, 320, 640, 900, 900, 900]
    assert sum(jobs.retry_intervals(3600)) >= 3600
    assert jobs.retry_intervals(2) == [2] and jobs.retry_intervals(0) == []


def test_drain_fans_out_to_subscribers_once_and_moves_the_cursor(job_env, r, queue_url):
    import redis
    from rq import Queue

    tx = r.pipeline()
    events.emit(tx, "status", "server.online", {"id": "s-before"})
    tx.execute()
    time.sleep(0.01)
    now = int(time.time() * 1000)
    _hook(r, "http://127.0.0.1:9/a", evs=("server.online",), created_ms=now, hook_id="a")
    _hook(r, "http://127.0.0.1:9/b", evs=("record.top",), created_ms=now, hook_id="b")
    time.sleep(0.01)
    for sid in ("s1", "s2"):
        tx = r.pipeline()
        events.emit(tx, "status", "server.online", {"id": sid})
        tx.execute()
    assert jobs.webhook_drains_due(r) == ["status"]
    assert jobs.drain_outbox("status") == 2  # s1, s2 to webhook a; nothing before it existed
    queue = Queue(jobs.WEBHOOKS_QUEUE, connection=redis.Redis.from_url(queue_url))
    queued = [queue.fetch_job(i) for i in queue.job_ids]
    assert sorted(json.loads(j.args[4])["id"] for j in queued) == ["s1", "s2"]
    assert {j.args[0] for j in queued} == {"a"}
    assert queued[0].retries_left == len(jobs.retry_intervals(3600))
    assert jobs.webhook_drains_due(r) == []
    r.delete(keys.outbox_cursor("status"))  # a drain that died before moving the cursor
    assert jobs.drain_outbox("status") == 0  # its jobs exist: nothing is queued twice
    assert len(queue.job_ids) == 2


def test_no_webhook_means_no_drain(job_env, r):
    tx = r.pipeline()
    events.emit(tx, "status", "server.online", {"id": "s1"})
    tx.execute()
    assert jobs.webhook_drains_due(r) == []


# --- real workers ---------------------------------------------------------------------------------
@pytest.fixture
def workers(redis_server: Any, r: Any, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(redis_server.url, tmp_path, drop=("SSM_", "WEBHOOK_"),
                WEBHOOK_ALLOW_PRIVATE="1")
    yield w
    w.stop()


def deliveries(client: Any, api: Any, hook_id: str) -> list[dict[str, Any]]:
    resp = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=api.admin)
    assert resp.status_code == 200
    return resp.json["deliveries"]


def _webhook_jobs_left(queue_url: str) -> int:
    """Webhook jobs that could still run: queued, running, or waiting for a retry."""
    import redis
    from rq import Queue
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    conn = redis.Redis.from_url(queue_url)
    queue = Queue(jobs.WEBHOOKS_QUEUE, connection=conn)
    left = (queue.count + ScheduledJobRegistry(queue=queue).count
            + StartedJobRegistry(queue=queue).count)
    conn.close()
    return left


def test_worker_retries_after_a_500_and_drops_after_the_window(private_ok, api, r, workers,
                                                              receiver, queue_url):
    client = private_ok
    flaky = create(client, api, receiver.base + "/flaky", ["record.top"])
    broken = create(client, api, receiver.base + "/broken", ["record.top"])
    receiver.plan["/flaky"] = [500]
    receiver.plan["/broken"] = [500] * 100
    _, srv = online(api, "alice")
    board(api)
    workers.start(WEBHOOK_RETRY_WINDOW_SECONDS="2")
    submit(api, srv, "alice", 10)

    wait_for(lambda: len(receiver.at("/flaky")) == 2, 30, "the retry after a 500")
    first, second = receiver.at("/flaky")
    assert first["body"] == second["body"]
    assert first["headers"]["X-SSM-Event-Id"] == second["headers"]["X-SSM-Event-Id"]
    signed = second["headers"]["X-SSM-Timestamp"].encode() + b"." + second["body"]
    mac = hmac.new(flaky["secret"].encode(), signed, hashlib.sha256).hexdigest()
    assert second["headers"]["X-SSM-Signature"] == f"sha256={mac}"
    got = wait_for(lambda: (lambda d: d if len(d) == 2 else None)(
        deliveries(client, api, flaky["id"])), 10, "two attempts logged")
    assert [(d["attempt"], d["status"], d["outcome"]) for d in got] == [
        (2, 200, "delivered"), (1, 500, "failed")]
    assert got[1]["error"] == "HTTP 500: nope"

    # the window (2 s: one retry) passes with every attempt failing: dropped and counted
    got = wait_for(lambda: (lambda d: d if d and d[0]["outcome"] == "dropped" else None)(
        deliveries(client, api, broken["id"])), 30, "the give-up")
    assert [(d["attempt"], d["outcome"]) for d in got] == [(2, "dropped"), (1, "failed")]
    assert len(receiver.at("/broken")) == 2
    listed = {h["id"]: h for h in client.get("/v1/webhooks", headers=api.admin).json["webhooks"]}
    assert listed[broken["id"]]["dropped"] == 1 and listed[flaky["id"]]["dropped"] == 0
    assert webhooks.counts(r) == {"delivered": 1, "failed": 2, "dropped": 1}
    wait_for(lambda: _webhook_jobs_left(queue_url) == 0, 15, "no webhook job left to run")
    assert len(receiver.at("/broken")) == 2  # given up: never tried again


def test_dead_endpoint_slows_neither_the_api_nor_other_webhooks(private_ok, api, r, workers,
                                                                receiver):
    client = private_ok
    dead_end = DeadEndpoint()
    try:
        dead = create(client, api, dead_end.url, ["record.top", "server.online"])
        live = create(client, api, receiver.base + "/live", ["record.top", "server.online"])
        _, srv = online(api, "alice", "bob")  # (before the worker: its server.online is sent)
        board(api)
        workers.start(WEBHOOK_TIMEOUT_SECONDS="10", WEBHOOK_RETRY_WINDOW_SECONDS="60")
        wait_for(lambda: dead_end.held() == 1, 20, "the worker waiting on the dead endpoint")
        # while a delivery waits on the dead endpoint, the live webhook gets its event...
        wait_for(lambda: receiver.at("/live"), 10, "the live webhook's delivery")
        wait_for(lambda: time.monotonic() - dead_end.opened[0] > 1.5, 5, "a suspect endpoint")
        assert dead_end.held() == 1
        # ... and the API answers: each write emits its event without waiting for anyone
        for i in range(5):
            submit(api, srv, "alice" if i % 2 else "bob", 100 + i)
            assert dead_end.held() == 1
        # the five new #1s reach the live webhook while the first attempt still waits on the
        # dead one (its other events are not tried while it leaves one unanswered)
        wait_for(lambda: len(receiver.at("/live")) == 6, 8, "the five new #1s, live")
        assert dead_end.held() == 1 and dead_end.closed == [] and len(dead_end.opened) == 1
        # the dead endpoint's attempt ends at the timeout, logged as a failure
        wait_for(lambda: dead_end.closed, 15, "the timeout")
        got = wait_for(lambda: deliveries(client, api, dead["id"]), 5, "the failed attempt")
        assert got[0]["outcome"] == "failed" and got[0]["status"] is None
        assert got[0]["error"] == "timed out after 10 s"
        assert 9500 <= got[0]["ms"] <= 12000
        # after its failure it is left alone until its retry: no worker is held meanwhile
        submit(api, srv, "alice", 1000)
        wait_for(lambda: len(receiver.at("/live")) == 7, 10, "a later event, live")
        assert dead_end.held() == 0 and len(dead_end.opened) == 1
        # the worker logs an attempt once its POST answered, a moment after the receiver saw it
        logged = wait_for(lambda: (got := deliveries(client, api, live["id"])) and len(got) == 7
                          and got, 10, "the seventh delivery logged")
        assert [d["outcome"] for d in logged] == ["delivered"] * 7
    finally:
        dead_end.close()
