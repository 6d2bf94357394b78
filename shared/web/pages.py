"""The two HTML pages: the public status list at ``/`` and the API reference at ``/docs``."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import jinja2

from shared.registry import Operation
from shared.web import apidoc

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)

STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;background:#111;color:#eee}
table{border-collapse:collapse;width:100%}th,td{padding:.4rem .7rem;border-bottom:1px solid #333;
text-align:left}th{color:#9cf}code{color:#fc9}h2{margin-top:2rem}.muted{color:#888}"""


def status_page(servers: list[dict[str, Any]], refresh: int = 10) -> str:
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
    """The API reference for client writers: areas in reading order, then per operation its
    route, who may call, relay command, fields with their limits, errors and an example."""
    return _TEMPLATES.get_template("docs.html").render(
        areas=apidoc.grouped(registry), who=apidoc.who, example=apidoc.example,
        errors=apidoc.errors, description=apidoc.description,
        field_docs=lambda op: apidoc.field_docs(op, config),
        html=lambda text: apidoc.to_html(text, config),
        text=lambda text: apidoc.inline_html(text, config),
        relay_port=config.relay_port, session_days=config.session_ttl // 86400,
        idempotency_hours=config.idempotency_ttl // 3600)
