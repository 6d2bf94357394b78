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
    if not _data_understood(config):
        return 1
    raise_nofile_limit()
    asyncio.run(serve(config))
    return 0


def _data_understood(config: Config) -> bool:
    """Stamp an empty store; False (said on stderr) on data newer than this release."""
    from shared import migrations
    from shared.redis_conn import connect_data

    r = connect_data(config, socket_timeout=10)
    try:
        return migrations.at_start(r, "relay", run_steps=False)
    finally:
        r.close()


if __name__ == "__main__":
    sys.exit(main())
