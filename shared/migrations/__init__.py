"""Data versions and migrations (docs/OPERATIONS.md "Upgrades").

The store keeps one number, the **data version** (``keys.data_version()``, alone in its
``{data}`` group): how many of :data:`STEPS` the data has been brought through. This release
understands :data:`VERSION` (``len(STEPS)``). A store written before versions were kept has no
version: it is version 0.

- :func:`migrate` (the worker at start, and ``python -m shared.up`` before the processes start)
  runs every step above the stored version, in order, raising the version after each one. Each
  step is one module here, named for what it does, whose ``run(r)`` is idempotent (running it
  twice changes nothing the second time), resumable (a step stopped half-way is simply run again)
  and cluster-safe (every script or MULTI touches one hash-tag group; scans visit every primary).
- :func:`check` (the web and the relay at start) never waits for a worker: on an empty store it
  stamps :data:`VERSION`; on data at or below :data:`VERSION` it returns at once (the process
  serves, the worker brings the data forward); only data newer than :data:`VERSION` raises
  :class:`DataTooNew`, which the process reports and exits with.

Add a migration: a new module with ``run(r) -> int`` (how many things it changed) and a
one-line docstring, appended to :data:`STEPS`. Never reorder or remove a step: the version is a
position in this list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared import keys
from shared.migrations import index_old_sessions, list_old_boards, move_ban_pushes
from shared.redis_conn import Lua, primaries

STEPS = (list_old_boards, index_old_sessions, move_ban_pushes)
VERSION = len(STEPS)


class DataTooNew(Exception):
    """The store's data version is newer than this release understands."""

    def __init__(self, found: int):
        self.found = found
        super().__init__(
            f"the data in Redis is at data version {found}, newer than this release "
            f"understands (data version {VERSION}): run the newer release that wrote it, or "
            f"restore a backup made before the upgrade (python -m shared.backup restore)")


# Raise the version to ARGV[1] unless it is there already (a second migrator, or a newer
# release, got there first): never lowers it. Returns the version found.
_RAISE = Lua("""
local found = tonumber(redis.call('GET', KEYS[1]) or '0')
if found < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return found
""")


def read_version(r: Any) -> int | None:
    """The stored data version, or None when none is stored (an empty store, or one written
    before versions were kept)."""
    value = r.get(keys.data_version())
    return None if value is None else int(value)


def is_empty(r: Any) -> bool:
    """No SSMGlobal key on any primary (RQ's keys on a shared single Redis do not count)."""
    for node in primaries(r):
        for _ in node.scan_iter(match=keys.P + "*", count=1000):
            return False
    return True


def stored_or_stamp(r: Any) -> int:
    """The data version: the stored one; :data:`VERSION` stamped on an empty store (the first
    process to meet it); 0 for data from before versions were kept."""
    found = read_version(r)
    if found is not None:
        return found
    if is_empty(r):
        r.set(keys.data_version(), VERSION, nx=True)
        return read_version(r) or 0
    return 0


def check(r: Any) -> int:
    """For a process that serves (web, relay): the data version, stamping an empty store;
    raises :class:`DataTooNew` on data newer than this release. Never waits."""
    found = stored_or_stamp(r)
    if found > VERSION:
        raise DataTooNew(found)
    return found


def migrate(r: Any, say: Callable[[str], None] = lambda line: None) -> list[str]:
    """Bring the data to :data:`VERSION`: run each step above the stored version, raising the
    version after each. Returns the names of the steps run; ``say`` gets one line per step.
    Raises :class:`DataTooNew` on newer data."""
    found = check(r)
    done = []
    for number in range(found + 1, VERSION + 1):
        step = STEPS[number - 1]
        name = step.__name__.rsplit(".", 1)[-1]
        changed = step.run(r)
        _RAISE(r, [keys.data_version()], [number])
        say(f"data version {number}: {name} ({changed} changed)")
        done.append(name)
    return done


def at_start(r: Any, who: str, run_steps: bool) -> bool:
    """A process's start: :func:`migrate` (``run_steps``: the worker, ``shared.up``) or
    :func:`check` (web, relay). False, after one line on stderr naming both versions, when the
    data is newer than this release (the process then exits). Redis not answering is no reason
    to stop here: the process starts as it did before, and the worker migrates later."""
    import sys

    from shared.redis_conn import REDIS_ERRORS

    try:
        if run_steps:
            migrate(r, lambda line: print(f"{who}: {line}", flush=True))
        else:
            check(r)
    except DataTooNew as err:
        print(f"{who}: {err}", file=sys.stderr, flush=True)
        return False
    except REDIS_ERRORS as err:
        print(f"{who}: data version not checked ({err})", file=sys.stderr, flush=True)
    return True
