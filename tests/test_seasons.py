"""Seasons (README "Seasons"): boards with ``reset``, crossing daily, weekly and monthly boundaries
with
the app's clock (``clock``), the season listing and pages, and the worker's archive."""

from __future__ import annotations

import calendar
import json
import time
from typing import Any

import pytest

from shared import keys
from shared.storage import seasons
from worker import jobs


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: float = 0) -> float:
    return calendar.timegm((y, mo, d, h, mi, 0)) + s


class World:
    """One live server, players online on it, the app's clock set to chosen UTC times."""

    def __init__(self, api: Any, client: Any, clock: Any):
        self.api, self.client, self.clock = api, client, clock
        self.sid, self.srv = api.server("one")
        self.beat()

    def at(self, t: float) -> None:
        """Set the app's clock to unix time ``t``; the server beats again (so it stays live)."""
        self.clock.offset = t - time.time()
        self.beat()

    def beat(self) -> None:
        assert self.api.heartbeat(self.sid, self.srv).status_code == 200

    def board(self, board: str, reset: str | None, order: str = "desc",
              operator: str = "best") -> dict[str, Any]:
        body = {"order": order, "operator": operator, **({"reset": reset} if reset else {})}
        resp = self.client.put(f"/v1/boards/{board}", json=body, headers=self.api.admin)
        assert resp.status_code in (200, 201), resp.json
        return resp.json

    def online(self, *names: str) -> None:
        for name in names:
            assert self.api.join(self.sid, self.srv, self.api.player(name)).status_code == 200

    def submit(self, board: str, player: str, score: int) -> dict[str, Any]:
        resp = self.client.post(f"/v1/boards/{board}/records",
                                json={"player": player, "score": score}, headers=self.srv)
        assert resp.status_code == 200, resp.json
        return resp.json

    def top(self, board: str) -> list[tuple[str, int]]:
        resp = self.client.get(f"/v1/boards/{board}/records", query_string={"limit": 100})
        assert resp.status_code == 200, resp.json
        return [(rec["player"], rec["score"]) for rec in resp.json["records"]]

    def seasons(self, board: str) -> dict[str, Any]:
        resp = self.client.get(f"/v1/boards/{board}/seasons")
        assert resp.status_code == 200, resp.json
        return resp.json

    def season(self, board: str, n: int, **query: Any) -> Any:
        return self.client.get(f"/v1/boards/{board}/seasons/{n}/records", query_string=query)

    def thirty_days(self) -> None:
        """A daily board ``ctf.daily`` made on 2026-03-01 12:00 UTC, on which alice scores the
        day of the month on every day of March up to the 30th (seasons 0 to 29)."""
        self.at(utc(2026, 3, 1, 12))
        self.board("ctf.daily", "daily")
        self.online("alice")
        for day in range(1, 31):
            self.at(utc(2026, 3, day, 12))
            self.submit("ctf.daily", "alice", day)

    def season_top(self, board: str, n: int) -> list[tuple[str, int]]:
        resp = self.season(board, n, limit=100)
        assert resp.status_code == 200, resp.json
        return [(rec["player"], rec["score"]) for rec in resp.json["records"]]


@pytest.fixture
def w(api: Any, client: Any, clock: Any) -> World:
    return World(api, client, clock)


# --- the calendar ---------------------------------------------------------------------------
@pytest.mark.parametrize("reset,created,n,start,end", [
    ("daily", utc(2026, 3, 10, 15), 0, utc(2026, 3, 10), utc(2026, 3, 11)),
    ("daily", utc(2026, 3, 10, 15), 22, utc(2026, 4, 1), utc(2026, 4, 2)),
    ("daily", utc(2028, 2, 28, 23), 1, utc(2028, 2, 29), utc(2028, 3, 1)),  # leap day
    ("weekly", utc(2026, 3, 15, 23), 0, utc(2026, 3, 9), utc(2026, 3, 16)),  # a Sunday
    ("weekly", utc(2026, 3, 16), 0, utc(2026, 3, 16), utc(2026, 3, 23)),  # a Monday
    ("weekly", utc(1970, 1, 1), 0, utc(1969, 12, 29), utc(1970, 1, 5)),
    ("monthly", utc(2026, 1, 31, 12), 1, utc(2026, 2, 1), utc(2026, 3, 1)),
    ("monthly", utc(2026, 12, 15), 1, utc(2027, 1, 1), utc(2027, 2, 1)),  # a new year
    ("monthly", utc(2027, 11, 2), 3, utc(2028, 2, 1), utc(2028, 3, 1)),
])
def test_season_bounds_follow_the_utc_calendar(reset, created, n, start, end):
    assert seasons.bounds(reset, created, n) == (start, end)
    assert seasons.number(reset, created, start) == n
    assert seasons.number(reset, created, end - 0.001) == n
    assert seasons.number(reset, created, end) == n + 1


# --- board.create and board.list ------------------------------------------------------------
def test_create_takes_a_reset_and_lists_it(w, client, api):
    created = w.board("ctf.daily", "daily")
    assert created["reset"] == "daily"
    plain = w.board("ctf.all", None)
    assert "reset" not in plain
    listed = client.get("/v1/boards").json["boards"]
    assert listed == [{"board": "ctf.all", "order": "desc", "operator": "best"},
                      {"board": "ctf.daily", "order": "desc", "operator": "best",
                       "reset": "daily"}]
    resp = client.put("/v1/boards/ctf.daily", json={"order": "desc", "operator": "best",
                                                    "reset": "weekly"}, headers=api.admin)
    assert resp.status_code == 409 and resp.json["error"]["code"] == "board_exists"
    resp = client.put("/v1/boards/ctf.all", json={"order": "desc", "operator": "best",
                                                  "reset": "daily"}, headers=api.admin)
    assert resp.status_code == 409 and resp.json["error"]["code"] == "board_exists"
    resp = client.put("/v1/boards/ctf.x", json={"order": "desc", "operator": "best",
                                                "reset": "hourly"}, headers=api.admin)
    assert resp.status_code == 400 and resp.json["error"]["message"].startswith("reset")


# --- crossing boundaries --------------------------------------------------------------------
def test_a_daily_board_starts_empty_at_midnight_utc_and_keeps_the_past_day(w):
    w.at(utc(2026, 3, 10, 15))
    w.board("ctf.daily", "daily")
    w.online("alice", "bob")
    w.submit("ctf.daily", "alice", 10)
    w.submit("ctf.daily", "bob", 5)
    w.at(utc(2026, 3, 10, 23, 59, 59.5))
    assert w.top("ctf.daily") == [("alice", 10), ("bob", 5)]
    w.at(utc(2026, 3, 11))
    assert w.top("ctf.daily") == []
    assert w.submit("ctf.daily", "bob", 3) == {"rank": 1, "score": 3, "improved": True}
    assert w.top("ctf.daily") == [("bob", 3)]
    assert w.season_top("ctf.daily", 0) == [("alice", 10), ("bob", 5)]  # read-only, as it was
    assert w.season_top("ctf.daily", 1) == [("bob", 3)]
    listed = w.seasons("ctf.daily")
    assert listed["reset"] == "daily" and listed["current"] == 1
    assert listed["seasons"] == [
        {"season": 1, "start": utc(2026, 3, 11), "end": utc(2026, 3, 12),
         "top": [{"rank": 1, "player": "bob", "score": 3}]},
        {"season": 0, "start": utc(2026, 3, 10), "end": utc(2026, 3, 11),
         "top": [{"rank": 1, "player": "alice", "score": 10},
                 {"rank": 2, "player": "bob", "score": 5}]}]


def test_the_operator_counts_from_nothing_in_a_new_season(w):
    w.at(utc(2026, 3, 10, 12))
    w.board("dm.frags", "daily", operator="incr")
    w.online("alice")
    w.submit("dm.frags", "alice", 7)
    w.submit("dm.frags", "alice", 3)
    w.at(utc(2026, 3, 11, 0, 0, 1))
    assert w.submit("dm.frags", "alice", 2) == {"rank": 1, "score": 2, "improved": True}
    assert w.season_top("dm.frags", 0) == [("alice", 10)]


def test_a_weekly_board_turns_on_monday_midnight_utc(w):
    w.at(utc(2026, 3, 9, 0, 0, 1))  # a Monday
    w.board("ctf.week", "weekly")
    w.online("alice")
    w.submit("ctf.week", "alice", 4)
    w.at(utc(2026, 3, 15, 23, 59, 59))  # the Sunday after
    assert w.top("ctf.week") == [("alice", 4)]
    w.at(utc(2026, 3, 16))  # Monday again
    assert w.top("ctf.week") == []
    assert w.seasons("ctf.week")["current"] == 1
    assert w.season_top("ctf.week", 0) == [("alice", 4)]


@pytest.mark.parametrize("created,before,after,start", [
    (utc(2026, 1, 20), utc(2026, 1, 31, 23, 59, 59), utc(2026, 2, 1), utc(2026, 1, 1)),
    (utc(2026, 2, 3), utc(2026, 2, 28, 23, 59, 59), utc(2026, 3, 1), utc(2026, 2, 1)),  # 28 days
    (utc(2026, 12, 24), utc(2026, 12, 31, 23, 59, 59), utc(2027, 1, 1), utc(2026, 12, 1)),
])
def test_a_monthly_board_turns_on_the_first_of_the_month(w, created, before, after, start):
    w.at(created)
    w.board("ctf.month", "monthly")
    w.online("alice")
    w.submit("ctf.month", "alice", 8)
    w.at(before)
    assert w.top("ctf.month") == [("alice", 8)]
    w.at(after)
    assert w.top("ctf.month") == []
    listed = w.seasons("ctf.month")
    assert listed["current"] == 1
    assert [(s["season"], s["start"], s["end"]) for s in listed["seasons"]] == [
        (1, after, seasons.bounds("monthly", created, 1)[1]), (0, start, after)]
    assert w.season_top("ctf.month", 0) == [("alice", 8)]


def test_player_reads_and_moderation_see_the_current_season(w, client, api):
    w.at(utc(2026, 3, 10, 12))
    w.board("ctf.daily", "daily")
    w.online("alice", "bob")
    w.submit("ctf.daily", "alice", 9)
    w.submit("ctf.daily", "bob", 4)
    w.at(utc(2026, 3, 11, 12))
    assert client.get("/v1/boards/ctf.daily/records/alice").status_code == 404
    assert client.get("/v1/players/alice/records").json["records"] == []
    w.submit("ctf.daily", "alice", 2)
    assert client.get("/v1/boards/ctf.daily/records/alice").json["score"] == 2
    assert [r["score"] for r in client.get("/v1/players/alice/records").json["records"]] == [2]
    resp = client.delete("/v1/boards/ctf.daily/records/alice", query_string={"reason": "cheat"},
                         headers=api.admin)
    assert resp.status_code == 204
    assert w.top("ctf.daily") == []
    assert w.season_top("ctf.daily", 0) == [("alice", 9), ("bob", 4)]  # past seasons stay


# --- the listing and the pages of past seasons ----------------------------------------------
def test_a_board_without_reset_has_one_endless_season(w):
    created = w.board("ctf.all", None)["created"]
    w.online("alice")
    w.submit("ctf.all", "alice", 3)
    listed = w.seasons("ctf.all")
    assert listed == {"board": "ctf.all", "order": "desc", "operator": "best", "reset": None,
                      "current": 0,
                      "seasons": [{"season": 0, "start": created, "end": None,
                                   "top": [{"rank": 1, "player": "alice", "score": 3}]}]}
    assert w.season_top("ctf.all", 0) == [("alice", 3)]
    resp = w.season("ctf.all", 1)
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"


def test_season_pages_page_like_record_top(w):
    w.at(utc(2026, 3, 10, 12))
    w.board("ctf.daily", "daily")
    names = [f"p{i}" for i in range(5)]
    w.online(*names)
    for i, name in enumerate(names):
        w.submit("ctf.daily", name, i)
    w.at(utc(2026, 3, 11, 12))
    first = w.season("ctf.daily", 0, limit=2).json
    assert [r["player"] for r in first["records"]] == ["p4", "p3"]
    second = w.season("ctf.daily", 0, limit=2, cursor=first["next_cursor"]).json
    assert [(r["rank"], r["player"]) for r in second["records"]] == [(3, "p2"), (4, "p1")]
    last = w.season("ctf.daily", 0, limit=2, cursor=second["next_cursor"]).json
    assert [r["player"] for r in last["records"]] == ["p0"] and last["next_cursor"] is None
    assert set(first["records"][0]) == {"rank", "player", "score", "meta", "server", "at"}


@pytest.mark.parametrize("path,why", [
    ("/v1/boards/nope/seasons", "not_found"),
    ("/v1/boards/nope/seasons/0/records", "not_found"),
    ("/v1/boards/ctf.daily/seasons/1/records", "not_found"),  # not begun
    ("/v1/boards/ctf.daily/seasons/-1/records", "invalid_input"),
    ("/v1/boards/ctf.daily/seasons/x/records", "invalid_input"),
])
def test_unknown_boards_and_seasons_are_refused(w, client, path, why):
    w.board("ctf.daily", "daily")
    resp = client.get(path)
    assert resp.json["error"]["code"] == why, resp.json
    assert resp.status_code == (404 if why == "not_found" else 400)


def test_the_last_24_seasons_are_listed_and_older_ones_refused(w):
    w.thirty_days()
    listed = w.seasons("ctf.daily")
    assert listed["current"] == 29
    assert [s["season"] for s in listed["seasons"]] == list(range(29, 4, -1))  # 25: 24 + now
    assert [s["top"][0]["score"] for s in listed["seasons"]] == list(range(30, 5, -1))
    assert w.season_top("ctf.daily", 5) == [("alice", 6)]
    resp = w.season("ctf.daily", 4)
    assert resp.status_code == 404 and "no longer kept" in resp.json["error"]["message"]


# --- the worker's archive -------------------------------------------------------------------
def outbox(r: Any, board: str) -> list[tuple[str, dict[str, Any]]]:
    return [(f["e"], json.loads(f["d"])) for _, f in r.xrange(keys.board_outbox(board))]


def test_archive_keeps_the_top_3_and_emits_season_ended_once(w, r):
    w.at(utc(2026, 3, 10, 12))
    w.board("ctf.daily", "daily")
    w.online("alice", "bob", "carol", "dave")
    for name, score in (("alice", 4), ("bob", 9), ("carol", 7), ("dave", 1)):
        w.submit("ctf.daily", name, score)
    r.delete(keys.board_outbox("ctf.daily"))  # the record.top events
    boundary = utc(2026, 3, 11)
    assert seasons.archive(r, "ctf.daily", boundary + seasons.GRACE_SECONDS - 1, 24) == 0
    assert outbox(r, "ctf.daily") == []  # within the grace period: not yet
    assert seasons.archive(r, "ctf.daily", boundary + seasons.GRACE_SECONDS, 24) == 1
    top = [{"rank": 1, "player": "bob", "score": 9}, {"rank": 2, "player": "carol", "score": 7},
           {"rank": 3, "player": "alice", "score": 4}]
    assert outbox(r, "ctf.daily") == [("season.ended", {
        "board": "ctf.daily", "season": 0, "start": utc(2026, 3, 10), "end": boundary,
        "top": top})]
    assert seasons.archive(r, "ctf.daily", boundary + 3600, 24) == 0  # once only
    assert len(outbox(r, "ctf.daily")) == 1
    assert r.zscore(keys.seasons_due(), "ctf.daily") == (utc(2026, 3, 12) + 10) * 1000
    w.at(boundary + 60)
    # the listing reads the archive now: drop the season's own keys to prove it
    r.delete(*seasons.season_keys("ctf.daily", "daily", utc(2026, 3, 10, 12), 0))
    assert w.seasons("ctf.daily")["seasons"][1]["top"] == top


def test_season_ended_carries_every_digit_of_a_16_digit_score(w, r):
    w.at(utc(2026, 3, 10, 12))
    w.board("ctf.daily", "daily")
    w.online("alice", "bob")
    w.submit("ctf.daily", "alice", 2**53 - 1)
    w.submit("ctf.daily", "bob", -(2**53 - 1))
    r.delete(keys.board_outbox("ctf.daily"))
    assert seasons.archive(r, "ctf.daily", utc(2026, 3, 11) + seasons.GRACE_SECONDS, 24) == 1
    ((event, data),) = outbox(r, "ctf.daily")
    assert [(t["player"], t["score"]) for t in data["top"]] == [("alice", 2**53 - 1),
                                                                 ("bob", -(2**53 - 1))]


def test_an_empty_season_is_archived_without_an_event(w, r):
    w.at(utc(2026, 3, 10, 12))
    w.board("ctf.daily", "daily")
    assert seasons.archive(r, "ctf.daily", utc(2026, 3, 12, 1), 24) == 0
    assert outbox(r, "ctf.daily") == []
    assert r.hget(keys.board_seasons("ctf.daily"), "0") == "[]"
    assert r.hget(keys.board_seasons("ctf.daily"), "1") == "[]"


@pytest.mark.parametrize("batch", [seasons.TRIM_BATCH, 2])  # 2: the drops in three scripts
def test_archive_drops_seasons_beyond_the_kept_count(w, r, monkeypatch, batch):
    monkeypatch.setattr(seasons, "TRIM_BATCH", batch)
    w.thirty_days()
    created = utc(2026, 3, 1, 12)
    assert r.exists(*seasons.season_keys("ctf.daily", "daily", created, 0)) == 2
    assert seasons.archive(r, "ctf.daily", utc(2026, 3, 30, 12), 24) == 24  # 5..28 ended
    for n in range(5):  # before the 24 kept: dropped, with what the archive knew of them
        assert r.exists(*seasons.season_keys("ctf.daily", "daily", created, n)) == 0
    assert r.hget(keys.board_seasons("ctf.daily"), "from") == "5"
    assert r.exists(*seasons.season_keys("ctf.daily", "daily", created, 5)) == 2
    assert sorted(int(f) for f in r.hkeys(keys.board_seasons("ctf.daily")) if f != "from") == \
        list(range(5, 29))
    w.at(utc(2026, 3, 30, 12))
    assert w.season_top("ctf.daily", 5) == [("alice", 6)]


def test_an_archive_stopped_between_batches_resumes_where_it_stopped(w, r, monkeypatch):
    monkeypatch.setattr(seasons, "TRIM_BATCH", 2)
    w.thirty_days()
    calls = []
    real = seasons.ARCHIVE

    def dies_second_time(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionError("the worker died")
        return real(*args, **kw)
    monkeypatch.setattr(seasons, "ARCHIVE", dies_second_time)
    with pytest.raises(ConnectionError):
        seasons.archive(r, "ctf.daily", utc(2026, 3, 30, 12), 24)
    assert r.hget(keys.board_seasons("ctf.daily"), "from") == "2"  # seasons 0 and 1 dropped
    monkeypatch.setattr(seasons, "ARCHIVE", real)
    assert seasons.archive(r, "ctf.daily", utc(2026, 3, 30, 12), 24) == 24
    created = utc(2026, 3, 1, 12)
    for n in range(5):
        assert r.exists(*seasons.season_keys("ctf.daily", "daily", created, n)) == 0
    assert r.hget(keys.board_seasons("ctf.daily"), "from") == "5"


def test_the_archive_job_takes_the_boards_due(w, r, redis_server, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    jobs._env.cache_clear()
    w.at(utc(2026, 3, 10, 12))
    w.board("ctf.daily", "daily")
    w.board("ctf.week", "weekly")
    w.board("ctf.all", None)
    w.online("alice")
    w.submit("ctf.daily", "alice", 5)
    w.submit("ctf.week", "alice", 5)
    assert sorted(r.zrange(keys.seasons_due(), 0, -1)) == ["ctf.daily", "ctf.week"]
    now = utc(2026, 3, 11, 0, 1)
    monkeypatch.setattr(jobs.time, "time", lambda: now)
    assert seasons.due(r, "me", int(now * 1000), 5000)
    assert not seasons.due(r, "other", int(now * 1000), 5000)  # this period's lock is taken
    try:
        assert jobs.archive_seasons() == 1  # the daily board's season 0; the week goes on
    finally:
        jobs._env.cache_clear()
    assert [e for e, _ in outbox(r, "ctf.daily")][-1] == "season.ended"
    assert "season.ended" not in [e for e, _ in outbox(r, "ctf.week")]
    r.delete(keys.seasons_job_lock())
    assert not seasons.due(r, "me", int(now * 1000), 5000)  # nothing due until tomorrow


def test_nothing_is_due_without_a_board_with_seasons(r):
    assert not seasons.due(r, "me", int(time.time() * 1000), 5000)
    assert r.exists(keys.seasons_job_lock()) == 0  # an idle check writes nothing


def test_the_ticker_queues_the_archive_only_when_a_season_ended(w, r, config):
    from rq import Queue

    from worker.ticker import Ticker

    ticker = Ticker(config, "test-ticker")
    queue = Queue("status", connection=ticker.conn)

    def queued() -> int:
        return [job.func_name for job in queue.get_jobs()].count("shared.jobs.archive_seasons")

    w.board("ctf.daily", "daily")  # today's season runs until midnight
    ticker.tick()
    assert queued() == 0
    r.zadd(keys.seasons_due(), {"ctf.daily": int(time.time() * 1000) - 1})  # as if it ended
    ticker.tick()
    assert queued() == 1
    ticker.tick()  # the period's lock: once
    assert queued() == 1


def test_the_board_page_pages_through_a_past_season(w, client):
    w.at(utc(2026, 3, 10, 12))
    w.board("ctf.daily", "daily")
    names = [f"p{i:02d}" for i in range(26)]
    w.online(*names)
    for i, name in enumerate(names):
        w.submit("ctf.daily", name, 100 - i)
    w.at(utc(2026, 3, 11, 12))
    html = client.get("/boards/ctf.daily?season=0").get_data(as_text=True)
    assert 'href="?season=0&amp;cursor=25"' in html  # Next stays in season 0
    assert "Season 0 · 10 Mar 2026 · ended, read-only" in html
    more = client.get("/boards/ctf.daily?season=0&cursor=25").get_data(as_text=True)
    assert ">p25<" in more and ">26<" in more and 'href="?season=0&amp;cursor=0"' in more
    now = client.get("/boards/ctf.daily").get_data(as_text=True)
    assert "No record on this page." in now and "cursor=" not in now
    assert client.get("/boards/ctf.daily?season=5").status_code == 404  # not begun


def test_a_record_voided_in_an_ended_season_leaves_its_ranking_and_top_3(w, client, api, r):
    def void(name: str, **query: Any) -> Any:
        return client.delete(f"/v1/boards/ctf.daily/records/{name}", headers=api.admin,
                             query_string={"reason": "aimbot", **query})

    w.at(utc(2026, 3, 10, 12))
    w.board("ctf.daily", "daily")
    w.online("alice", "bob", "carol")
    for name, score in (("alice", 9), ("bob", 5), ("carol", 3)):
        w.submit("ctf.daily", name, score)
    w.at(utc(2026, 3, 11, 12))
    w.submit("ctf.daily", "bob", 1)
    assert void("alice", season=0).status_code == 204  # not archived yet
    assert w.season_top("ctf.daily", 0) == [("bob", 5), ("carol", 3)]
    assert w.top("ctf.daily") == [("bob", 1)]  # the current season is another one
    assert seasons.archive(r, "ctf.daily", utc(2026, 3, 11, 12), 24) == 1
    assert void("bob", season=0).status_code == 204  # archived: its top 3 follows
    assert w.seasons("ctf.daily")["seasons"][1]["top"] == [
        {"rank": 1, "player": "carol", "score": 3}]
    assert w.season_top("ctf.daily", 0) == [("carol", 3)]
    assert [e for e, _ in outbox(r, "ctf.daily")].count("season.ended") == 1  # not again
    assert w.top("ctf.daily") == [("bob", 1)]
    gone = void("bob", season=0)
    assert gone.status_code == 404 and "in season 0" in gone.json["error"]["message"]
    assert void("carol", season=5).status_code == 404  # not begun
    assert void("bob").status_code == 204  # the current season's record
    voids = [e["target"] for e in client.get("/v1/audit", headers=api.admin).json["entries"]
             if e["op"] == "record.void"]  # newest first
    assert voids == ["ctf.daily name=bob", "ctf.daily name=bob season=0",
                     "ctf.daily name=alice season=0"]
