"""player.settings.* and server.settings.*: one set of rules, two owners."""

from __future__ import annotations

import pytest

from tests.conftest import make_config


@pytest.fixture(params=["player", "server"])
def owner(request, api):
    """(settings URL prefix, owner's headers, another owner's headers) for either kind."""
    if request.param == "player":
        return "/v1/players/alice/settings", api.player("alice"), api.player("bob")
    sid, srv = api.server("one")
    _, other = api.server("two")
    return f"/v1/servers/{sid}/settings", srv, other


VALUES = [1, -2.5, "text", True, False, [1, "a", None], {"a": {"b": [1, 2]}}, "", 0, []]


def test_set_get_replace_delete(client, owner):
    url, headers, _ = owner
    assert client.get(url, headers=headers).json == {"settings": {}}
    for i, value in enumerate(VALUES):
        resp = client.put(f"{url}/k{i}", json={"value": value}, headers=headers)
        assert resp.status_code == 200 and resp.json == {"key": f"k{i}", "value": value}
    got = client.get(url, headers=headers).json["settings"]
    assert got == {f"k{i}": v for i, v in enumerate(VALUES)}
    client.put(f"{url}/k0", json={"value": {"new": 1}}, headers=headers)
    assert client.get(url, headers=headers).json["settings"]["k0"] == {"new": 1}
    resp = client.delete(f"{url}/k0", headers=headers)
    assert resp.status_code == 204 and resp.data == b""
    assert "k0" not in client.get(url, headers=headers).json["settings"]
    assert client.delete(f"{url}/k0", headers=headers).status_code == 204


def test_value_size_limit(client, owner, config):
    url, headers, _ = owner
    at_limit = "x" * (config.settings_value_max - 2)  # the quotes make it exactly the limit
    assert client.put(f"{url}/big", json={"value": at_limit}, headers=headers).status_code == 200
    resp = client.put(f"{url}/big", json={"value": at_limit + "x"}, headers=headers)
    assert resp.status_code == 413 and resp.json["error"]["code"] == "too_large"
    assert client.get(url, headers=headers).json["settings"]["big"] == at_limit


@pytest.fixture
def small_app(redis_server, r, clock):
    from wsgi import create_app

    return create_app(make_config(redis_server.url, settings_keys_max=3), r, clock=clock)


@pytest.mark.parametrize("kind", ["player", "server"])
def test_key_count_limit(small_app, kind):
    from tests.conftest import Api

    api = Api(small_app.test_client())
    if kind == "player":
        url, headers = "/v1/players/alice/settings", api.player("alice")
    else:
        sid, headers = api.server()
        url = f"/v1/servers/{sid}/settings"
    for i in range(3):
        assert api.client.put(f"{url}/k{i}", json={"value": i}, headers=headers).status_code == 200
    resp = api.client.put(f"{url}/k3", json={"value": 3}, headers=headers)
    assert resp.status_code == 409 and resp.json["error"]["code"] == "too_many_settings"
    assert api.client.put(f"{url}/k2", json={"value": 9}, headers=headers).status_code == 200
    api.client.delete(f"{url}/k0", headers=headers)
    assert api.client.put(f"{url}/k3", json={"value": 3}, headers=headers).status_code == 200
    assert api.client.get(url, headers=headers).json["settings"] == {"k1": 1, "k2": 9, "k3": 3}


@pytest.mark.parametrize("key,body,field,status", [
    ("k", {}, "value", 400),
    ("k", {"value": None}, "value", 400),
    ("k", {"value": 1, "extra": 2}, "extra", 400),
    ("bad key", {"value": 1}, "key", 400),
    ("k" * 65, {"value": 1}, "key", 400),
    ("k/x", {"value": 1}, None, 404),
])
def test_set_validation(client, owner, key, body, field, status):
    url, headers, _ = owner
    resp = client.put(f"{url}/{key}", json=body, headers=headers)
    assert resp.status_code == status
    if field:
        assert resp.json["error"]["message"].startswith(field)


def test_non_json_body(client, owner):
    url, headers, _ = owner
    resp = client.put(f"{url}/k", data=b"{nope", content_type="application/json",
                      headers=headers)
    assert resp.status_code == 400 and resp.json["error"]["message"].startswith("body")


def test_only_the_owner(client, owner, api):
    url, headers, other = owner
    client.put(f"{url}/k", json={"value": 1}, headers=headers)
    for who in ({}, other, api.admin):
        expected = 401 if not who else 403
        assert client.get(url, headers=who).status_code == expected
        assert client.put(f"{url}/k", json={"value": 2}, headers=who).status_code == expected
        assert client.delete(f"{url}/k", headers=who).status_code == expected
    assert client.get(url, headers=headers).json["settings"] == {"k": 1}


def test_player_and_server_settings_are_separate(api, client):
    alice = api.player("alice")
    sid, srv = api.server()
    client.put("/v1/players/alice/settings/k", json={"value": "p"}, headers=alice)
    client.put(f"/v1/servers/{sid}/settings/k", json={"value": "s"}, headers=srv)
    assert client.get("/v1/players/alice/settings", headers=alice).json["settings"] == {"k": "p"}
    assert client.get(f"/v1/servers/{sid}/settings", headers=srv).json["settings"] == {"k": "s"}
    # a server cannot act on a player's settings, nor a player on a server's
    assert client.get("/v1/players/alice/settings", headers=srv).status_code == 403
    assert client.get(f"/v1/servers/{sid}/settings", headers=alice).status_code == 403


def test_player_name_is_case_insensitive(api, client):
    alice = api.player("Alice")
    client.put("/v1/players/ALICE/settings/k", json={"value": 1}, headers=alice)
    assert client.get("/v1/players/alice/settings", headers=alice).json["settings"] == {"k": 1}


def test_prefetched_settings_never_reach_another_caller(api, client):
    """The settings read travels with the credential check; a wrong caller still sees none."""
    alice = api.player("alice")
    client.put("/v1/players/alice/settings/secret", json={"value": "x"}, headers=alice)
    bob = api.player("bob")
    for headers, status in ((bob, 403), ({"Authorization": "Bearer p.YWxpY2U.forged"}, 401),
                            ({}, 401)):
        resp = client.get("/v1/players/alice/settings", headers=headers)
        assert resp.status_code == status and b"secret" not in resp.data
