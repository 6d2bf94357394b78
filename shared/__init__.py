"""What the HTTP app, the relay and the workers share (map: docs/DESIGN.md).

At the top, the mechanism every operation goes through (registry, dispatch, schema, errors,
auth, config, keys, the Redis connection, jobs, metrics, logs) and the process entry points
(``python -m shared.up``, ``python -m shared.worker``); below it ``storage`` (domain storage,
one module per operation group) and ``web`` (pages, API docs, OpenAPI).
"""

# Where the source of this backend is published (AGPL-3.0-or-later: network users are offered
# it). A constant, not a setting: the relay's HELP and the web pages' footer link it.
SOURCE_URL = "https://github.com/serversquared/ssmglobal"
