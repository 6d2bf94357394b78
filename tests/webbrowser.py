"""Helpers for tests that drive Debian's Chromium with Playwright (no ``playwright install``):
where the browser is, why it is missing, and the app served over real HTTP on a free port."""

from __future__ import annotations

import os
import shutil
import threading
from typing import Any

from werkzeug.serving import make_server

from stack.embedded import free_port

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    if not os.path.exists(CHROMIUM):
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def serve(app: Any) -> tuple[str, Any]:
    """The app on a free port in a thread: (base URL, the server to ``shutdown()``)."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server
