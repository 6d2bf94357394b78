"""``python -m shared.up``: runs everything on one machine; the dev stack's room is ``stack/``
(``stack/up.py``; README, docs/OPERATIONS.md)."""

from __future__ import annotations

import sys

from stack.up import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
