"""Mail notices for HUMAN connections logged in as a player.

Mail notices proper go to the inbox of the server a player is online on (workers); a person on
telnet is on no server, so the relay polls instead: every POLL seconds, one pipelined read of
the mailbox sequence of every watched player (one round trip per process, whatever the number
of players); for a mailbox that grew, one more round trip fetches the new mails' sender and
subject and each watching connection gets a text line.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from relay import human
from shared import keys
from shared.redis_conn import REDIS_OR_OS_ERRORS

log = logging.getLogger("ssm.relay")

POLL = 2.0


class MailWatch:
    def __init__(self, sync_redis: Any, pool: Any) -> None:
        self.r, self.pool = sync_redis, pool
        self.watch: dict[Any, str] = {}  # connection -> lowercase player name
        self.poll = POLL

    def add(self, conn: Any, lname: str) -> None:
        self.watch[conn] = lname

    def remove(self, conn: Any) -> None:
        self.watch.pop(conn, None)

    def _fetch(self, seen: dict[str, int]) -> dict[str, tuple[int, list[list[Any]], int]]:
        """For each player whose mailbox sequence passed ``seen``: (seq, new mails, unread)."""
        names = list(seen)
        pipe = self.r.pipeline(transaction=False)
        for lname in names:
            pipe.get(keys.mail_seq(lname))
        grown = {n: int(s) for n, s in zip(names, pipe.execute(), strict=True)
                 if s and int(s) > seen[n]}
        if not grown:
            return {}
        pipe = self.r.pipeline(transaction=False)
        for lname in grown:
            pipe.zrangebyscore(keys.mailbox(lname), f"({seen[lname]}", "+inf")
            pipe.zcard(keys.mailbox_unread(lname))
        got = pipe.execute()
        pipe = self.r.pipeline(transaction=False)
        ids: dict[str, list[str]] = {}
        for i, lname in enumerate(grown):
            ids[lname] = got[2 * i][-5:]  # at most five lines per poll and player
            for mail_id in ids[lname]:
                pipe.hmget(keys.mail(lname, mail_id), "from", "subject")
        heads = iter(pipe.execute())
        return {lname: (grown[lname], [[m, *next(heads)] for m in ids[lname]], got[2 * i + 1])
                for i, lname in enumerate(grown)}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.poll)
            if not self.watch:
                continue
            seen: dict[str, int] = {}
            for conn, lname in self.watch.items():
                seen[lname] = min(seen.get(lname, conn.mail_seq), conn.mail_seq)
            try:
                news = await loop.run_in_executor(self.pool, self._fetch, seen)
            except REDIS_OR_OS_ERRORS as exc:
                log.warning("mail watch: redis error (%s)", type(exc).__name__)
                continue
            except Exception:  # a bug or bad data must not stop mail notices for everyone
                log.warning("mail watch: fetch failed", exc_info=True)
                continue
            for conn, lname in list(self.watch.items()):
                if lname in news and news[lname][0] > conn.mail_seq:
                    seq, mails, unread = news[lname]
                    conn.mail_seq = seq
                    try:
                        out = human.mail_notice(mails, unread)
                    except Exception:  # one bad mail entry: skip this notice, keep going
                        log.warning("mail watch: skipping a notice for %s", lname, exc_info=True)
                        continue
                    conn.send(out)
