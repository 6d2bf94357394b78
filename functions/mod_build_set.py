from __future__ import annotations

from typing import Any

from shared.dispatch import Ctx, Outcome
from shared.registry import ADMIN, operation
from shared.schema import Str
from shared.storage import modbuilds

SHA1_PATH = Str("sha1", where="path", pattern=modbuilds.SHA1,
                doc="SHA-1 of the core file, 40 hex digits (either case; stored in lower case)")


@operation("mod.build.set", "PUT", "/v1/mod/builds/{sha1}", auth=ADMIN, status=201,
           audit=("sha1", "version"),
           fields=(SHA1_PATH,
                   Str("version", min_len=1, max_len=modbuilds.VERSION_MAX,
                       pattern=modbuilds.VERSION,
                       doc=f"the version the core's UDP verify answers for this build: 1 to "
                           f"{modbuilds.VERSION_MAX} printable ASCII characters, no leading "
                           "or trailing space")),
           example={"request": {"sha1": "3f786850e387550fdab836ed7e6dc881de23001b",
                                "version": "9.0.0"},
                    "response": {"sha1": "3f786850e387550fdab836ed7e6dc881de23001b",
                                 "version": "9.0.0", "at": 1717000000.0}})
def handler(ctx: Ctx, args: dict[str, Any]) -> Outcome:
    """Register a known build of the (server)² core (admin): its checksum and version.

    The relay's legacy UDP verify answers this checksum with ``version``, and
    ``/serversquaredmodification/latest.txt`` serves the newest build's version: the newest is
    the build set last, so setting a build again makes it the newest. Answers 201 for a new
    build, 200 when it replaced the version of a known one.

    Internals:
    One script in ``{mod}`` (a counter orders the sets), then the audit entry.
    """
    args["sha1"] = sha1 = args["sha1"].lower()  # the audit entry names the stored form
    now = ctx.now_ms()
    new = modbuilds.put(ctx.redis, sha1, args["version"], now)
    return Outcome(201 if new else 200, {"sha1": sha1, "version": args["version"],
                                         "at": now / 1000})
