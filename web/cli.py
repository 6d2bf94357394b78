"""The admin CLI, under ``flask --app wsgi``: servers, boards, bans, clans and the audit log
without HTTP.

::

    flask --app wsgi server create NAME     # prints {id, name, key, created}; key shown once
    flask --app wsgi server list
    flask --app wsgi server rotate ID       # new key, the old one dead at once
    flask --app wsgi server delete ID
    flask --app wsgi board create BOARD --order desc --operator best
    flask --app wsgi board list
    flask --app wsgi board void BOARD PLAYER --reason TEXT
    flask --app wsgi ban create [--player NAME] [--ip ADDR|CIDR] --reason TEXT [--duration S]
                                [--scope global|SERVER_ID] [--force]
    flask --app wsgi ban lift ID [--reason TEXT]
    flask --app wsgi ban list [--player NAME] [--active] [--cursor C] [--limit N]
    flask --app wsgi clan get TAG
    flask --app wsgi clan delete TAG [--reason TEXT]
    flask --app wsgi clan transfer TAG PLAYER [--reason TEXT]
    flask --app wsgi audit list [--cursor C] [--limit N]
    flask --app wsgi mod build add SHA1 VERSION   # a known build of the (server)² core
    flask --app wsgi mod build list
    flask --app wsgi mod build delete SHA1
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
from shared.errors import ApiError
from shared.redis_conn import connect_data
from shared.registry import load
from shared.storage.records import OPERATORS, ORDERS
from stack.embedded import published_settings

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


def find_redis(config: Config) -> tuple[Config, Any]:
    """For create_app under the flask command with REDIS_URL unset: the settings and a client
    for the embedded Redis (or cluster, with its queue Redis) of ``shared.up`` in
    ``config.data_dir``, or a :class:`NoRedis` naming what to set (reported when a command
    needs Redis, so ``--help`` still works)."""
    import dataclasses

    found = published_settings(config.data_dir)
    if found is None:
        return config, NoRedis(NO_REDIS.format(data_dir=config.data_dir))
    config = dataclasses.replace(
        config, redis_url=found["REDIS_URL"],
        redis_cluster=int(found.get("REDIS_CLUSTER", "0") == "1"),
        redis_queue_url=found.get("REDIS_QUEUE_URL") or None)
    return config, connect_data(config)


def register(app: Flask) -> None:
    """Add the admin commands to ``app.cli``."""
    app.cli.add_command(server)
    app.cli.add_command(board)
    app.cli.add_command(ban)
    app.cli.add_command(clan)
    app.cli.add_command(audit)
    app.cli.add_command(mod)
    app.cli.add_command(create_server_alias)


def call(operation: str, **args: Any) -> dict | None:
    """Run one registry operation as the admin; an error ends the command with one line.
    Arguments that are None are left out (the operation's defaults apply)."""
    args = {k: v for k, v in args.items() if v is not None}
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


@board.command("void")
@click.argument("board_id", metavar="BOARD")
@click.argument("player")
@click.option("--reason", required=True, help="why (kept in the audit log)")
def board_void(board_id: str, player: str, reason: str) -> None:
    """Void a player's record on a board: it leaves the ranking at once."""
    call("record.void", board=board_id, name=player, reason=reason)
    show({"voided": {"board": board_id, "player": player}})


ban = AppGroup("ban", help="Bans: create, lift, list.")


@ban.command("create")
@click.option("--player", help="a registered player's name")
@click.option("--ip", help="an address or CIDR range (IPv4 /16, IPv6 /48 or narrower)")
@click.option("--reason", required=True, help="1 to 200 characters")
@click.option("--duration", type=int, help="seconds (default: permanent)")
@click.option("--scope", help="global (default) or a server id")
@click.option("--force", is_flag=True, help="allow a range wider than /16 or /48")
def ban_create(player: str | None, ip: str | None, reason: str, duration: int | None,
               scope: str | None, force: bool) -> None:
    """Ban a player, an address or range, or both; every server in scope hears of it."""
    show(call("ban.create", player=player, ip=ip, reason=reason, duration=duration,
              scope=scope, force=force or None))


@ban.command("lift")
@click.argument("ban_id", metavar="ID")
@click.option("--reason", help="why (kept in the audit log, sent with the unban)")
def ban_lift(ban_id: str, reason: str | None) -> None:
    """Lift a ban: it stops applying at once and stays in the history."""
    call("ban.lift", id=ban_id, reason=reason)
    show({"lifted": ban_id})


@ban.command("list")
@click.option("--player", help="only the bans naming this player")
@click.option("--active", is_flag=True, help="only the bans in force")
@click.option("--cursor", help="next_cursor of the previous page")
@click.option("--limit", type=int, help="at most this many (default 50)")
def ban_list(player: str | None, active: bool, cursor: str | None, limit: int | None) -> None:
    """The history of bans, newest first."""
    show(call("ban.list", player=player, active=active or None, cursor=cursor, limit=limit))


clan = AppGroup("clan", help="Clans: get, delete, transfer.")


@clan.command("get")
@click.argument("tag")
def clan_get(tag: str) -> None:
    """A clan: tag, name, owner, members."""
    show(call("clan.get", tag=tag))


@clan.command("delete")
@click.argument("tag")
@click.option("--reason", help="why (kept in the audit log)")
def clan_delete(tag: str, reason: str | None) -> None:
    """Delete a clan; its tag is free again."""
    call("clan.delete", tag=tag, reason=reason)
    show({"deleted": tag})


@clan.command("transfer")
@click.argument("tag")
@click.argument("player")
@click.option("--reason", help="why (kept in the audit log)")
def clan_transfer(tag: str, player: str, reason: str | None) -> None:
    """Make another member the owner of a clan."""
    show(call("clan.transfer", tag=tag, player=player, reason=reason))


audit = AppGroup("audit", help="The audit log of admin and moderation actions.")


@audit.command("list")
@click.option("--cursor", help="next_cursor of the previous page")
@click.option("--limit", type=int, help="at most this many (default 50)")
def audit_list(cursor: str | None, limit: int | None) -> None:
    """Admin and moderation actions, newest first."""
    show(call("audit.list", cursor=cursor, limit=limit))


mod = AppGroup("mod", help="The (server)² core: its known builds.")


@mod.group("build")
def mod_build() -> None:
    """Known builds of the (server)² core: add, list, delete."""


@mod_build.command("add")
@click.argument("sha1")
@click.argument("version")
def mod_build_add(sha1: str, version: str) -> None:
    """Register a core file's SHA-1 with its version (again: replace it); it becomes the
    newest, the version latest.txt serves."""
    show(call("mod.build.set", sha1=sha1, version=version))


@mod_build.command("list")
def mod_build_list() -> None:
    """Every known build, newest first."""
    show(call("mod.build.list"))


@mod_build.command("delete")
@click.argument("sha1")
def mod_build_delete(sha1: str) -> None:
    """Forget a known build: the UDP verify answers `unknown` for it."""
    call("mod.build.delete", sha1=sha1)
    show({"deleted": sha1.lower()})
