"""Known builds of the (server)² core (docs/API.md): ``mod.build.*`` (admin, audited), the
CLI's ``mod build``, and the core's HTTP calls ``/test.html`` and
``/serversquaredmodification/latest.txt``."""

from __future__ import annotations

import pytest

from shared import keys

A = "3f786850e387550fdab836ed7e6dc881de23001b"
B = "89e6c98d92887913cadf06b2adb97f26cde4849b"


def put(client, api, sha1, version, headers=None):
    return client.put(f"/v1/mod/builds/{sha1}", json={"version": version},
                      headers=api.admin if headers is None else headers)


def listed(client, api):
    resp = client.get("/v1/mod/builds", headers=api.admin)
    assert resp.status_code == 200, resp.json
    return [(b["sha1"], b["version"]) for b in resp.json["builds"]]


def test_set_is_201_then_200_and_normalises_the_checksum(client, api, r, clock):
    made = put(client, api, A.upper(), "9.0.0")
    assert made.status_code == 201
    assert made.json == {"sha1": A, "version": "9.0.0", "at": pytest.approx(clock(), abs=2)}
    again = put(client, api, A, "9.0.1 Beta Release 3")
    assert again.status_code == 200 and again.json["version"] == "9.0.1 Beta Release 3"
    assert listed(client, api) == [(A, "9.0.1 Beta Release 3")]
    assert list(r.hgetall(keys.mod_builds())) == [A]


def test_list_is_newest_first_and_newest_is_the_build_set_last(client, api):
    assert listed(client, api) == []
    assert put(client, api, A, "1.0").status_code == 201
    assert put(client, api, B, "2.0").status_code == 201
    assert listed(client, api) == [(B, "2.0"), (A, "1.0")]
    assert client.get("/serversquaredmodification/latest.txt").data == b"2.0"
    assert put(client, api, A, "1.0").status_code == 200  # set again: the newest now
    assert listed(client, api) == [(A, "1.0"), (B, "2.0")]
    assert client.get("/serversquaredmodification/latest.txt").data == b"1.0"


def test_delete_is_204_then_404(client, api):
    put(client, api, A, "1.0")
    put(client, api, B, "2.0")
    assert client.delete(f"/v1/mod/builds/{B.upper()}", headers=api.admin).status_code == 204
    assert listed(client, api) == [(A, "1.0")]
    gone = client.delete(f"/v1/mod/builds/{B}", headers=api.admin)
    assert gone.status_code == 404 and gone.json["error"]["code"] == "not_found"
    assert client.get("/serversquaredmodification/latest.txt").data == b"1.0"


@pytest.mark.parametrize("sha1,version,field", [
    (A[:-1], "1.0", "sha1"), (A + "0", "1.0", "sha1"), ("g" * 40, "1.0", "sha1"),
    (A, "", "version"), (A, "x" * 33, "version"), (A, " 1.0", "version"),
    (A, "1.0 ", "version"), (A, "1.0\n", "version"), (A, "1.0\t2", "version"),
    (A, "versión", "version"), (A, "1.0\x7f", "version"),
])
def test_bad_checksum_or_version_is_invalid_input(client, api, sha1, version, field):
    resp = put(client, api, sha1, version)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["code"] == "invalid_input" and field in resp.json["error"]["message"]
    assert listed(client, api) == []


def test_thirty_two_printable_characters_are_a_version(client, api):
    version = "A" + " !~" * 10 + "z"
    assert len(version) == 32 and put(client, api, A, version).status_code == 201


def test_only_the_admin(client, api):
    server_id, srv = api.server()
    alice = api.player("alice")
    for headers, status in (({}, 401), (srv, 403), (alice, 403)):
        assert put(client, api, A, "1.0", headers).status_code == status
        assert client.get("/v1/mod/builds", headers=headers).status_code == status
        assert client.delete(f"/v1/mod/builds/{A}", headers=headers).status_code == status
    assert listed(client, api) == []


def test_set_and_delete_are_audited(client, api):
    put(client, api, A.upper(), "9.0.0")
    client.delete(f"/v1/mod/builds/{A}", headers=api.admin)
    entries = client.get("/v1/audit", headers=api.admin).json["entries"]
    assert [(e["op"], e["by"], e["target"]) for e in entries] == [
        ("mod.build.delete", "admin", A), ("mod.build.set", "admin", f"{A} version=9.0.0")]


def test_the_cores_http_calls(client, api):
    test = client.get("/test.html")
    assert (test.status_code, test.data) == (200, b"")
    none = client.get("/serversquaredmodification/latest.txt")
    assert none.status_code == 404 and none.json["error"]["code"] == "not_found"
    put(client, api, A, "9.0.0")
    latest = client.get("/serversquaredmodification/latest.txt")
    assert (latest.status_code, latest.data) == (200, b"9.0.0")
    assert latest.mimetype == "text/plain"


def test_cli_add_list_delete(cli, client, api):
    made = cli("mod", "build", "add", A.upper(), "9.0.0 Beta Release 3")
    assert (made["sha1"], made["version"]) == (A, "9.0.0 Beta Release 3")
    cli("mod", "build", "add", B, "9.0.1")
    assert [(b["sha1"], b["version"]) for b in cli("mod", "build", "list")["builds"]] == [
        (B, "9.0.1"), (A, "9.0.0 Beta Release 3")]
    assert cli("mod", "build", "delete", B) == {"deleted": B}
    assert listed(client, api) == [(A, "9.0.0 Beta Release 3")]
    assert cli("mod", "build", "delete", B, ok=False).strip() == \
        f"Error: not_found: no known build with checksum {B}"
    assert "sha1" in cli("mod", "build", "add", "xyz", "1.0", ok=False)
    entries = client.get("/v1/audit", headers=api.admin).json["entries"]
    assert [e["op"] for e in entries] == ["mod.build.delete", "mod.build.set", "mod.build.set"]
