"""Domain errors: each class carries its stable ``code`` and its HTTP ``status`` (Chalice's
``NotFoundError.STATUS_CODE = 404`` style); transports convert them once.

Every code the API answers is a class here, so :data:`CODES` (code -> status) is the one table
of them; ``wsgi.HTTP_CODES`` (status -> code, for errors Werkzeug raises before a route runs)
is derived from :data:`BY_STATUS`.
"""

from __future__ import annotations


class ApiError(Exception):
    """Base of every error a caller may see."""

    status = 400
    code = "invalid_input"

    def __init__(self, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class InvalidInput(ApiError):
    status, code = 400, "invalid_input"

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


class Unauthenticated(ApiError):
    status, code = 401, "unauthenticated"


class InvalidCredentials(ApiError):
    status, code = 401, "invalid_credentials"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class Banned(Forbidden):
    """403 ``banned``: the player, or their address, is banned where they try to play."""

    code = "banned"


class Blocked(Forbidden):
    """403 ``blocked``: the recipient blocked this sender (``mail.block``)."""

    code = "blocked"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    """405: the route exists, not with this method (raised by Werkzeug's routing)."""

    status, code = 405, "method_not_allowed"


class Conflict(ApiError):
    """409; a subclass names the conflict."""

    status, code = 409, "conflict"


class NameTaken(Conflict):
    code = "name_taken"


class MailboxFull(Conflict):
    code = "mailbox_full"


class TooManyUnread(Conflict):
    code = "too_many_unread"


class BoardExists(Conflict):
    code = "board_exists"


class ServerNotLive(Conflict):
    code = "server_not_live"


class TooManyChannels(Conflict):
    code = "too_many_channels"


class TooManySettings(Conflict):
    code = "too_many_settings"


class ClanExists(Conflict):
    code = "clan_exists"


class InClan(Conflict):
    """The player is in a clan already (a player is in at most one)."""

    code = "in_clan"


class NotMember(Conflict):
    code = "not_member"


class ClanFull(Conflict):
    code = "clan_full"


class ClanOwner(Conflict):
    """The owner cannot leave their own clan: transfer or delete it."""

    code = "clan_owner"


class RequestInProgress(Conflict):
    """409: a request with this Idempotency-Key is still running."""

    code = "request_in_progress"


class TooManyBlocked(Conflict):
    """409: the player's block list holds MAIL_BLOCKED_MAX senders already."""

    code = "too_many_blocked"


class RequestTimeout(ApiError):
    """408: the client stopped sending its body, or sent it too slowly (the web worker's
    per-read wait and whole-body deadline)."""

    status, code = 408, "request_timeout"


class TooLarge(ApiError):
    status, code = 413, "too_large"


class UnsupportedMediaType(ApiError):
    """415 (raised by Werkzeug): answered as invalid_input, the body is the problem."""

    status, code = 415, "invalid_input"


class IdempotencyKeyReused(ApiError):
    """422: an Idempotency-Key already used with a different request."""

    status, code = 422, "idempotency_key_reused"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, retry_after=max(1, int(retry_after)))


class Internal(ApiError):
    """500: an unexpected error; its cause is logged, never shown."""

    status, code = 500, "internal"

    def __init__(self, message: str = "internal error"):
        super().__init__(message)


class Unavailable(ApiError):
    """503: Redis could not be reached. Both adapters raise it for every Redis error."""

    status, code = 503, "unavailable"

    def __init__(self, message: str = "storage is unavailable; retry shortly",
                 retry_after: int = 1):
        super().__init__(message, retry_after=retry_after)


def _classes(cls: type[ApiError]) -> list[type[ApiError]]:
    return [cls, *(c for sub in cls.__subclasses__() for c in _classes(sub))]


# Every code the API answers, with its status (a code's first class wins: invalid_input is 400).
CODES: dict[str, int] = {}
for _cls in _classes(ApiError):
    CODES.setdefault(_cls.code, _cls.status)

# The answer for an error known only by its status (Werkzeug's routing, its body limit): the
# generic class of each status. Any other status (a Werkzeug 500) is a plain "error".
BY_STATUS: dict[int, str] = {c.status: c.code for c in (
    InvalidInput, Unauthenticated, Forbidden, NotFound, MethodNotAllowed, Conflict, TooLarge,
    UnsupportedMediaType, RateLimited, Unavailable)}
