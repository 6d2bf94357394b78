"""The audit log: one stream in ``{audit}``, appended by ``shared.dispatch.run`` after every
successful call of an operation that declares ``audit=`` (see shared/registry.py).

An entry holds op, by (``admin``, ``server:<id>`` or ``player:<name>``), target (the declared
fields' values, never a secret: the registry refuses to audit a secret field), reason and at
(unix seconds). Each append trims, by MINID, what is older than KEEP_DAYS, so the stream holds
at least the last KEEP_DAYS days and little more.
"""

from __future__ import annotations

from typing import Any

from shared import keys

KEEP_DAYS = 365  # README "Moderation": kept at least 365 days
CURSOR = r"[0-9]{1,19}-[0-9]{1,19}"


def record(r: Any, op: str, by: str, target: str, reason: str, now: float) -> str:
    """Append one entry (one round trip); returns its id."""
    oldest = int((now - KEEP_DAYS * 86400) * 1000)
    return r.xadd(keys.audit_log(), {"op": op, "by": by, "target": target, "reason": reason,
                                     "at": f"{now:.3f}"},
                  minid=max(oldest, 0), approximate=False)


def page(r: Any, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Entries newest first, after ``cursor`` (the last id of the previous page); (entries,
    next cursor or None). One round trip."""
    got = r.xrevrange(keys.audit_log(), max=f"({cursor}" if cursor else "+", min="-",
                      count=limit + 1)
    entries = [{"op": f.get("op", ""), "by": f.get("by", ""), "target": f.get("target", ""),
                "reason": f.get("reason") or None, "at": float(f.get("at", 0))}
               for _, f in got[:limit]]
    return entries, (got[limit - 1][0] if len(got) > limit else None)


def caller_label(caller: Any) -> str:
    if caller.kind == "admin":
        return "admin"
    return f"{caller.kind}:{caller.name if caller.kind == 'player' else caller.id}"


def target_of(fields: tuple[str, ...], args: dict[str, Any], body: Any) -> str:
    """The declared target fields' values, from the arguments or else the answer: the first
    plain, the others as ``name=value`` when present."""
    out = []
    for i, name in enumerate(fields):
        value = args.get(name)
        if value is None and isinstance(body, dict):
            value = body.get(name)
        if value is None:
            continue
        out.append(str(value) if i == 0 else f"{name}={value}")
    return " ".join(out)
