"""Render ``bench/results.json`` as the Markdown tables of docs/BENCHMARKS.md and the README.

``python -m bench.report [results.json]``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TARGETS = [
    ("http_read_ratio_min", ">= 0.7", lambda v: v >= 0.7),
    ("http_write_ratio_min", ">= 0.5", lambda v: v >= 0.5),
    ("redis_roundtrips_max", "<= 2", lambda v: v <= 2),
    ("relay_kib_per_conn_ratio", "<= 3", lambda v: v <= 3),
    ("relay_cmd_ratio", ">= 0.4", lambda v: v >= 0.4),
    ("fanout_p99_ms", "< 100", lambda v: v < 100),
    ("mail_notice_p99_ms", "< 250", lambda v: v < 250),
    ("fleet_errors", "== 0", lambda v: v == 0),
    ("logins_per_s", "(shown)", None),
]


def render(d: dict) -> str:
    det = d["details"]
    out = ["| figure | value | target | |", "|---|---:|---|---|"]
    for key, target, ok in TARGETS:
        value = d.get(key)
        verdict = "" if ok is None or value is None else ("PASS" if ok(value) else "MISS")
        out.append(f"| `{key}` | {value} | {target} | {verdict} |")
    out += ["", "| operation | req/s | p50 ms | p99 ms | ratio to /readyz | Redis round trips |",
            "|---|---:|---:|---:|---:|---:|"]
    rts = det.get("roundtrips", {})
    for name, op in sorted(det.get("ops", {}).items()):
        kdf = " (KDF-bound)" if op.get("kdf") else ""
        out.append(f"| `{name}`{kdf} | {op['rps']:.0f} | {op['p50_ms']:.1f} | "
                   f"{op['p99_ms']:.1f} | {op['ratio']:.2f} | "
                   f"{rts.get(name, {}).get('roundtrips', '-')} |")
    out.append(f"| `GET /readyz` (ceiling) | {d.get('http_readyz_rps', 0):.0f} | | | 1 | 1 |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results.json")
    sys.stdout.write(render(json.loads(path.read_text())))
