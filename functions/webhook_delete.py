from __future__ import annotations

from typing import Any

from shared import queues
from shared.dispatch import Ctx
from shared.errors import NotFound
from shared.registry import ADMIN, operation
from shared.schema import Str
from shared.storage import webhooks

WEBHOOK_ID = Str("id", where="path", pattern=r"[a-z0-9]{1,32}", doc="the webhook's id")


@operation("webhook.delete", "DELETE", "/v1/webhooks/{id}", auth=ADMIN, audit="id",
           fields=(WEBHOOK_ID,),
           example={"request": {"id": "w7h2k9d4x1qe"}, "response": None})
def handler(ctx: Ctx, args: dict[str, Any]) -> None:
    """Delete a webhook (admin): nothing more is sent to it, retries included. Answers 204.

    Its deliveries waiting in the queue go with it, so a backlog for a deleted webhook does not
    hold up the others.

    Errors:
    - ``not_found`` (404): no webhook has this id.
    """
    if not webhooks.delete(ctx.redis, args["id"]):
        raise NotFound(f"no webhook with id {args['id']}")
    queues.purge_webhook(ctx.queue, args["id"])
