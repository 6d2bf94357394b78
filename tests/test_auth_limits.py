"""Login lockout, registration limit, sessions, Idempotency-Key on register, no echoed secrets.

docs/API.md "Brute force": 5 failed logins for one name lock the name; 10 from one address lock the
address; refused attempts do not count; a wrong ``old`` on player.password is a failed login; a
server's key exempts its logins from the address lock, and the name lock its failures cause
applies to logins through that server only. Sessions per player are capped.
"""

from __future__ import annotations

import pytest

from shared import keys
from shared.redis_conn import scan_keys
from tests.conftest import Api, make_config

IP_A, IP_B = "10.0.0.1", "10.0.0.2"


def login(client, name, password="secret1", ip=IP_A, headers=None):
    return client.post("/v1/sessions", json={"name": name, "password": password},
                       headers=headers or {}, environ_base={"REMOTE_ADDR": ip})


def register(client, name, ip=IP_A, headers=None, password="secret1"):
    return client.post("/v1/players", json={"name": name, "password": password},
                       headers=headers or {}, environ_base={"REMOTE_ADDR": ip})


def assert_locked(resp, most):
    assert resp.status_code == 429, resp.json
    assert resp.json["error"]["code"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= most


# --- name lock ------------------------------------------------------------------------------
def test_five_failures_lock_the_name(client, config, r):
    register(client, "alice")
    register(client, "bob")
    for _ in range(config.login_name_fails):
        resp = login(client, "alice", "wrong00")
        assert resp.status_code == 401 and resp.json["error"]["code"] == "invalid_credentials"
    assert_locked(login(client, "alice"), config.login_name_lock)  # right password, still locked
    assert_locked(login(client, "ALICE", ip=IP_B), config.login_name_lock)  # any case, any address
    assert 0 < r.ttl(keys.login_lock_name("alice")) <= config.login_name_lock
    assert login(client, "bob").status_code == 200  # other names are not affected


def test_name_unlocks_when_lock_expires(client, config, r):
    register(client, "alice")
    for _ in range(config.login_name_fails):
        login(client, "alice", "wrong00")
    r.delete(keys.login_lock_name("alice"))  # the lock's TTL ran out
    assert login(client, "alice").status_code == 200


def test_unknown_names_count_too(client, config):
    for _ in range(config.login_name_fails):
        assert login(client, "ghost", "wrong00").status_code == 401
    assert_locked(login(client, "ghost", "wrong00"), config.login_name_lock)


def test_refused_attempts_do_not_count(client, config, r):
    register(client, "alice")
    register(client, "bob")
    for _ in range(config.login_name_fails):
        login(client, "alice", "wrong00")
    for _ in range(config.login_ip_fails):  # refused by the name lock: must not count anywhere
        assert login(client, "alice", "wrong00").status_code == 429
    assert int(r.get(keys.login_fails_ip(IP_A))) == config.login_name_fails
    assert login(client, "bob").status_code == 200  # the address is not locked
    r.delete(keys.login_lock_name("alice"))
    for _ in range(config.login_name_fails - 1):  # the name starts from zero again
        assert login(client, "alice", "wrong00").status_code == 401
    assert login(client, "alice").status_code == 200


def test_concurrent_guesses_cannot_outrun_the_lock(app, client, config, monkeypatch):
    """A burst of parallel guesses gets no more password checks than the lock allows."""
    import threading
    import time

    import functions.session_login as session_login

    register(client, "alice")
    real, checks = session_login.verify_password, []

    def slow_verify(stored, password):
        checks.append(password)
        time.sleep(0.2)  # a slow KDF: every guess of the burst is in flight at once
        return real(stored, password)

    monkeypatch.setattr(session_login, "verify_password", slow_verify)
    barrier, codes = threading.Barrier(20), []

    def guess():
        c = app.test_client()
        barrier.wait()
        codes.append(login(c, "alice", "wrong00").status_code)

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(checks) <= config.login_name_fails
    assert sorted(codes) == [401] * len(checks) + [429] * (20 - len(checks))
    assert_locked(login(client, "alice"), config.login_name_lock)


def test_success_resets_the_name_count(client, config):
    register(client, "alice")
    for _ in range(2):
        for _ in range(config.login_name_fails - 1):
            assert login(client, "alice", "wrong00").status_code == 401
        assert login(client, "alice").status_code == 200


def test_bad_tokens_are_not_failed_logins(client, config):
    register(client, "alice")
    for _ in range(config.login_ip_fails + 1):
        resp = client.get("/v1/players/alice/settings",
                          headers={"Authorization": "Bearer p.YWxpY2U.nope"},
                          environ_base={"REMOTE_ADDR": IP_A})
        assert resp.status_code == 401
    assert login(client, "alice").status_code == 200


# --- address lock ---------------------------------------------------------------------------
def test_ten_failures_from_one_address_lock_it(client, config, r):
    register(client, "alice")
    for i in range(config.login_ip_fails):
        assert login(client, f"user{i}", "wrong00").status_code == 401
    assert_locked(login(client, "alice"), config.login_ip_lock)
    assert 0 < r.ttl(keys.login_lock_ip(IP_A)) <= config.login_ip_lock
    assert login(client, "alice", ip=IP_B).status_code == 200


def test_successful_logins_do_not_count_for_the_address(client, config):
    register(client, "alice")
    for i in range(config.login_ip_fails - 1):
        assert login(client, f"user{i}", "wrong00").status_code == 401
    for _ in range(3):
        assert login(client, "alice").status_code == 200
    assert login(client, "nobody", "wrong00").status_code == 401  # the 10th failure
    assert login(client, "alice").status_code == 429


def test_server_logins_are_exempt_from_the_address_lock(api, client, config):
    register(client, "alice")
    _, srv = api.server()
    for i in range(config.login_ip_fails):
        login(client, f"user{i}", "wrong00")
    assert login(client, "alice").status_code == 429
    assert login(client, "alice", headers=srv).status_code == 200


def test_server_failures_do_not_lock_the_address(api, client, config):
    register(client, "alice")
    _, srv = api.server()
    for i in range(config.login_ip_fails + 2):
        assert login(client, f"user{i}", "wrong00", headers=srv).status_code == 401
    assert login(client, "alice").status_code == 200


def test_name_lock_applies_to_server_logins(api, client, config):
    register(client, "alice")
    _, srv = api.server()
    for _ in range(config.login_name_fails):
        assert login(client, "alice", "wrong00", headers=srv).status_code == 401
    assert_locked(login(client, "alice", headers=srv), config.login_name_lock)


def test_a_servers_failures_lock_the_name_for_that_server_only(api, client, config, r):
    register(client, "alice")
    sid_a, srv_a = api.server("a")
    _, srv_b = api.server("b")
    for _ in range(config.login_name_fails):
        assert login(client, "alice", "wrong00", headers=srv_a).status_code == 401
    assert_locked(login(client, "alice", headers=srv_a), config.login_name_lock)
    assert 0 < r.ttl(keys.login_lock_name_via("alice", sid_a)) <= config.login_name_lock
    assert login(client, "alice", headers=srv_b).status_code == 200
    assert login(client, "alice").status_code == 200  # direct logins: not locked either
    assert r.get(keys.login_fails_name("alice")) is None  # nothing counted for the name itself
    assert_locked(login(client, "alice", headers=srv_a), config.login_name_lock)  # still


def test_direct_failures_lock_the_name_through_every_server(api, client, config):
    register(client, "alice")
    _, srv = api.server()
    for _ in range(config.login_name_fails):
        assert login(client, "alice", "wrong00").status_code == 401
    assert_locked(login(client, "alice", headers=srv), config.login_name_lock)
    assert_locked(login(client, "alice"), config.login_name_lock)


def test_a_server_still_cannot_outguess_its_lock(api, client, config, r):
    """The per-server lock keeps the protection against guessing: refused attempts do not
    reach the password check, and the count starts over only after the lock."""
    register(client, "alice")
    sid, srv = api.server()
    for _ in range(config.login_name_fails):
        login(client, "alice", "wrong00", headers=srv)
    for _ in range(3):
        assert login(client, "alice", "wrong00", headers=srv).status_code == 429
    assert r.get(keys.login_fails_name_via("alice", sid)) is None  # refused: not counted


# --- player.password: a wrong old is a failed login -----------------------------------------
def change_password(client, headers, old, new="better22", ip=IP_A):
    return client.put("/v1/players/alice/password", json={"old": old, "new": new},
                      headers=headers, environ_base={"REMOTE_ADDR": ip})


def test_wrong_old_password_counts_as_a_failed_login(api, client, config, r):
    alice = api.player("alice")
    for _ in range(config.login_name_fails):
        resp = change_password(client, alice, "wrong00")
        assert resp.status_code == 401 and resp.json["error"]["code"] == "invalid_credentials"
    assert_locked(change_password(client, alice, "secret1"), config.login_name_lock)
    assert_locked(login(client, "alice", ip=IP_B), config.login_name_lock)
    r.delete(keys.login_lock_name("alice"))  # the lock ran out: the password never changed
    assert login(client, "alice").status_code == 200


def test_wrong_old_password_counts_for_the_address(api, client, config):
    alice = api.player("alice")
    register(client, "bob")
    for i in range(config.login_ip_fails - 1):
        assert login(client, f"user{i}", "wrong00").status_code == 401
    assert change_password(client, alice, "wrong00").status_code == 401  # the 10th failure
    assert_locked(login(client, "bob"), config.login_ip_lock)


def test_password_change_refused_while_the_name_is_locked(api, client, config, r):
    alice = api.player("alice")
    for _ in range(config.login_name_fails):
        login(client, "alice", "wrong00", ip=IP_B)
    assert_locked(change_password(client, alice, "secret1"), config.login_name_lock)
    r.delete(keys.login_lock_name("alice"))
    assert login(client, "alice", "secret1").status_code == 200  # unchanged


def test_password_change_success_resets_the_name_count(api, client, config):
    alice = api.player("alice")
    for _ in range(config.login_name_fails - 1):
        assert change_password(client, alice, "wrong00").status_code == 401
    assert change_password(client, alice, "secret1").status_code == 200
    for _ in range(config.login_name_fails - 1):
        assert login(client, "alice", "wrong00").status_code == 401
    assert login(client, "alice", "better22").status_code == 200


def test_parallel_wrong_old_passwords_cannot_outrun_the_lock(app, api, config, monkeypatch):
    import threading
    import time

    import functions.player_password as player_password

    alice = api.player("alice")
    real, checks = player_password.verify_password, []

    def slow_verify(stored, password):
        checks.append(password)
        time.sleep(0.2)  # a slow KDF: every guess of the burst is in flight at once
        return real(stored, password)

    monkeypatch.setattr(player_password, "verify_password", slow_verify)
    barrier, codes = threading.Barrier(20), []

    def guess():
        c = app.test_client()
        barrier.wait()
        codes.append(change_password(c, alice, "wrong00").status_code)

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= len(checks) <= config.login_name_fails
    assert sorted(codes) == [401] * len(checks) + [429] * (20 - len(checks))
    assert_locked(change_password(app.test_client(), alice, "secret1"), config.login_name_lock)


# --- malformed names ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["{", "}", "bob}:acct}", "{p:bob}", "a b", "a" * 16, "", "x",
                                  "al\nice"])
def test_malformed_login_names_are_invalid_input(client, r, name):
    resp = login(client, name, "wrong00")
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["code"] == "invalid_input"
    assert resp.json["error"]["message"].startswith("name")
    assert scan_keys(r, "ssm:*") == []  # nothing counted, no key built from the name


# --- registrations per address --------------------------------------------------------------
@pytest.fixture
def limited(redis_server, r, clock):
    from wsgi import create_app

    app = create_app(make_config(redis_server.url, register_limit_per_ip_hour=3), r, clock=clock)
    return app.test_client()


def test_registrations_per_address_per_hour(limited, clock):
    for i in range(3):
        assert register(limited, f"user{i}").status_code == 201
    resp = register(limited, "user3")
    assert_locked(resp, 3600)
    assert limited.get("/v1/players/user3").status_code == 404
    assert register(limited, "other", ip=IP_B).status_code == 201
    clock.advance(3600)
    assert register(limited, "user3").status_code == 201


def test_server_key_registrations_are_exempt(limited):
    srv = Api(limited).server()[1]
    for i in range(5):
        assert register(limited, f"user{i}", headers=srv).status_code == 201
    assert register(limited, "anon1").status_code == 201  # the address has its full quota


# --- sessions -------------------------------------------------------------------------------
def test_the_oldest_session_is_revoked_beyond_the_cap(api, client, r, config):
    assert config.sessions_per_player_max == 50
    register(client, "alice")
    tokens = [login(client, "alice").json["token"] for _ in range(51)]
    settings = "/v1/players/alice/settings"
    assert client.get(settings, headers=api.bearer(tokens[0])).status_code == 401
    for token in (tokens[1], tokens[-1]):
        assert client.get(settings, headers=api.bearer(token)).status_code == 200
    assert r.zcard(keys.player_sessions("alice")) == 50
    assert len(scan_keys(r, keys.player_session("alice", "*"))) == 50


def _commands_run(r, fn) -> int:
    """Redis commands ``fn`` ran (scripts' commands included), from INFO commandstats."""
    def total() -> int:
        stats = r.info("commandstats")
        return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_info",))

    before = total()
    fn()
    return total() - before


def test_a_logins_cost_is_bounded_by_the_cap(redis_server, r, clock):
    """Counted in Redis commands, not time: a login at the cap runs a few more commands than
    one with a single session (evicting the oldest), not one per session the player had."""
    from wsgi import create_app

    cap = 40
    client = create_app(make_config(redis_server.url, sessions_per_player_max=cap), r,
                        clock=clock).test_client()
    register(client, "alice")
    login(client, "alice")
    small = _commands_run(r, lambda: login(client, "alice"))
    for _ in range(cap + 5):
        login(client, "alice")
    large = _commands_run(r, lambda: login(client, "alice"))
    assert large <= small + 4, (small, large)
    assert r.zcard(keys.player_sessions("alice")) == cap


def test_session_ttl_follows_config(redis_server, r, clock):
    from wsgi import create_app

    client = create_app(make_config(redis_server.url, session_ttl=120), r, clock=clock
                        ).test_client()
    register(client, "alice")
    resp = login(client, "alice")
    assert resp.status_code == 200
    assert abs(resp.json["expires_at"] - (clock() + 120)) <= 2
    (session,) = scan_keys(r, keys.player_session("alice", "*"))
    assert 115 <= r.ttl(session) <= 120


def test_default_session_ttl_is_30_days(client, r, config):
    register(client, "alice")
    login(client, "alice")
    (session,) = scan_keys(r, keys.player_session("alice", "*"))
    assert config.session_ttl - 5 <= r.ttl(session) <= config.session_ttl == 30 * 86400


# --- Idempotency-Key on register ------------------------------------------------------------
def test_register_replays_the_first_answer(client, r):
    first = client.post("/v1/players", json={"name": "alice", "password": "secret1"},
                        headers={"Idempotency-Key": "k1"})
    again = client.post("/v1/players", json={"name": "alice", "password": "secret1"},
                        headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert first.json == again.json
    assert r.hget(keys.player("alice"), "id") == first.json["id"]
    other = client.post("/v1/players", json={"name": "alice", "password": "secret1"},
                        headers={"Idempotency-Key": "k2"})
    assert other.status_code == 409 and other.json["error"]["code"] == "name_taken"


def test_replays_do_not_count_against_the_registration_limit(limited):
    for _ in range(5):
        resp = limited.post("/v1/players", json={"name": "alice", "password": "secret1"},
                            headers={"Idempotency-Key": "same"},
                            environ_base={"REMOTE_ADDR": IP_A})
        assert resp.status_code == 201
    assert register(limited, "bob").status_code == 201
    assert register(limited, "carol").status_code == 201


@pytest.mark.parametrize("key,status", [("k" * 64, 201), ("k" * 65, 400), ("", 400)])
def test_idempotency_key_length(client, key, status):
    resp = client.post("/v1/players", json={"name": "alice", "password": "secret1"},
                       headers={"Idempotency-Key": key})
    assert resp.status_code == status
    if status == 400:
        assert resp.json["error"]["message"].startswith("Idempotency-Key")
        assert client.get("/v1/players/alice").status_code == 404


# --- secrets never echoed -------------------------------------------------------------------
def test_secrets_only_in_the_answer_that_issues_them(api, client, r):
    reg = register(client, "alice", password="hunter22")
    assert "hunter22" not in reg.get_data(as_text=True)
    resp = login(client, "alice", "hunter22")
    token = resp.json["token"]
    assert "hunter22" not in resp.get_data(as_text=True)
    bad = login(client, "alice", "hunter23")
    assert "hunter23" not in bad.get_data(as_text=True)
    pw_hash = r.hget(keys.player("alice"), "pw")
    sid, srv = api.server()
    server_key = api.token(srv)
    server_hash = r.hget(keys.server(sid), "key")
    headers = api.bearer(token)
    answers = [
        client.get("/v1/players/alice", headers=headers),
        client.get("/v1/players/alice/settings", headers=headers),
        client.put("/v1/players/alice/password", json={"old": "hunter22", "new": "hunter33"},
                   headers=headers),
        client.put("/v1/players/alice/password", json={"old": "nope000", "new": "hunter44"},
                   headers=headers),
        client.put("/v1/players/alice/password", json={"old": "hunter33", "new": "x"},
                   headers=headers),
        api.heartbeat(sid, srv),
        client.get(f"/v1/servers/{sid}/settings", headers=srv),
        client.get(f"/v1/status/{sid}"),
        client.post(f"/v1/servers/{sid}/key", headers=api.admin),
    ]
    for resp in answers:
        text = resp.get_data(as_text=True)
        for secret in ("hunter22", "hunter33", "hunter44", "nope000", pw_hash, token,
                       server_key, server_hash):
            assert secret not in text, (resp.request.path, secret)


def test_login_drops_expired_sessions_from_the_index(api, client, r, clock, config):
    api.player("pruner")
    api.login("pruner")
    assert r.zcard(keys.player_sessions("pruner")) == 2
    clock.advance(config.session_ttl + 1)  # both sessions expire
    api.login("pruner")
    assert r.zcard(keys.player_sessions("pruner")) == 1
    assert len(scan_keys(r, keys.player_session("pruner", "*"))) == 1


# --- README "Abuse budgets": parallel correct logins; failed logins per server key ----------------
def test_parallel_correct_logins_all_succeed(app, client, monkeypatch):
    """12 parallel correct logins for one name: attempts in flight are not failures, so none
    is refused (7 of 12 once got 429 "too many failed logins")."""
    import threading
    import time

    import functions.session_login as session_login

    register(client, "alice")
    real = session_login.verify_password

    def slow_verify(stored, password):
        time.sleep(0.2)  # a slow KDF: the whole burst is in flight at once
        return real(stored, password)

    monkeypatch.setattr(session_login, "verify_password", slow_verify)
    barrier, codes = threading.Barrier(12), []

    def one():
        c = app.test_client()
        barrier.wait()
        codes.append(login(c, "alice").status_code)

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 12


def test_failed_logins_per_server_key_are_limited(redis_server, r, clock):
    from wsgi import create_app

    config = make_config(redis_server.url, login_fails_per_server_minute=6)
    client = create_app(config, r, clock=clock).test_client()
    api = Api(client)
    sid, srv = api.server("guesser")
    _, other = api.server("other")
    for i in range(8):
        register(client, f"victim{i}", ip=f"10.1.0.{i}")
    register(client, "carol", ip="10.1.1.1")
    # one guess per name: no name lock is ever reached, the server's budget is
    for i in range(6):
        assert login(client, f"victim{i}", "wrong00", headers=srv).status_code == 401
    resp = login(client, "victim6", "wrong00", headers=srv)
    assert_locked(resp, 60)
    assert_locked(login(client, "carol", headers=srv), 60)  # every login with that key
    assert r.get(keys.login_fails_name_via("victim6", sid)) is None  # refused: not checked
    # other servers and direct logins go on
    assert login(client, "victim7", "wrong00", headers=other).status_code == 401
    assert login(client, "carol", headers=other).status_code == 200
    assert login(client, "carol").status_code == 200
    assert 0 < r.ttl(keys.login_lock_server(sid)) <= 60
    r.delete(keys.login_lock_server(sid))  # the minute is over
    assert login(client, "carol", headers=srv).status_code == 200
