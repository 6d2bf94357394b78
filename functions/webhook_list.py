from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx
from shared.registry import ADMIN, operation
from shared.storage import webhooks


@operation("webhook.list", "GET", "/v1/webhooks", auth=ADMIN,
           example={"request": {},
                    "response": {"webhooks": [{"id": "w7h2k9d4x1qe",
                                               "url": "https://hooks.example.com/ssm",
                                               "events": ["record.top", "server.offline"],
                                               "format": "json", "created": 1717000000,
                                               "dropped": 0}]}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:  # noqa: ARG001
    """Every webhook (admin), oldest first: id, url, events, format, created, dropped.

    ``dropped`` counts the events given up on after WEBHOOK_RETRY_WINDOW_SECONDS seconds of
    failed attempts. Secrets are never shown again after ``webhook.create``.
    """
    return {"webhooks": [webhooks.public(h) for h in webhooks.all_hooks(ctx.redis)]}
