"""Migration 1: list the boards created before ``board.list`` existed.

The first releases wrote a board as its meta hash alone (``ssm:{b:<board>}:meta``); the board
index ``{boards}`` (``keys.boards_index()``) that ``board.list`` reads came later and is written
by ``board.create`` only. This step scans every primary for board meta hashes and adds their ids
to the index. Idempotent (SADD), resumable (run again from the start), cluster-safe (SCAN per
primary; each SADD touches the ``{boards}`` group only). The index stays a superset.
"""

from __future__ import annotations

from typing import Any

from shared import keys
from shared.redis_conn import primaries

BATCH = 500


def run(r: Any) -> int:
    before, after = keys.around(keys.board(keys.HOLE))
    ids: list[str] = []
    for node in primaries(r):
        for key in node.scan_iter(match=f"{before}*{after}", count=1000):
            key = key.decode() if isinstance(key, bytes) else key
            board_id = key[len(before):-len(after)]
            if board_id and "}" not in board_id:
                ids.append(board_id)
    added = 0
    for i in range(0, len(ids), BATCH):
        added += r.sadd(keys.boards_index(), *ids[i:i + BATCH])
    return added
