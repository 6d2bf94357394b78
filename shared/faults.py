"""Fault injection for the crash tests: the one place the ``SSM_TEST_*`` settings are read.

A test that kills a process at a chosen point (and then checks that nothing acknowledged was
lost) sometimes needs that point held open, or reached for certain. These hooks do it. Each is
a setting like any other (a ``test_*`` field of :class:`shared.config.Config`, in README's
settings table), 0 by default, and never set in production. The code that injects a fault asks
a function here; no other module reads the settings (tests/test_lint.py holds this).

=================================  ==========================================================
``SSM_TEST_JOB_PAUSE_MS``          :func:`pause_job`: the worker's mail jobs sleep this long
                                   before and after their script, so a test can SIGKILL the
                                   job's process mid-job (tests/test_workers.py).
``SSM_TEST_EXIT_AFTER_MAIL_STORE`` :func:`exit_after_mail_store`: 1 makes ``mail.send`` end
                                   its process (exit status 3) right after the mail is stored,
                                   before its notice is queued; the worker's outbox sweep must
                                   still deliver the notice (tests/test_workers.py).
=================================  ==========================================================
"""

from __future__ import annotations

import time

from shared.config import Config

# the settings read here: environment variable -> Config field
HOOKS = {"SSM_TEST_JOB_PAUSE_MS": "test_job_pause_ms",
         "SSM_TEST_EXIT_AFTER_MAIL_STORE": "test_exit_after_mail_store"}


def pause_job(config: Config) -> None:
    """SSM_TEST_JOB_PAUSE_MS: widen the window in which a test kills the worker mid-job."""
    if config.test_job_pause_ms:
        time.sleep(config.test_job_pause_ms / 1000)


def exit_after_mail_store(config: Config) -> bool:
    """SSM_TEST_EXIT_AFTER_MAIL_STORE: whether ``mail.send`` ends its process right after
    storing a mail (``shared.storage.mail.store_with_notice``'s ``exit_after_store``)."""
    return bool(config.test_exit_after_mail_store)
