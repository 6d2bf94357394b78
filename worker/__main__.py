"""``python -m worker``: the worker process (``worker/main.py``), as ``python -m shared.worker``."""

import sys

from worker.main import main

sys.exit(main())
