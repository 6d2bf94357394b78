"""The admin CLI, under ``flask --app wsgi``: game servers and boards without HTTP.

::

    flask --app wsgi server create NAME     # prints {id, name, key, created}; key shown once
    flask --app wsgi server list
    flask --app wsgi server rotate ID       # new key, the old one dead at once
    flask --app wsgi server delete ID
    flask --app wsgi board create BOARD --order desc --operator best
    flask --app wsgi board list
    flask --app wsgi create-server NAME     # the same as `server create`

Every command runs its registry operation through ``shared.dispatch.run`` as the admin, so
validation and rules are the HTTP API's; answers are printed as JSON, errors as one line
(``Error: <code>: <message>``, exit status 1).

Redis: ``REDIS_URL`` when set, as for every process. When it is unset, the embedded Redis that
``python -m shared.up`` runs for ``SSM_DATA_DIR`` (it writes ``<data dir>/redis.url`` while it
runs), if that server answers; otherwise the command stops with one line saying what to set.
"""

from __future__ import annotations

import json
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo, with_appcontext

from shared import auth
from shared.config import Config
from shared.embedded import published
from shared.errors import ApiError
from shared.redis_conn import connect
from shared.registry import load
from shared.storage.records import OPERATORS, ORDERS

NO_REDIS = ("no Redis: REDIS_URL is not set and no `python -m shared.up` is running for "
            "SSM_DATA_DIR={data_dir} (no answering {data_dir}/redis.url); start "
            "`python -m shared.up` there, or set REDIS_URL")


class NoRedis:
    """Stands for Redis when the CLI found none: any use raises ConnectionError(message)."""

    def __init__(self, message: str):
        self.message = message

    def __getattr__(self, name: str) -> Any:
        import redis

        raise redis.ConnectionError(self.message)


def loaded_by_flask_command() -> bool:
    """True while the ``flask`` command line is loading the app (not under gunicorn)."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.find_object(ScriptInfo) is not None


def find_redis(config: Config) -> Any:
    """For create_app under the flask command with REDIS_URL unset: a client for the embedded
    Redis of ``shared.up`` in ``config.data_dir``, or a :class:`NoRedis` naming what to set
    (reported when a command needs Redis, so ``--help`` still works)."""
    url = published(config.data_dir)
    if url is None:
        return NoRedis(NO_REDIS.format(data_dir=config.data_dir))
    return connect(url)


def register(app: Flask) -> None:
    """Add the admin commands to ``app.cli``."""
    app.cli.add_command(server)
    app.cli.add_command(board)
    app.cli.add_command(create_server_alias)


def call(operation: str, **args: Any) -> dict | None:
    """Run one registry operation as the admin; an error ends the command with one line."""
    import redis

    from shared.dispatch import Ctx, run

    ext = current_app.extensions["ssm"]
    r = ext["redis"]
    if isinstance(r, NoRedis):
        raise click.ClickException(r.message)
    ctx = Ctx(r, ext["config"], auth.ADMIN_CALLER, ip="cli", clock=ext["clock"])
    try:
        return run(load()[operation], ctx, args).body
    except ApiError as err:
        raise click.ClickException(f"{err.code}: {err.message}") from None
    except redis.RedisError as err:
        raise click.ClickException(f"Redis unavailable ({type(err).__name__}: {err})") from None


def show(body: Any) -> None:
    click.echo(json.dumps(body, indent=2))


server = AppGroup("server", help="Game servers: create, list, rotate, delete.")
board = AppGroup("board", help="Leaderboards: create, list.")


@server.command("create")
@click.argument("name")
def server_create(name: str) -> None:
    """Register a game server; prints its id and key (the key is shown only now)."""
    show(call("server.create", name=name))


@click.command("create-server")
@click.argument("name")
@with_appcontext
def create_server_alias(name: str) -> None:
    """Register a game server (the same as `server create`)."""
    show(call("server.create", name=name))


@server.command("list")
def server_list() -> None:
    """Every registered server: id, name, created (oldest first)."""
    show(call("server.list"))


@server.command("rotate")
@click.argument("server_id", metavar="ID")
def server_rotate(server_id: str) -> None:
    """Issue a new key for a server; its old key is refused at once."""
    show(call("server.rotate_key", id=server_id))


@server.command("delete")
@click.argument("server_id", metavar="ID")
def server_delete(server_id: str) -> None:
    """Delete a server: its key, settings, status, inbox and channels."""
    call("server.delete", id=server_id)
    show({"deleted": server_id})


@board.command("create")
@click.argument("board_id", metavar="BOARD")
@click.option("--order", type=click.Choice(ORDERS), required=True,
              help="asc: lower is better; desc: higher is better")
@click.option("--operator", type=click.Choice(OPERATORS), required=True,
              help="best keeps the better, set replaces, incr adds, decr subtracts")
def board_create(board_id: str, order: str, operator: str) -> None:
    """Create a leaderboard (repeating the same settings is safe)."""
    show(call("board.create", board=board_id, order=order, operator=operator))


@board.command("list")
def board_list() -> None:
    """Every leaderboard with its order and operator."""
    show(call("board.list"))
