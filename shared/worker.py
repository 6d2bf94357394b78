"""``python -m shared.worker`` (the Procfile's ``worker``): runs the worker process, whose room
is ``worker/`` (``worker/main.py``; docs/WORKERS.md)."""

from __future__ import annotations

import sys

from worker.main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
