"""message.send's per-server budget (MESSAGE_SEND_BUDGET / MESSAGE_SEND_BURST): a message costs
its recipients, paid before anything is written; 429 rate_limited with Retry-After when short."""

from __future__ import annotations

import dataclasses
import time

import pytest

from shared import keys
from shared.storage import messages
from tests.conftest import Api, wait_for
from tests.relay_client import authed, server_creds


@pytest.fixture
def budgeted(config, r, clock):
    """``make(budget, burst)``: a test client and Api for an app with that budget."""
    from wsgi import create_app

    def make(budget: int, burst: int):
        cfg = dataclasses.replace(config, message_send_budget=budget, message_send_burst=burst)
        client = create_app(cfg, r, clock=clock).test_client()
        return client, Api(client)
    return make


def send(client, headers, to, body="hi"):
    return client.post("/v1/messages", json={"to": to, "body": body}, headers=headers)


def inbox_len(r, server_id):
    return r.xlen(keys.inbox(server_id))


def test_a_broadcast_costs_its_recipients_and_a_refusal_writes_nothing(budgeted, r):
    client, api = budgeted(budget=1, burst=25)  # 1 recipient a minute: no refill to speak of
    (a, ha), *others = [api.server(f"s{i}") for i in range(11)]  # a broadcast reaches 10
    assert send(client, ha, "*").status_code == 202
    assert send(client, ha, "*").status_code == 202  # 20 of 25 spent
    resp = send(client, ha, "*", "third")  # needs 10, has 5
    assert resp.status_code == 429
    assert resp.json["error"]["code"] == "rate_limited"
    assert 295 <= int(resp.headers["Retry-After"]) <= 300  # 5 recipients at 1 a minute
    assert "MESSAGE_SEND_BUDGET" in resp.json["error"]["message"]
    assert [inbox_len(r, sid) for sid, _ in others] == [2] * 10
    assert r.xlen(keys.message_ids()) == 2
    assert send(client, ha, others[0][0]).status_code == 202  # one recipient still fits


def test_direct_messages_cost_one_each_and_unknown_targets_nothing(budgeted, r):
    client, api = budgeted(budget=1, burst=3)
    (_, ha), (b, _) = api.server("a"), api.server("b")
    assert send(client, ha, "nosuchsrv").status_code == 404
    assert [send(client, ha, b).status_code for _ in range(4)] == [202, 202, 202, 429]
    assert inbox_len(r, b) == 3


def test_a_channel_message_costs_its_members_but_the_sender(budgeted):
    client, api = budgeted(budget=1, burst=5)
    servers = [api.server(f"s{i}") for i in range(5)]
    for sid, h in servers[:3]:
        assert client.put(f"/v1/servers/{sid}/channels/ctf", headers=h).status_code == 200
    ha = servers[0][1]
    assert [send(client, ha, "#ctf").status_code for _ in range(3)] == [202, 202, 429]


def test_each_server_has_its_own_budget(budgeted):
    client, api = budgeted(budget=1, burst=1)
    (a, ha), (b, hb) = api.server("a"), api.server("b")
    assert [send(client, ha, b).status_code for _ in range(2)] == [202, 429]
    assert send(client, hb, a).status_code == 202


def test_a_send_reaching_no_one_still_costs_one(budgeted):
    client, api = budgeted(budget=1, burst=2)
    a, ha = api.server("a")
    assert [send(client, ha, s).status_code for s in ("*", "#empty", "*")] == [202, 202, 429]


def test_the_budget_refills_with_time(budgeted):
    client, api = budgeted(budget=30, burst=2)  # one recipient every 2 s
    (_, ha), (b, _) = api.server("a"), api.server("b")
    assert [send(client, ha, b).status_code for _ in range(3)] == [202, 202, 429]
    started = time.monotonic()
    wait_for(lambda: send(client, ha, b).status_code == 202, timeout=30, every=0.2,
             what="a refill")
    assert time.monotonic() - started >= 1.0  # refilled by time, not at once


def test_a_message_dearer_than_the_burst_passes_on_a_full_budget(budgeted):
    """Otherwise a fleet larger than the burst could never be reached by a broadcast."""
    client, api = budgeted(budget=1, burst=5)
    (a, ha), *_ = [api.server(f"s{i}") for i in range(11)]
    assert [send(client, ha, "*").status_code for _ in range(2)] == [202, 429]


def test_long_or_wide_bodies_cost_one_per_started_kib(budgeted, r):
    assert messages.cost_per_recipient("") == 1
    assert messages.cost_per_recipient("x" * 1024) == 1
    assert messages.cost_per_recipient("x" * 1025) == 2
    assert messages.cost_per_recipient("é" * 1024) == 2  # 2 bytes each in UTF-8
    assert messages.cost_per_recipient("\U0001f600" * 1024) == 4
    assert messages.cost_per_recipient('"' * 600) == 2  # stored escaped: 2 bytes each
    client, api = budgeted(budget=1, burst=4)
    (_, ha), (b, _) = api.server("a"), api.server("b")
    assert send(client, ha, b, "€" * 1024).status_code == 202  # 3 KiB stored: 3 units
    assert [send(client, ha, b).status_code for _ in range(2)] == [202, 429]


def test_zero_turns_the_budget_off(budgeted, r):
    client, api = budgeted(budget=0, burst=1)
    (a, ha), (b, _) = api.server("a"), api.server("b")
    assert all(send(client, ha, b).status_code == 202 for _ in range(20))
    assert not r.exists(keys.send_budget(a))


def test_backend_deliveries_are_not_charged(r, config, api):
    a, _ = api.server("a")
    cfg = dataclasses.replace(config, message_send_budget=1, message_send_burst=1)
    for _ in range(3):
        messages.deliver(r, cfg, a, "", "server_offline", {"type": "server_offline"})
    assert inbox_len(r, a) == 3 and not r.exists(keys.send_budget(""))


def test_the_default_lets_a_200_server_fleet_broadcast(config):
    """The defaults' arithmetic (docs/DESIGN.md): in a fleet of 200 a server may broadcast (199
    recipients) 40 times a minute, sustained, and 15 times back to back; and one server can make
    Redis grow by at most (budget + burst) x ~1.4 KB a minute (bench/sendbudget.py), under 20 MB.
    """
    per_minute, burst = config.message_send_budget, config.message_send_burst
    assert per_minute >= 199 * 40 and burst >= 199 * 15
    assert (per_minute + burst) * 1400 <= 20e6


def test_the_budget_holds_over_the_relay(start_relay, config, api, r):
    relay = start_relay(dataclasses.replace(config, message_send_budget=1,
                                            message_send_burst=1))
    a_id, a_key, _ = server_creds(api, "a")
    b_id, _, _ = server_creds(api, "b")
    c = authed(relay.port, a_id, a_key)
    assert c.cmd("SEND", f"{b_id} one")["state"] == "OK"
    got = c.cmd("SEND", f"{b_id} two")
    assert (got["state"], got["code"]) == ("ERROR", "rate_limited")
    assert 55 <= got["retry_after"] <= 60 and "MESSAGE_SEND_BUDGET" in got["msg"]
    assert inbox_len(r, b_id) == 1
