"""HUMAN mode's presentation (relay/human.py): chosen by operation name, never guessed."""

from __future__ import annotations

from relay import human
from shared.registry import load

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
    assert set(human.FORMATTERS) <= set(load())


def test_a_mail_notice_reads_well_with_and_without_a_subject():
    got = human.mail_notice([("m1", "bob", "rematch?"), ("m2", "carol", ""), ("m3", "", "x")], 3)
    assert got == (b"\r\n* New mail from bob: rematch? (READMAIL m1)\r\n"
                   b"* New mail from carol (READMAIL m2)\r\n* 3 unread\r\n> ")


def test_human_mail_words_take_a_subject_before_a_bar():
    words = human.WORDS["mail.send"].parse
    assert words("bob Rematch? | same map at 9") == {
        "to": "bob", "subject": "Rematch?", "body": "same map at 9"}
    assert words("bob no bar, all body") == {"to": "bob", "body": "no bar, all body"}
    assert words("bob | a|b") == {"to": "bob", "subject": "", "body": "a|b"}
    assert words("bob subject only |") == {"to": "bob", "subject": "subject only", "body": ""}
    assert words("bob") == {"to": "bob"}
    assert words("  ") == {}


def test_help_index_and_topic_lines():
    index = human.help_index(["QUIT"], [("mail", "Mail between players", 8),
                                        ("moderation", "Moderation", 1)])
    assert index == [
        "Available commands:", "  QUIT", "Topics (HELP <topic> lists its commands):",
        "  mail        Mail between players (8 commands)",
        "  moderation  Moderation (1 command)",
        "HELP <command> shows one command; HELP ALL lists every command.",
        "Source: https://github.com/serversquared/ssmglobal (AGPL-3.0-or-later)"]
    assert human.help_topic("mail", "Mail", ["  a"]) == ["Mail (topic mail):", "  a"]
