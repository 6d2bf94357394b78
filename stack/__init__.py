"""The dev stack's room: everything on one machine (``up``: ``python -m shared.up``) and the
embedded Redis and Redis Cluster it serves, which the tests and benches start too
(``embedded``); docs/OPERATIONS.md."""
