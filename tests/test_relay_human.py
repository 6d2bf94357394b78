"""HUMAN mode's presentation (relay/human.py): chosen by operation name, never guessed."""

from __future__ import annotations

from relay import human

BAN = {"id": "b1", "player": "alice", "ip": None, "scope": "global", "reason": "x",
       "by": "admin", "at": 1795511628, "expires_at": None}


def test_a_formatter_is_chosen_by_the_operations_name_not_by_the_answers_keys():
    listed = {"bans": [BAN], "next_cursor": None}
    assert human.lines("ban.list", listed) == [
        "1 ban(s)", "  ban b1: player alice everywhere, permanent - x "
                    "(by admin, 2026-11-24 09:13:48 UTC)"]
    # player.export also has a "bans" member: it reads as its members, not as a ban list
    export = {"account": {"name": "alice"}, "bans": [BAN], "mail": []}
    shown = human.lines("player.export", export)
    assert shown[:2] == ["account: name=alice", "bans: 1"]
    assert shown[-1] == "mail: []"
    # an answer of the expected operation but not its shape still reads (key: value)
    assert human.lines("ban.list", {"bans": None}) == ["bans: -"]


def test_every_formatter_names_an_operation_of_the_registry():
    from shared.registry import load
    assert set(human.FORMATTERS) <= set(load())
