"""What the HTTP app, the relay and the workers share (map: docs/DESIGN.md).

At the top, the mechanism every operation goes through (registry, dispatch, schema, errors,
auth, config, keys, the Redis connection, jobs, metrics, logs) and the process entry points
(``python -m shared.up``, ``python -m shared.worker``); below it ``storage`` (domain storage,
one module per operation group) and ``web`` (pages, API docs, OpenAPI).
"""

# Where this program's source is published: the AGPL asks a network service to offer its users
# the source (the web pages' footer links here; LICENSE, README "License").
SOURCE_URL = "https://github.com/serversquared/ssmglobal"
