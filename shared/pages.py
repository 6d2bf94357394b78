"""The two HTML pages: the public status list at ``/`` and the API reference at ``/docs``."""

from __future__ import annotations

import html
from typing import Any

from shared.openapi import who
from shared.registry import Operation

STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;background:#111;color:#eee}
table{border-collapse:collapse;width:100%}th,td{padding:.4rem .7rem;border-bottom:1px solid #333;
text-align:left}th{color:#9cf}code{color:#fc9}h2{margin-top:2rem}.muted{color:#888}"""


def status_page(servers: list[dict[str, Any]], now: float, refresh: int = 10) -> str:
    """Live public servers, refreshing itself every ``refresh`` seconds."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(s['name'])}</td><td><code>{e(s['host'])}:{s['port']}</code></td>"
        f"<td>{e(s['map'])}</td><td>{e(s['mode'])}</td>"
        f"<td>{s['player_count']}/{s['max_players']}</td><td>{e(s['version'])}</td></tr>"
        for s in servers)
    if not rows:
        rows = '<tr><td colspan="6" class="muted">No public server is live right now.</td></tr>'
    total = sum(s["player_count"] for s in servers)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{refresh}"><meta name="viewport" content="width=device-width">
<title>SSMGlobal servers</title><style>{STYLE}</style></head><body>
<h1>SSMGlobal — live servers</h1>
<p class="muted">{len(servers)} servers, {total} players. This page refreshes every {refresh} s.
API: <a href="/docs">/docs</a></p>
<table><thead><tr><th>Name</th><th>Address</th><th>Map</th><th>Mode</th><th>Players</th>
<th>Version</th></tr></thead><tbody>{rows}</tbody></table></body></html>"""


def docs_page(registry: dict[str, Operation], config: Any) -> str:
    """Every operation: route, relay command, who may call, inputs."""
    e = html.escape
    parts = []
    for op in registry.values():
        fields = "".join(
            f"<li><code>{e(f.name)}</code> ({f.where}, {f.kind}"
            f"{'' if f.required else ', optional'}){' — ' + e(f.doc) if f.doc else ''}</li>"
            for f in op.fields)
        aliases = ", ".join(op.aliases)
        parts.append(
            f"<h2 id='{e(op.name)}'><code>{e(op.name)}</code></h2><p>{e(op.summary)}</p>"
            f"<p><code>{op.method} {e(op.path)}</code> → {op.status} · relay: "
            f"<code>{e(op.name)}</code>{' (' + e(aliases) + ')' if aliases else ''} · "
            f"who: {e(who(op))}</p>"
            + (f"<p class='muted'>{e(op.description)}</p>" if op.description else "")
            + (f"<ul>{fields}</ul>" if fields else ""))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>SSMGlobal API</title><style>{STYLE}</style></head><body><h1>SSMGlobal API</h1>
<p>JSON over HTTP, prefix <code>/v1</code>; <code>Authorization: Bearer &lt;token&gt;</code>.
Errors: <code>{{"error": {{"code", "message"}}}}</code>. Machine-readable:
<a href="/openapi.json">/openapi.json</a>. The same operations are relay commands on TCP port
{config.relay_port}.</p>{''.join(parts)}</body></html>"""
