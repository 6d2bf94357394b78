"""``python -m relay``: run one relay process (RELAY_HOST:RELAY_PORT) until SIGTERM."""

from __future__ import annotations

import asyncio
import sys

from relay.server import raise_nofile_limit, serve
from shared.config import Config, ConfigError
from shared.logs import setup_logging


def main() -> int:
    try:
        config = Config.from_env()
        config.require_redis()
    except ConfigError as err:
        print(f"relay: {err}", file=sys.stderr)
        return 2
    setup_logging(config, "relay")
    raise_nofile_limit()
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
