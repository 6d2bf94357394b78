from __future__ import annotations

from typing import Any

from functions.webhook_delete import WEBHOOK_ID
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.registry import ADMIN, operation
from shared.storage import webhooks


@operation("webhook.deliveries", "GET", "/v1/webhooks/{id}/deliveries", auth=ADMIN,
           fields=(WEBHOOK_ID,),
           example={"request": {"id": "w7h2k9d4x1qe"},
                    "response": {"deliveries": [
                        {"at": 1717000001.25, "event": "record.top",
                         "event_id": "b:ctf.ac_desert/1717000000250-0", "attempt": 1,
                         "status": 200, "error": None, "outcome": "delivered", "ms": 42}]}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """The webhook's last 50 delivery attempts (admin), newest first.

    Each attempt: ``at`` (when it was made), ``event`` and ``event_id`` (also sent as the
    ``X-SSM-Event-Id`` header, the same for every attempt of one event), ``attempt`` (1 for the
    first), ``status`` (the HTTP status, null when no answer came), ``error`` (null when
    delivered), ``outcome`` (``delivered``; ``failed``: to be retried; ``dropped``: the last
    attempt failed, the event is given up) and ``ms`` (how long it took).

    Errors:
    - ``not_found`` (404): no webhook has this id.
    """
    got = webhooks.deliveries(ctx.redis, args["id"])
    if got is None:
        raise NotFound(f"no webhook with id {args['id']}")
    return {"deliveries": got}
