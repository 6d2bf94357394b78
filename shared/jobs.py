"""The RQ names of the jobs: RQ stores each queued job as ``shared.jobs.<function>``
(``shared.queues.JOBS``), a name kept from the first release so that jobs queued before an
upgrade still resolve. The bodies are the worker's (``worker/jobs.py``); what queues them is
``shared/queues.py``. Nothing imports this module but RQ."""

from worker.jobs import (
    archive_seasons,
    ban_outbox,
    deliver_webhook,
    drain_outbox,
    notify_mail,
    notify_pending,
    sweep_outbox,
    sweep_status,
    trim_inboxes,
)

__all__ = ["archive_seasons", "ban_outbox", "deliver_webhook", "drain_outbox", "notify_mail",
           "notify_pending", "sweep_outbox", "sweep_status", "trim_inboxes"]
