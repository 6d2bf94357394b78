"""Workers (worker/jobs.py, worker/main.py) against the real Redis with REAL worker processes.

Data is made through the HTTP API (mail.send, presence.join, status.update) with the Flask test
client; the workers are ``python -m shared.worker`` subprocesses pointed at the test Redis.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from rq.job import Job

from shared import keys
from shared.redis_conn import is_cluster
from shared.storage import messages
from tests import conftest
from worker import jobs

ROOT = Path(__file__).resolve().parent.parent


class Workers(conftest.Workers):
    """Worker processes with a short sweep period, STATUS_TTL ``ttl`` and a job pause."""

    def start(self, ttl: int = 60, pause_ms: int = 0,  # type: ignore[override]
              *args: str) -> subprocess.Popen:
        return super().start(*args, STATUS_TTL=str(ttl), STATUS_SWEEP_SECONDS="1",
                             SSM_TEST_JOB_PAUSE_MS=str(pause_ms))

    def stop(self, wait: float = 10) -> None:
        super().stop(wait)


@pytest.fixture
def workers(redis_server: Any, r: Any, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(redis_server.url, tmp_path)
    yield w
    w.stop()


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    return conftest.wait_for(check, timeout, what)


def inbox(r: Any, server_id: str, event: str | None = None) -> list[dict[str, Any]]:
    """A server's inbox as message.read returns it (optionally one event only)."""
    return [messages.entry(i, f) for i, f in messages.read(r, server_id, "0", 1000)
            if event is None or messages.event(f) == event]


def live_server(api: Any, name: str) -> tuple[str, dict[str, str]]:
    sid, headers = api.server(name)
    assert api.heartbeat(sid, headers, name=name).status_code == 200
    return sid, headers


def send_mail(client: Any, sender: dict[str, str], to: str, subject: str = "hi") -> str:
    resp = client.post("/v1/mail", json={"to": to, "subject": subject, "body": "hello"},
                       headers=sender)
    assert resp.status_code == 201, resp.json
    return resp.json["id"]


def queue_of(r: Any) -> Any:
    """The Redis holding RQ's keys: the queue Redis on a cluster, else ``r`` itself."""
    from tests.conftest import SERVERS

    return SERVERS.queue.client() if SERVERS.queue is not None and is_cluster(r) else r


def idle(r: Any) -> bool:
    """No mail job queued, scheduled or running."""
    q = queue_of(r)
    return not any(q.exists(k) for k in ("rq:queue:mail", "rq:queue:mail:intermediate",
                                         "rq:scheduled:mail", "rq:wip:mail"))


def settled(r: Any) -> bool:
    """No mail job left and nothing in the mail outbox: no job and no outbox sweep can send
    another notice."""
    return idle(r) and not r.zcard(keys.mail_outbox())


def horse_of(worker: subprocess.Popen) -> psutil.Process | None:
    """The forking Worker's work-horse: the child that made itself a process group leader."""
    for child in psutil.Process(worker.pid).children():
        try:
            if os.getpgid(child.pid) == child.pid:
                return child
        except ProcessLookupError:
            pass
    return None


# --- mail notices -----------------------------------------------------------------------------
def test_mail_notice_reaches_recipients_server_once(api, client, r, workers):
    sid, srv = live_server(api, "One")
    other, other_h = live_server(api, "Two")
    alice, bob = api.player("Alice"), api.player("bob")
    assert api.join(sid, srv, alice).status_code == 200
    workers.start()
    mail_id = send_mail(client, bob, "alice", subject="gg")
    got = wait_for(lambda: client.get("/v1/messages", headers=srv).json["messages"],
                   what="mail notice over GET /v1/messages")
    assert len(got) == 1
    notice = got[0]
    assert notice == {"id": notice["id"], "type": "mail", "player": "Alice", "mail_id": mail_id,
                      "from": "bob", "subject": "gg", "unread": 1, "to": sid,
                      "at": notice["at"], "body": "New mail from bob: gg"}
    assert abs(notice["at"] - time.time()) < 10
    wait_for(lambda: settled(r), what="mail queue drained, outbox empty")
    assert len(inbox(r, sid)) == 1 and inbox(r, other) == []
    assert r.sismember(keys.mail_notified("alice"), mail_id)


def test_pending_notice_on_join_and_no_repeat(api, client, r, workers):
    sid, srv = live_server(api, "One")
    alice, bob = api.player("Alice"), api.player("bob")
    workers.start()
    first = send_mail(client, bob, "alice", subject="one")
    newest = send_mail(client, bob, "alice", subject="two")
    wait_for(lambda: idle(r), what="offline notices consumed")
    assert inbox(r, sid) == []  # offline: nothing sent, nothing lost
    assert api.join(sid, srv, alice).status_code == 200
    got = wait_for(lambda: inbox(r, sid, "mail"), what="pending notice")
    wait_for(lambda: settled(r), what="pending job done, outbox empty")
    assert len(inbox(r, sid, "mail")) == 1
    assert {k: got[0][k] for k in ("type", "pending", "player", "unread", "mail_id", "from",
                                   "subject", "to")} == {
        "type": "mail", "pending": True, "player": "Alice", "unread": 2, "mail_id": newest,
        "from": "bob", "subject": "two", "to": sid}
    assert r.smembers(keys.mail_notified("alice")) == {first, newest}
    third = send_mail(client, bob, "alice", subject="three")  # online now: a live notice
    wait_for(lambda: len(inbox(r, sid, "mail")) == 2, what="live notice")
    assert inbox(r, sid, "mail")[-1]["mail_id"] == third
    assert inbox(r, sid, "mail")[-1]["unread"] == 3


def test_notice_skips_mail_read_or_deleted_before_the_job(api, client, r, workers):
    sid, srv = live_server(api, "One")
    alice, bob = api.player("alice"), api.player("bob")
    api.join(sid, srv, alice)
    read_id = send_mail(client, bob, "alice")
    gone_id = send_mail(client, bob, "alice")
    assert client.get(f"/v1/mail/{read_id}", headers=alice).status_code == 200
    assert client.delete(f"/v1/mail/{gone_id}", headers=alice).status_code == 204
    workers.start()
    wait_for(lambda: idle(r), what="jobs done")
    assert inbox(r, sid) == []


def test_mail_sent_while_no_worker_runs_is_all_notified_once(api, client, r, workers):
    sid, srv = live_server(api, "One")
    alice, bob = api.player("alice"), api.player("bob")
    api.join(sid, srv, alice)
    sent = [send_mail(client, bob, "alice", subject=f"s{i}") for i in range(20)]
    assert r.zcard(keys.mailbox_unread("alice")) == 20 and inbox(r, sid) == []
    workers.start()
    workers.start()
    wait_for(lambda: len(inbox(r, sid)) >= 20, what="20 notices")
    wait_for(lambda: settled(r), what="jobs done, outbox empty")
    assert sorted(m["mail_id"] for m in inbox(r, sid)) == sorted(sent)


# --- SIGKILL mid-job ----------------------------------------------------------------------------
@pytest.mark.parametrize("victim, when", [("horse", "before_write"), ("horse", "after_write"),
                                          ("worker", "before_write")])
def test_sigkill_mid_job_loses_nothing_and_notifies_once(api, client, r, workers, victim, when):
    """A killed horse's job is retried (the retry finds the mark when the write was done); a
    killed main worker leaves its horse (own process group) to finish the job."""
    sid, srv = live_server(api, "One")
    alice, bob = api.player("alice"), api.player("bob")
    api.join(sid, srv, alice)
    # the mail queue's own worker process (what the supervisor runs), so its horse is its child;
    # the job pauses before and after its one script
    worker = workers.start(60, 1200, "--queue", "mail")
    mail_id = send_mail(client, bob, "alice")
    job_id = jobs.notice_job_id("alice", mail_id)
    horse = wait_for(lambda: horse_of(worker), what="work horse")
    if when == "after_write":
        wait_for(lambda: inbox(r, sid), what="notice written")
    else:
        assert inbox(r, sid) == []
    (horse if victim == "horse" else psutil.Process(worker.pid)).send_signal(signal.SIGKILL)
    wait_for(lambda: not queue_of(r).exists(Job.key_for(job_id)), timeout=15,
             what="job finished")
    if victim == "horse":
        assert not horse.is_running()  # it really died; the job ran again
    assert [m["mail_id"] for m in inbox(r, sid)] == [mail_id]
    assert r.hget(keys.mail("alice", mail_id), "id") == mail_id
    q = queue_of(r)
    assert not q.exists("rq:failed:mail") or q.zcard("rq:failed:mail") == 0


# --- status expiry ------------------------------------------------------------------------------
def test_sweep_expires_dead_server_once_with_two_workers(api, client, r, workers):
    dead, dead_h = live_server(api, "Dying")
    b, b_h = live_server(api, "Bee")
    c, c_h = live_server(api, "Sea")
    silent, _ = api.server("Never")  # registered, never live: gets nothing
    alice, bob = api.player("Alice"), api.player("bob")
    assert api.join(dead, dead_h, alice).status_code == 200
    assert api.join(b, b_h, bob).status_code == 200
    r.sadd(keys.server_players(dead), "bob")  # stale entry: bob's account names b, not dead
    workers.start(ttl=2)
    workers.start(ttl=2)
    started = time.monotonic()
    while r.zscore(keys.status_live(), dead) is not None:
        # STATUS_TTL + a sweep is ~3 s; the bound only keeps a broken sweep from hanging
        assert time.monotonic() - started < 30, "not swept"
        api.heartbeat(b, b_h, name="Bee")
        api.heartbeat(c, c_h, name="Sea")
        time.sleep(0.2)
    assert r.hget(keys.player("alice"), "server") is None
    assert r.hget(keys.player("bob"), "server") == b
    assert not r.exists(keys.server_players(dead))
    assert not r.hexists(keys.status_data(), dead)
    assert client.get("/v1/players/Alice").json["online"] is False
    for _ in range(8):  # more sweeps by both workers: still exactly one notice each
        api.heartbeat(b, b_h, name="Bee")
        api.heartbeat(c, c_h, name="Sea")
        time.sleep(0.2)
    for sid in (b, c):
        got = inbox(r, sid, "server_offline")
        assert len(got) == 1, got
        assert {k: got[0][k] for k in ("type", "from", "to", "server", "name")} == {
            "type": "server_offline", "from": "ssm", "to": sid, "server": dead, "name": "Dying"}
    assert inbox(r, silent) == [] and inbox(r, dead) == []


# --- jobs called in-process (edge cases, trimming) -----------------------------------------------
@pytest.fixture
def job_env(redis_server: Any, r: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in [k for k in os.environ if k.startswith("SSM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("MESSAGE_KEEP_COUNT", "3")
    monkeypatch.setenv("MESSAGE_KEEP_SECONDS", "60")
    jobs._env.cache_clear()
    yield r
    jobs._env.cache_clear()


def _mail(r: Any, lname: str, mail_id: str, read: bool = False) -> None:
    r.hset(keys.mail(lname, mail_id), mapping={"id": mail_id, "from": "bob", "subject": "s",
                                               "body": "b", "at": 1, "read": int(read)})
    r.zadd(keys.mailbox(lname), {mail_id: 1})
    if not read:
        r.zadd(keys.mailbox_unread(lname), {mail_id: 1})


@pytest.mark.parametrize("setup, outcome", [
    ("missing", "gone"), ("read", "read"), ("no_server_field", "offline"),
    ("stale_server", "offline"), ("unregistered_server", "no_server"), ("ok", "sent")])
def test_notify_mail_outcomes(job_env, setup, outcome):
    r = job_env
    sid = "s1" if setup != "unregistered_server" else "ghost"
    r.sadd(keys.servers_all(), "s1")
    beat = time.time() * 1000 - (120_000 if setup == "stale_server" else 0)
    r.zadd(keys.status_live(), {sid: beat})
    acct = {"id": "1", "name": "Alice"} | ({} if setup == "no_server_field" else {"server": sid})
    r.hset(keys.player("alice"), mapping=acct)
    if setup != "missing":
        _mail(r, "alice", "m1", read=setup == "read")
    assert jobs.notify_mail("alice", "m1") == outcome
    assert len(inbox(r, sid)) == (1 if outcome == "sent" else 0)
    if outcome == "sent":
        assert jobs.notify_mail("alice", "m1") == "done"


def test_notify_pending_outcomes(job_env):
    r = job_env
    r.sadd(keys.servers_all(), "s1", "s2")
    r.zadd(keys.status_live(), {"s1": time.time() * 1000})
    r.hset(keys.player("alice"), mapping={"id": "1", "name": "Alice", "server": "s1"})
    assert jobs.notify_pending("alice", "s1", 0) == "none"
    _mail(r, "alice", "m1")
    assert jobs.notify_pending("alice", "s2", 0) == "moved"
    assert jobs.notify_pending("alice", "s1", 0) == "sent"
    assert jobs.notify_pending("alice", "s1", 0) == "done"  # retry of the same join
    assert jobs.notify_mail("alice", "m1") == "done"         # its live notice: not repeated
    later = int(time.time() * 1000) + 60_000
    assert jobs.notify_pending("alice", "s1", later) == "sent"  # a later join: reminded again
    r.zadd(keys.status_live(), {"s1": 0})
    assert jobs.notify_pending("alice", "s1", later + 1) == "offline"


def test_trim_drops_only_old_entries_beyond_keep_count(job_env):
    r = job_env
    r.sadd(keys.servers_all(), "a", "b")
    old = int(time.time() * 1000) - 3_600_000
    for i in range(5):
        r.xadd(keys.inbox("a"), {"e": "message", "d": "{}"}, id=f"{old + i}-0")
    for i in range(2):
        r.xadd(keys.inbox("b"), {"e": "message", "d": "{}"}, id=f"{old + i}-0")
    now = int(time.time() * 1000)
    for i in range(2):
        r.xadd(keys.inbox("a"), {"e": "message", "d": "{}"}, id=f"{now + i}-0")
    for i in range(5):
        r.xadd(keys.inbox("b"), {"e": "message", "d": "{}"}, id=f"{now + i}-0")
    assert (r.xlen(keys.inbox("a")), r.xlen(keys.inbox("b"))) == (7, 7)
    assert jobs.trim_inboxes() == 4 + 2
    assert r.xlen(keys.inbox("a")) == 3  # newest 3 kept, though one is old
    assert r.xlen(keys.inbox("b")) == 5  # all recent ones kept, beyond the keep count
    assert jobs.trim_inboxes() == 0


def test_worker_runs_one_single_queue_worker_per_queue_and_stops_cleanly(workers):
    """RQ takes jobs crash-safely (BLMOVE to an intermediate list) only from a single queue,
    so the Procfile's worker runs one RQ worker process per queue."""
    proc = workers.start()

    def queue_children():
        kids = psutil.Process(proc.pid).children()
        found = sorted(k.cmdline()[-1] for k in kids if "--queue" in k.cmdline())
        return found if found == ["mail", "status", "webhooks", "webhooks"] else None

    wait_for(queue_children, what="one worker per queue")
    kids = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    wait_for(lambda: not [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE],
             5, "every queue worker gone")


def test_a_supervisor_killed_with_sigkill_takes_its_queue_workers_with_it(workers):
    """SIGKILL gives the supervisor no chance to stop its children: Linux SIGTERMs each queue
    worker when its parent dies (worker/main.py die_with_parent), so a platform's restart never
    runs two sets of workers."""
    proc = workers.start()
    wait_for(lambda: len([k for k in psutil.Process(proc.pid).children()
                          if "--queue" in k.cmdline()]) == 4, what="four queue workers")
    kids = [k for k in psutil.Process(proc.pid).children() if "--queue" in k.cmdline()]
    log = workers.logdir / "worker0.log"
    wait_for(lambda: log.read_text().count(" started (pid ") == 4, what="four workers at work")
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    wait_for(lambda: not [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE],
             15, "every queue worker gone after its supervisor's SIGKILL")


# --- a web process killed between a mail and its notice ---------------------------------------
WEB_SEND = """
import json, sys
from wsgi import create_app
resp = create_app().test_client().post("/v1/mail", headers=json.loads(sys.argv[1]),
                                       json={"to": "alice", "subject": "s", "body": "b"})
print("answered", resp.status_code)
"""


def test_web_killed_after_storing_a_mail_loses_no_notice(api, client, r, workers,
                                                         redis_server, queue_url):
    """docs/CLUSTER.md: the web process dies right after the mail is stored, before its notice job
    is
    queued (SSM_TEST_EXIT_AFTER_MAIL_STORE); the worker finds the outbox entry and the notice
    arrives, once."""
    import json

    from shared.redis_conn import connect

    sid, srv = live_server(api, "One")
    alice, bob = api.player("alice"), api.player("bob")
    api.join(sid, srv, alice)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSM_")}
    env.update(REDIS_URL=redis_server.url, SSM_TEST_EXIT_AFTER_MAIL_STORE="1")
    web = subprocess.run([sys.executable, "-c", WEB_SEND, json.dumps(bob)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert web.returncode == 3 and "answered" not in web.stdout, web.stderr[-2000:]
    (mail_id,) = r.zrange(keys.mailbox("alice"), 0, -1)
    queue = connect(queue_url)
    assert idle(queue)  # no notice job was queued
    workers.start()
    wait_for(lambda: inbox(r, sid), timeout=20, what="the notice, via the outbox")
    wait_for(lambda: idle(queue) and not r.zcard(keys.mail_outbox()), what="outbox emptied")
    # nothing queued and nothing in the outbox: no job and no sweep can add another notice
    assert [m["mail_id"] for m in inbox(r, sid)] == [mail_id]
