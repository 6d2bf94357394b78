from __future__ import annotations

import secrets
from typing import Any

from shared import delivery
from shared.auth import new_id
from shared.dispatch import Ctx
from shared.errors import InvalidInput
from shared.events import EVENTS
from shared.registry import ADMIN, operation
from shared.schema import Enum, Str, StrList
from shared.storage import webhooks

FORMATS = ("json", "discord")


@operation("webhook.create", "POST", "/v1/webhooks", auth=ADMIN, status=201, audit="id",
           secret_out=("secret",),
           fields=(Str("url", min_len=1, max_len=delivery.URL_MAX,
                       doc="http or https URL the events are POSTed to"),
                   StrList("events", Enum("event", EVENTS), max_items=len(EVENTS),
                           doc="at least one of " + ", ".join(EVENTS)),
                   Enum("format", FORMATS, required=False, default="json",
                        doc="json: {event, at, data}; discord: {content} for a Discord webhook"),
                   Str("secret", required=False, min_len=16, max_len=128, pattern=r"[!-~]+",
                       secret=True, doc="signing secret; one is generated when absent")),
           example={"request": {"url": "https://hooks.example.com/ssm",
                                "events": ["record.top", "server.offline"]},
                    "response": {"id": "w7h2k9d4x1qe", "url": "https://hooks.example.com/ssm",
                                 "events": ["record.top", "server.offline"], "format": "json",
                                 "created": 1717000000,
                                 "secret": "EXAMPLE-generated-webhook-secret"}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Register a webhook (admin): the worker POSTs the chosen events to its URL.

    Events: ``ban.created``, ``ban.lifted``, ``record.top`` (a new #1 on a board),
    ``season.ended``, ``server.online``, ``server.offline``. Each is POSTed as JSON
    ``{event, at, data}`` (``format: "discord"``: ``{"content": "<one readable line>"}``), with
    the headers ``X-SSM-Timestamp`` (the attempt's time, unix seconds) and ``X-SSM-Signature``,
    the hex HMAC-SHA-256 of the timestamp, a dot and the body, keyed with the webhook's secret,
    after an algorithm prefix (docs/WEBHOOKS.md has the details and each event's data).
    A delivery waits at most WEBHOOK_TIMEOUT_SECONDS seconds and is retried with back-off for
    WEBHOOK_RETRY_WINDOW_SECONDS seconds, then dropped and counted. Only events that happen
    after the webhook exists are sent.

    Without ``secret`` one is generated and returned as ``secret``: shown only in this answer (a
    repeat with the same Idempotency-Key answers without it). A given secret is not echoed.
    Only http and https URLs; an address in a loopback, private or link-local range (the URL's
    own, or what its name resolves to) is refused, here and again at every delivery, unless
    the backend runs with WEBHOOK_ALLOW_PRIVATE=1.

    Errors:
    - ``invalid_input`` (400): not an http(s) URL, a private address, or no event named.

    Internals:
    The secret is stored as given (HMAC needs it); webhook.list never shows it. docs/WEBHOOKS.md.
    """
    try:
        delivery.check_new_url(args["url"], bool(ctx.config.webhook_allow_private))
    except delivery.Refused as exc:
        raise InvalidInput("url", str(exc)) from None
    events = list(dict.fromkeys(args["events"]))
    if not events:
        raise InvalidInput("events", "must name at least one event")
    secret = args.get("secret") or secrets.token_urlsafe(32)
    webhook_id, created_ms = new_id(), ctx.now_ms()
    webhooks.create(ctx.redis, webhook_id, args["url"], events, args["format"], secret,
                    created_ms)
    out = {"id": webhook_id, "url": args["url"], "events": events, "format": args["format"],
           "created": created_ms // 1000}
    return out if args.get("secret") else {**out, "secret": secret}
