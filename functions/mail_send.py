from __future__ import annotations

from typing import Any

from shared import faults
from shared.auth import new_id
from shared.dispatch import Ctx
from shared.errors import (
    Blocked,
    Conflict,
    Forbidden,
    InvalidInput,
    MailboxFull,
    NotFound,
    RateLimited,
    TooManyUnread,
)
from shared.registry import PLAYER, SERVER, operation
from shared.schema import PLAYER_NAME, TEXT, Str
from shared.storage import limits, mail, status


@operation("mail.send", "POST", "/v1/mail", auth=PLAYER | SERVER, status=201, aliases=("MAIL",),
           fields=(Str("to", pattern=PLAYER_NAME, doc="recipient player name"),
                   Str("body", min_len=1, max_len="mail_body_max", pattern=TEXT, rest=True,
                       doc="text; tab and line breaks allowed, other control characters not"),
                   Str("subject", required=False, default="", max_len="mail_subject_max"),
                   Str("from", required=False, pattern=PLAYER_NAME,
                       doc="sending player; required when a server sends for a player")),
           example={"request": {"to": "bob", "subject": "rematch?",
                                "body": "Good game! Same map tonight at 21:00?"},
                    "response": {"id": "m4t8z1c6v0bn"}})
def handler(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """Send mail to a player; it is in their mailbox before the answer comes.

    A player sends as themselves (leave ``from`` out). A game server may send for a player online
    on it: ``from`` names that player. A mailbox holds at most MAILBOX_MAX mails; mail is never
    dropped to make room. One sender may have at most MAIL_UNREAD_PER_SENDER_MAX unread mails in
    one mailbox (reading or deleting one frees a place). When the recipient is online, their game
    server gets a notice. A player sends at most MAIL_SEND_PER_MINUTE (30) mails a minute and
    MAIL_SEND_PER_DAY (500) a UTC day, MAIL_SEND_PER_DAY_NEW_ACCOUNT (50) while their account is
    younger than an hour; a server sending for a player spends that player's budget. A refused
    mail is not counted.

    Errors:
    - ``not_found`` (404): no player has the name in ``to``.
    - ``forbidden`` (403): ``from`` is another player (a player sending), or a player not online
      on the calling server (a server sending).
    - ``blocked`` (403): the recipient blocked the sender (``mail.block``).
    - ``mailbox_full`` (409): the recipient's mailbox holds MAILBOX_MAX mails.
    - ``too_many_unread`` (409): the recipient already has MAIL_UNREAD_PER_SENDER_MAX unread mails
      from this sender.

    Internals:
    Ordered steps, each on one hash tag (docs/CLUSTER.md): a server sending checks its player is
    online on it (the sender's account and the heartbeat); the mail's outbox entry is added; one
    script
    checks the recipient and stores the mail hash and its place in the mailbox and unread sets;
    then its live notice is queued. A process that dies before queueing leaves the outbox entry,
    and the worker queues the notice (``shared.storage.mail``). On one Redis the last three go
    in one pipeline: one round trip for a player, two for a server.
    """
    sender = args.get("from")
    if ctx.caller.kind == "server":
        if sender is None:
            raise InvalidInput("from", "is required when a server sends mail")
        sender_lname, display, server_id = sender.lower(), "", ctx.caller.id
    else:
        if sender is not None and sender.lower() != ctx.caller.lname:
            raise Forbidden("a player may send mail only as themselves")
        sender_lname, display, server_id = ctx.caller.lname, ctx.caller.name, ""
    mail_id, to, config, now = new_id(), args["to"], ctx.config, ctx.now()
    fields = {"from": display, "subject": args["subject"], "body": args["body"],
              "at": ctx.now_ms() / 1000}
    wait = limits.mail_budget_take(ctx.redis, config, sender_lname, now)
    if wait:  # the recipient's refusals are decided first; a refused send is not counted
        detail = mail.refusal(ctx.redis, to.lower(), sender_lname, config.mailbox_max,
                              config.mail_unread_per_sender_max)
        if detail is None:
            raise RateLimited(f"{sender or ctx.caller.name} sent too much mail (at most "
                              f"{config.mail_send_per_minute} a minute, "
                              f"{config.mail_send_per_day} a day, "
                              f"{config.mail_send_per_day_new_account} a day in the account's "
                              "first hour)", wait)
        outcome = "refused"
    else:
        outcome, detail = mail.store_with_notice(
            ctx.redis, to.lower(), mail_id, fields, sender_lname, server_id,
            status.cutoff_ms(ctx), config.mailbox_max, config.mail_unread_per_sender_max,
            queue=ctx.queue, exit_after_store=faults.exit_after_mail_store(config))
        if outcome == "ok":
            return {"id": mail_id}
        limits.mail_budget_back(ctx.redis, config, sender_lname, now)
    if detail == "blocked":
        raise Blocked(f"{to} does not accept mail from {sender or ctx.caller.name}")
    if detail == "not_online":
        raise Forbidden(f"{sender} is not online on this server")
    if detail == "not_found":
        raise NotFound(f"no player named {to}")
    if detail == "mailbox_full":
        raise MailboxFull(f"the mailbox of {to} is full")
    if detail == "too_many_unread":
        raise TooManyUnread(f"{to} has {ctx.config.mail_unread_per_sender_max} unread mails "
                            f"from {sender or ctx.caller.name} already; wait until they read "
                            "some")
    raise Conflict("mail id collision; please retry")
