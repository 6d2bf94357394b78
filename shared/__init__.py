"""What the HTTP app, the relay and the workers share (map: docs/DESIGN.md).

At the top, the mechanism every operation goes through (registry, dispatch, schema, errors,
auth, config, keys, the Redis connection, queues, events, metrics, logs) and the entry points
the README and the Procfile name (``python -m shared.up``, ``python -m shared.worker``,
``shared/gunicorn_conf.py``, and ``shared.jobs``, the jobs' names in RQ), each running the code
of its process's room (``stack/``, ``worker/``, ``web/``); below it ``storage`` (domain storage,
one module per operation group) and ``web`` (pages, API docs, OpenAPI).
"""

# Where this program's source is published: the AGPL asks a network service to offer its users
# the source (the web pages' footer links here; LICENSE, README "License").
SOURCE_URL = "https://github.com/serversquared/ssmglobal"
