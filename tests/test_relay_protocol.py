"""The relay's pure protocol layer: no sockets, no Redis."""

from __future__ import annotations

import json

import pytest

from relay import human
from relay import protocol as p
from shared.schema import Bool, Int, Str


def test_byte_exact_lines():
    assert p.GREETING == b'{"state": "OK", "msg": "CONNECTED serversquaredGlobal"}\r\n'
    assert p.ok("Mode: CLIENT") == b'{"state": "OK", "msg": "Mode: CLIENT"}\r\n'
    assert p.error(p.NO_MODE) == b'{"state": "ERROR", "msg": "No mode set."}\r\n'
    assert p.error(p.SERVER_FULL) == b'{"state": "ERROR", "msg": "Server full."}\r\n'
    assert p.error(p.TOO_MANY) == b'{"state": "ERROR", "msg": "Too many connections."}\r\n'
    assert p.error("x", "not_found", 3) == (
        b'{"state": "ERROR", "msg": "x", "code": "not_found", "retry_after": 3}\r\n')
    assert p.ok("m", {"a": 1}) == b'{"state": "OK", "msg": "m", "data": {"a": 1}}\r\n'
    assert p.push("message", "1-0", {"id": "1-0"}) == (
        b'{"state": "PUSH", "event": "message", "id": "1-0", "data": {"id": "1-0"}}\r\n')


@pytest.mark.parametrize("chunks,lines", [
    ([b"HW\r\n"], [b"HW"]),
    ([b"HW\n"], [b"HW"]),  # LF alone accepted
    ([b"H", b"W 3\r", b"\nQUIT\r\n"], [b"HW 3", b"QUIT"]),
    ([b"a\r\n\r\nb\r\n"], [b"a", b"", b"b"]),
    ([b"no newline yet"], []),
])
def test_line_reader_splits(chunks, lines):
    reader = p.LineReader()
    got = [line for chunk in chunks for line in reader.feed(chunk)]
    assert got == lines


@pytest.mark.parametrize("data,line", [
    (b"\xff\xfd\x18\xff\xfb\x1fMODE CLIENT\r\n", b"MODE CLIENT"),  # DO / WILL negotiation
    (b"MO\xff\xfa\x18\x01\xff\xf0DE\r\n", b"MODE"),  # subnegotiation dropped
    (b"\xff\xf1HW\r\n", b"HW"),  # NOP
    (b"a\xff\xffb\r\n", b"a\xffb"),  # escaped 0xFF is data
])
def test_line_reader_drops_telnet_iac(data, line):
    assert p.LineReader().feed(data) == [line]


def test_line_reader_iac_split_across_chunks():
    reader = p.LineReader()
    assert reader.feed(b"HW\xff") == []
    assert reader.feed(b"\xfb") == []
    assert reader.feed(b"\x01 2\r\n") == [b"HW 2"]


def test_overlong_line_is_one_none_then_reading_resumes():
    reader = p.LineReader()
    got = []
    for _ in range(25):  # a 200 KB line in 8 KB chunks
        got += reader.feed(b"x" * 8192)
    got += reader.feed(b"tail of it\r\nHW\r\n")
    assert got == [None, b"HW"]
    assert reader.feed(b"y" * p.MAX_LINE + b"\r\n") == [b"y" * p.MAX_LINE]
    assert reader.feed(b"y" * (p.MAX_LINE + 1) + b"\r\nok\n") == [None, b"ok"]


def test_parse_text_and_json():
    assert p.parse_text("  send  srv hello  there ") == ("SEND", "srv hello  there")
    assert p.parse_text("   ") == ("", "")
    nothing = p._NOTHING
    assert p.parse_json('{"cmd": "hw", "args": "3"}') == ("HW", "3", None, nothing, None)
    assert p.parse_json('{"cmd": "HW", "args": 3}') == ("HW", "3", None, nothing, None)
    assert p.parse_json('{"cmd": "x", "args": {"a": 1}, "idempotency_key": "k"}') == (
        "X", {"a": 1}, "k", nothing, None)
    assert p.parse_any("MODE CLIENT") == ("MODE", "CLIENT", None, nothing, None)
    assert p.parse_any('{"cmd": "MODE", "args": "CLIENT"}') == (
        "MODE", "CLIENT", None, nothing, None)


@pytest.mark.parametrize("rid", ["r-1", "", 7, 0, -3, 2.5, "x" * p.ID_MAX, 10 ** 63])
def test_parse_json_keeps_the_id(rid):
    got = p.parse_json(json.dumps({"cmd": "hw", "id": rid}))
    assert got.rid == rid and type(got.rid) is type(rid)


def test_replies_echo_the_id_last_and_only_when_given():
    assert p.ok("m", {"a": 1}, rid="q1") == (
        b'{"state": "OK", "msg": "m", "data": {"a": 1}, "id": "q1"}\r\n')
    assert p.ok("m", rid=5) == b'{"state": "OK", "msg": "m", "id": 5}\r\n'
    assert p.error("x", "not_found", 3, rid=0) == (
        b'{"state": "ERROR", "msg": "x", "code": "not_found", "retry_after": 3, "id": 0}\r\n')
    assert p.ok("m") == b'{"state": "OK", "msg": "m"}\r\n'


@pytest.mark.parametrize("line,msg", [
    ("HW 3", p.INVALID_JSON), ("[1]", p.INVALID_JSON), ('{"args": "x"}', p.INVALID_JSON),
    ('{"cmd": 5}', p.INVALID_JSON), ("[" * 5000, p.INVALID_JSON),
    ('{"cmd": "HW", "args": [1]}', p.BAD_ARGS), ('{"cmd": "HW", "args": true}', p.BAD_ARGS),
    ('{"cmd": "HW", "id": true}', p.BAD_ID), ('{"cmd": "HW", "id": null}', p.BAD_ID),
    ('{"cmd": "HW", "id": [1]}', p.BAD_ID), ('{"cmd": "HW", "id": {"a": 1}}', p.BAD_ID),
    ('{"cmd": "HW", "id": NaN}', p.BAD_ID), ('{"cmd": "HW", "id": 1e999}', p.BAD_ID),
    ('{"cmd": "HW", "id": "%s"}' % ("x" * (p.ID_MAX + 1)), p.BAD_ID),
    ('{"cmd": "HW", "id": 1%s}' % ("0" * p.ID_MAX), p.BAD_ID),
    ('{"cmd": "HW", "idempotency_key": 5}', p.BAD_KEY),
])
def test_parse_json_rejects(line, msg):
    with pytest.raises(p.ProtocolError, match=msg.replace(".", r"\.")):
        p.parse_json(line)


SEND = (Str("to"), Str("body", rest=True), Str("type", required=False))
BEAT = (Str("id"), Int("port"), Bool("public"))


@pytest.mark.parametrize("fields,line,raw", [
    (SEND, "srv1 hello  there ", {"to": "srv1", "body": "hello  there"}),
    (SEND, "srv1", {"to": "srv1"}),
    (SEND, "", {}),
    (BEAT, "a 80 yes", {"id": "a", "port": "80", "public": "yes"}),
    (BEAT, "a 80 yes extra words", {"id": "a", "port": "80", "public": "yes extra words"}),
    ((), "ignored words", {}),
])
def test_words_fill_fields_in_order(fields, line, raw):
    got, text_fields = p.words(fields, line)
    assert got == raw
    assert text_fields == frozenset(raw)


def test_human_lines():
    assert human.lines(None, None) == ["OK"]
    assert human.lines(None, {"id": "a", "n": 3, "ok": True, "x": None}) == [
        "id: a", "n: 3", "ok: true", "x: -"]
    assert human.lines(None, {"records": [{"rank": 1, "player": "bob"}], "next": None}) == [
        "records: 1", "  rank=1, player=bob", "next: -"]
    assert human.lines(None, {"body": "two\r\nlines"}) == ["body: two\\r\\nlines"]
    assert human.lines(None, {"player": {"id": "x"}}) == ["player: id=x"]


def test_human_lines_show_utc_times_and_server_names():
    names = {"gg28": "Fun CTF"}
    assert human.lines(None, {"created": 1795511628, "last_seen": None, "server": "gg28"},
                         names) == ["created: 2026-11-24 09:13:48 UTC", "last_seen: -",
                                    "server: Fun CTF (gg28)"]
    assert human.lines(None, {"records": [{"server": "gg28", "at": 1795511628.5, "score": 3}]},
                         names) == ["records: 1",
                                    "  server=Fun CTF (gg28), at=2026-11-24 09:13:48 UTC, score=3"]
    assert human.lines(None, {"server": "gone", "at": 1e300, "created": True}, names) == [
        "server: gone", "at: 1e+300", "created: true"]
    assert human.server_ids({"server": "a", "records": [{"server": "b"}, {"server": "a"}],
                         "x": {"server": None}}) == ["a", "b"]


def test_human_lines_show_seasons_by_day_with_their_top_3():
    listed = {"board": "ctf.daily", "reset": "daily", "current": 1, "seasons": [
        {"season": 1, "start": 1795478400, "end": 1795564800, "top": []},
        {"season": 0, "start": 1795392000, "end": 1795478400,
         "top": [{"rank": 1, "player": "alice", "score": 9},
                 {"rank": 2, "player": "bob", "score": 4}]}]}
    assert human.lines("season.list", listed) == [
        "ctf.daily: season 1 now, reset daily",
        "  season 1 (current), 2026-11-24 to 2026-11-25: no records",
        "  season 0, 2026-11-23 to 2026-11-24: 1. alice 9, 2. bob 4"]
    endless = {"board": "b", "reset": None, "current": 0,
               "seasons": [{"season": 0, "start": 1795392000, "end": None, "top": []}]}
    assert human.lines("season.list", endless)[:2] == ["b: season 0 now, reset never",
                                          "  season 0 (current), 2026-11-23 to now: no records"]


def test_stream_key_orders_ids():
    ids = ["0", "5", "5-1", "10-0", "9-99"]
    assert sorted(ids, key=p.stream_key) == ["0", "5", "5-1", "9-99", "10-0"]
    assert json.loads(p.push("mail", "1-1", {}))["event"] == "mail"


@pytest.mark.parametrize("data", [
    {"a": [{"b": 1, "c": "é\u2028\"\\"}, {}], "e": [], "f": {}, "g": None, "h": 1.5, "i": True},
    {"deep": [[1, [2, [3, [4, {"x": [5]}]]]]]},
    {1: "int key", "s": 2},  # json turns int keys into strings: rendered whole, the same
    [1, "two", None],
    "text",
    {"messages": [{"id": f"{i}-0", "body": "x" * 100} for i in range(50)]},
])
def test_lines_with_data_are_exactly_json_dumps(data):
    body = {"state": "OK", "msg": "m", "data": data, "id": 7}
    assert p.json_line(body) == (json.dumps(body) + "\r\n").encode()


def test_a_line_past_one_mib_is_given_up_not_rendered_whole():
    huge = {"messages": [{"body": "x" * 8000} for _ in range(1000)]}  # ~8 MB
    with pytest.raises(p.LineTooLarge) as err:
        p.ok("message.read", huge)
    assert (err.value.code, err.value.status) == ("too_large", 413)
    assert p.OUT_LINE_MAX < err.value.size <= p.OUT_LINE_MAX + 8100  # stopped at the cap
    just = {"body": "x" * (p.OUT_LINE_MAX - 100)}
    assert len(p.ok("m", just)) <= p.OUT_LINE_MAX + 2
    with pytest.raises(p.LineTooLarge):
        p.text(["y" * 1000] * 1100)  # HUMAN mode: 1 MiB in all
