"""The worker process's room: the RQ job bodies (``jobs``), the tickers that queue the
periodic jobs (``ticker``) and the process itself (``main``: ``python -m shared.worker``, the
Procfile's ``worker``, or ``python -m worker``); docs/WORKERS.md."""
