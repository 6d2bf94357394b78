"""Backups: ``python -m shared.backup create FILE`` and ``python -m shared.backup restore FILE``
(docs/OPERATIONS.md "Backups").

**create** takes one consistent snapshot of every data node: for each primary (one Redis, or
every master of a cluster) it asks for the node's own point-in-time copy the way a replica does
(``SYNC``: the RDB file the node writes from one fork, as ``redis-cli --rdb`` does), loads that
copy into a throwaway embedded server, and writes each key from there (``DUMP`` payload and
remaining TTL) into FILE: gzip-compressed JSON lines, one header line first. A cluster's queue
Redis (``REDIS_QUEUE_URL``: RQ's jobs) is saved the same way, in its own section. A Redis that
refuses ``SYNC`` (some managed Redis services) is read key by key instead with ``--scan``: not a
point-in-time copy unless the processes are stopped (or use the provider's own snapshots:
docs/OPERATIONS.md).

**restore** loads FILE into an empty target: the Redis named by ``--url`` (``--cluster`` when it
is a cluster node; ``--queue-url`` for the queue section) or by ``REDIS_URL`` /
``REDIS_CLUSTER`` / ``REDIS_QUEUE_URL``; with none of those, into ``SSM_DATA_DIR``, which must
hold no data: it starts the embedded server(s) there as ``python -m shared.up`` (with
``--cluster`` when the backup came from one) would, loads the keys, and stops them, so the next
``python -m shared.up`` serves the restored data. A target holding any key is refused. Keys
come back with the TTL they had left when the backup was taken. Keys are restored by ``RESTORE``
one at a time, so a backup of one Redis restores into a cluster, and the other way round.

The source is found as the processes find it: ``REDIS_URL`` (+ ``REDIS_CLUSTER``,
``REDIS_QUEUE_URL``), else the running ``python -m shared.up`` of ``SSM_DATA_DIR``.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import redis

from shared.config import Config, ConfigError
from shared.redis_conn import connect, connect_cluster, primaries
from stack.embedded import EmbeddedRedis, published_settings

FORMAT = "ssm-backup"
FORMAT_VERSION = 1
BATCH = 500


class BackupError(Exception):
    """Said on one line, exit status 1."""


# --- where ------------------------------------------------------------------------------------
def source_settings(config: Config) -> dict[str, str]:
    """REDIS_URL and friends: from the environment, else the running shared.up's redis.url."""
    if config.redis_url:
        found = {"REDIS_URL": config.redis_url, "REDIS_CLUSTER": str(config.redis_cluster)}
        if config.redis_queue_url and config.redis_queue_url != config.redis_url:
            found["REDIS_QUEUE_URL"] = config.redis_queue_url
        return found
    published = published_settings(config.data_dir)
    if published is None:
        raise BackupError(f"no Redis: REDIS_URL is not set and no `python -m shared.up` is "
                          f"running for SSM_DATA_DIR={config.data_dir}")
    return published


def data_client(settings: dict[str, str]) -> Any:
    url = settings["REDIS_URL"]
    if settings.get("REDIS_CLUSTER") == "1":
        return connect_cluster(url, socket_timeout=60)
    return connect(url, socket_timeout=60)


def node_urls(r: Any, url: str) -> list[str]:
    """The URL of every primary of ``r`` (a cluster's masters), with ``url``'s credentials."""
    parsed = urlparse(url)
    auth = parsed.netloc.rsplit("@", 1)[0] + "@" if "@" in parsed.netloc else ""
    found = []
    for node in primaries(r):
        kw = node.connection_pool.connection_kwargs
        found.append(f"{parsed.scheme}://{auth}{kw['host']}:{kw['port']}/0")
    return found


# --- create -----------------------------------------------------------------------------------
def rdb_snapshot(url: str, timeout: float = 300) -> bytes:
    """The node's point-in-time RDB, received as a replica receives it (``SYNC``)."""
    parsed = urlparse(url)
    sock: Any = socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379),
                                         timeout=timeout)
    try:
        if parsed.scheme == "rediss":
            sock = ssl.create_default_context().wrap_socket(sock,
                                                            server_hostname=parsed.hostname)
        stream = sock.makefile("rb")
        if parsed.password:
            args = [unquote(parsed.username), unquote(parsed.password)] if parsed.username \
                else [unquote(parsed.password)]
            sock.sendall(_command("AUTH", *args))
            reply = stream.readline()
            if not reply.startswith(b"+"):
                raise BackupError(f"AUTH refused by {_safe(url)}: {reply.decode().strip()}")
        sock.sendall(_command("SYNC"))
        while True:
            line = stream.readline()
            if not line:
                raise BackupError(f"{_safe(url)} closed the connection during SYNC")
            if line in (b"\n", b"\r\n"):
                continue  # the node is still writing its snapshot: keep-alive newlines
            break
        if line.startswith(b"-"):
            raise BackupError(
                f"{_safe(url)} refused SYNC ({line.decode().strip()}): a managed Redis may "
                "not allow it; use --scan with the processes stopped, or the provider's own "
                "snapshots (docs/OPERATIONS.md, Backups)")
        if not line.startswith(b"$") or line.startswith(b"$EOF:"):
            raise BackupError(f"unexpected SYNC reply from {_safe(url)}: {line[:40]!r}")
        size = int(line[1:].strip())
        data = stream.read(size)
        if len(data) != size:
            raise BackupError(f"{_safe(url)}: the snapshot stopped after {len(data)} bytes")
        return data
    finally:
        sock.close()


def _command(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _safe(url: str) -> str:
    p = urlparse(url)
    return f"{p.scheme}://{p.hostname}:{p.port}"


def dump_keys(client: redis.Redis) -> Iterator[list]:
    """``[key, pttl, payload]`` of every key of one server (``client``: bytes replies)."""
    for keys in _batches(client.scan_iter(count=1000)):
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.pttl(key)
            pipe.dump(key)
        got = pipe.execute()
        for key, pttl, payload in zip(keys, got[::2], got[1::2], strict=True):
            if payload is None or pttl == -2:
                continue  # expired meanwhile
            yield [base64.b64encode(key).decode(), max(int(pttl), 0),
                   base64.b64encode(payload).decode()]


def _batches(it: Any, size: int = BATCH) -> Iterator[list]:
    batch = []
    for item in it:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def snapshot_keys(url: str, scan: bool) -> Iterator[list]:
    """Every key of the one server at ``url``, from its point-in-time RDB (``scan``: read live)."""
    if scan:
        client = redis.Redis.from_url(url, socket_timeout=60)
        try:
            yield from dump_keys(client)
        finally:
            client.close()
        return
    rdb = rdb_snapshot(url)
    with tempfile.TemporaryDirectory(prefix="ssm-backup-") as tmp:
        (Path(tmp) / "dump.rdb").write_bytes(rdb)
        server = EmbeddedRedis(tmp, appendonly=False, logfile="redis.log")
        try:
            server.start(timeout=120)
        except RuntimeError as err:
            raise BackupError(f"the snapshot of {_safe(url)} did not load: {err}") from None
        try:
            client = redis.Redis(port=server.port, socket_timeout=60)
            yield from dump_keys(client)
            client.close()
        finally:
            server.stop()


def create(path: Path, settings: dict[str, str], scan: bool = False) -> dict[str, int]:
    from shared import migrations

    r = data_client(settings)
    try:
        nodes = node_urls(r, settings["REDIS_URL"])
        version = migrations.read_version(r)
    finally:
        r.close()
    sections = [("data", u) for u in nodes]
    if settings.get("REDIS_QUEUE_URL"):
        sections.append(("queue", settings["REDIS_QUEUE_URL"]))
    counts = {"data": 0, "queue": 0}
    tmp = path.with_name(path.name + ".part")
    with gzip.open(tmp, "wt", encoding="utf-8") as out:
        out.write(json.dumps({"format": FORMAT, "version": FORMAT_VERSION,
                              "created": int(time.time()), "data_version": version,
                              "cluster": settings.get("REDIS_CLUSTER") == "1",
                              "nodes": len(nodes), "point_in_time": not scan}) + "\n")
        for section, url in sections:
            for entry in snapshot_keys(url, scan):
                out.write(json.dumps([section, *entry]) + "\n")
                counts[section] += 1
    tmp.replace(path)
    return counts


# --- restore ----------------------------------------------------------------------------------
def read_backup(path: Path) -> tuple[dict, Iterator[list]]:
    try:
        stream = gzip.open(path, "rt", encoding="utf-8")
        header = json.loads(stream.readline())
    except (OSError, ValueError) as err:
        raise BackupError(
            f"{path} is not a backup made by python -m shared.backup ({err})") from None
    if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
        raise BackupError(f"{path} is not a backup of format {FORMAT} {FORMAT_VERSION}")

    def entries() -> Iterator[list]:
        with stream:
            for line in stream:
                yield json.loads(line)

    return header, entries()


def key_count(r: Any) -> int:
    return sum(node.dbsize() for node in primaries(r))


def load(entries: Iterator[list], data: Any, queue: Any) -> dict[str, int]:
    counts = {"data": 0, "queue": 0}
    pending: dict[str, list] = {"data": [], "queue": []}

    def flush(section: str) -> None:
        target = data if section == "data" else queue
        pipe = target.pipeline(transaction=False)
        for key, pttl, payload in pending[section]:
            pipe.restore(key, pttl, payload)
        pipe.execute()
        counts[section] += len(pending[section])
        pending[section] = []

    for section, key, pttl, payload in entries:
        if section == "queue" and queue is None:
            section = "data"  # one Redis holds both
        pending[section].append((base64.b64decode(key), int(pttl), base64.b64decode(payload)))
        if len(pending[section]) >= BATCH:
            flush(section)
    for section in ("data", "queue"):
        if pending[section]:
            flush(section)
    return counts


def restore_into(path: Path, settings: dict[str, str]) -> dict[str, int]:
    _header, entries = read_backup(path)
    cluster = settings.get("REDIS_CLUSTER") == "1"
    url = settings["REDIS_URL"]
    data = (connect_cluster if cluster else connect)(url, socket_timeout=60,
                                                     decode_responses=False)
    queue = None
    if settings.get("REDIS_QUEUE_URL") and settings["REDIS_QUEUE_URL"] != url:
        queue = connect(settings["REDIS_QUEUE_URL"], socket_timeout=60, decode_responses=False)
    try:
        for name, target in (("REDIS_URL", data), ("REDIS_QUEUE_URL", queue)):
            if target is not None and (n := key_count(target)):
                raise BackupError(
                    f"the target Redis ({name}={_safe(settings[name])}) is not empty: it holds "
                    f"{n} key(s). Restore only into an empty Redis: flush it yourself if you "
                    "mean to replace its data")
        return load(entries, data, queue)
    finally:
        data.close()
        if queue is not None:
            queue.close()


def restore_into_folder(path: Path, config: Config, cluster: bool | None) -> dict[str, int]:
    header, _ = read_backup(path)
    cluster = header.get("cluster", False) if cluster is None else cluster
    data_dir = Path(config.data_dir)
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupError(f"the data folder {data_dir.resolve()} is not empty: restore only "
                          "into an empty (or new) folder; move this one aside first")
    from stack import up

    console = up.Console(json_lines=False)
    stack = up.Stack(console)
    env: dict[str, str] = {}
    try:
        if cluster:
            stack.redis = up._start_cluster(config, data_dir, env, console, stack)
        else:
            stack.redis = [up._start_single(config, data_dir, env, console, stack)]
        return restore_into(path, env)
    finally:
        for server in stack.redis:
            server.stop()


# --- command line -----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.backup",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    made = sub.add_parser("create", help="write one consistent snapshot into FILE")
    made.add_argument("file")
    made.add_argument("--scan", action="store_true",
                      help="read key by key (for a Redis that refuses SYNC; stop the "
                           "processes first for a consistent copy)")
    back = sub.add_parser("restore", help="load FILE into an empty Redis or data folder")
    back.add_argument("file")
    back.add_argument("--url", help="the empty Redis to load (default: REDIS_URL, else the "
                                    "SSM_DATA_DIR folder)")
    back.add_argument("--cluster", action="store_true",
                      help="--url is a cluster node; into a data folder: as a cluster")
    back.add_argument("--queue-url", help="the empty queue Redis of a cluster (RQ's jobs)")
    opts = parser.parse_args(argv)
    try:
        config = Config.from_env()
        path = Path(opts.file)
        if opts.command == "create":
            counts = create(path, source_settings(config), scan=opts.scan)
            print(f"backup: {counts['data']} data key(s), {counts['queue']} queue key(s) "
                  f"written to {path}")
            return 0
        if not path.is_file():
            raise BackupError(f"no backup file at {path}")
        if opts.url or config.redis_url:
            settings = {"REDIS_URL": opts.url or config.redis_url or "",
                        "REDIS_CLUSTER": "1" if (opts.cluster if opts.url
                                                 else config.redis_cluster) else "0"}
            queue = opts.queue_url or (None if opts.url else config.redis_queue_url)
            if queue:
                settings["REDIS_QUEUE_URL"] = queue
            counts = restore_into(path, settings)
            where = _safe(settings["REDIS_URL"])
        else:
            counts = restore_into_folder(path, config, True if opts.cluster else None)
            where = str(Path(config.data_dir).resolve())
        print(f"backup: {counts['data']} data key(s), {counts['queue']} queue key(s) "
              f"restored into {where}")
        return 0
    except (BackupError, ConfigError, RuntimeError) as err:
        print(f"backup: {err}", file=sys.stderr)
        return 1
    except redis.RedisError as err:
        print(f"backup: Redis error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
