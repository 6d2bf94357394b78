"""Domain errors: each has a stable ``code`` and a status hint; transports convert them once."""

from __future__ import annotations


class ApiError(Exception):
    """Base of every error a caller may see."""

    status = 400
    code = "invalid_input"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
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


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    """409; ``code`` names the conflict (``name_taken``, ``mailbox_full``, ...)."""

    status, code = 409, "conflict"


class TooLarge(ApiError):
    status, code = 413, "too_large"


class IdempotencyKeyReused(ApiError):
    """422: an Idempotency-Key already used with a different request."""

    status, code = 422, "idempotency_key_reused"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, retry_after=max(1, int(retry_after)))


class Unavailable(ApiError):
    status, code = 503, "unavailable"
