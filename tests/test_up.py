"""`python -m shared.up` on a machine with no REDIS_URL: embedded Redis + the Procfile's processes.

SIGTERM stops everything (nothing left running) and data survives a stop and a start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from stack.embedded import binary, free_port
from tests.helpers import request as _request

ROOT = Path(__file__).resolve().parent.parent


class Stack:
    def __init__(self, data_dir: Path):
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env.update(PORT=str(self.port), RELAY_PORT=str(free_port()), SSM_DATA_DIR=str(data_dir),
                   SSM_REDIS_PORT=str(free_port()), SSM_ADMIN_TOKEN="up-admin-token-0123",
                   STATUS_TTL="30", SSM_SCRYPT_LOG2_N="4")
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        self.proc = subprocess.Popen([sys.executable, "-m", "shared.up"], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stdout.read().decode()
            try:
                if _request("GET", self.url + "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail("stack did not become ready")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def test_up_runs_everything_and_sigterm_leaves_nothing(tmp_path):
    stack = Stack(tmp_path / "data")
    try:
        stack.wait_ready()
        kids = stack.descendants()
        exes = [" ".join(p.cmdline()) for p in kids]
        assert any(binary() in cmd for cmd in exes), exes  # the embedded server, not a system one
        status, body = _request("POST", stack.url + "/v1/players",
                                {"name": "Keeper", "password": "secret1"})
        assert status == 201, body
    finally:
        code = stack.stop()
    out = stack.proc.stdout.read().decode()  # type: ignore[union-attr]
    assert code == 0, out
    assert "Traceback" not in out, out
    assert out.rindex("stopped (rc=") < out.index("stopping embedded Redis"), out  # Redis last
    time.sleep(0.2)
    alive = [p for p in kids if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [" ".join(p.cmdline()) for p in alive]
    assert (tmp_path / "data").exists()

    again = Stack(tmp_path / "data")
    try:
        again.wait_ready()
        status, body = _request("POST", again.url + "/v1/sessions",
                                {"name": "keeper", "password": "secret1"})
        assert status == 200, body
        assert body["player"]["name"] == "Keeper"
    finally:
        again.stop()


def test_procfile_commands_come_from_the_interpreters_folder(tmp_path, redis_server, r):
    """`venv/bin/python -m shared.up` without an activated venv still runs the venv's tools:
    the Procfile's `python` is the one next to the interpreter running shared.up."""
    procfile = tmp_path / "Procfile"
    procfile.write_text("probe: python -c 'import sys; print(\"exe=\" + sys.executable)'\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSM_")}
    env.update(REDIS_URL=redis_server.url, PATH="/nonexistent", PYTHONUNBUFFERED="1")
    out = subprocess.run([sys.executable, "-m", "shared.up", "--procfile", str(procfile)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert f"exe={os.path.dirname(sys.executable)}{os.sep}python" in out.stdout, out


# --- clean stops and quick restarts (docs/OPERATIONS.md) ------------------------------------------
def _up_env(data_dir: Path, **over: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "REDIS_CLUSTER", "REDIS_QUEUE_URL")}
    env.update(PORT=str(free_port()), RELAY_PORT=str(free_port()), SSM_DATA_DIR=str(data_dir),
               SSM_ADMIN_TOKEN="up-admin-token-0123", SSM_SCRYPT_LOG2_N="4",
               PYTHONUNBUFFERED="1", **over)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


class Terminal:
    """``python -m shared.up`` in a pseudo-terminal of its own, as a person runs it: Ctrl-C is
    the byte 0x03 typed into the terminal, which the terminal turns into SIGINT for its whole
    foreground process group."""

    def __init__(self, env: dict[str, str]):
        import fcntl
        import pty
        import termios

        self.master, slave = pty.openpty()

        def controlling_terminal() -> None:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen([sys.executable, "-m", "shared.up"], cwd=ROOT, env=env,
                                     stdin=slave, stdout=slave, stderr=slave,
                                     preexec_fn=controlling_terminal)
        os.close(slave)
        self.out = b""
        self.url = f"http://127.0.0.1:{env['PORT']}"

    def read_until(self, text: str, timeout: float = 60) -> None:
        import select

        deadline = time.monotonic() + timeout
        while text.encode() not in self.out:
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output()}"
            if select.select([self.master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # the terminal's other end closed: everything exited
                    chunk = b""
                if not chunk:
                    assert text.encode() in self.out, f"no {text!r} in:\n{self.output()}"
                    return
                self.out += chunk

    def ctrl_c(self) -> None:
        os.write(self.master, b"\x03")

    def output(self) -> str:
        return self.out.decode(errors="replace")

    def processes(self) -> list[psutil.Process]:
        kids = psutil.Process(self.proc.pid).children(recursive=True)
        # honcho starts each process in a session of its own: found through honcho's children
        return kids


def _left_running(procs: list[psutil.Process]) -> list[str]:
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(" ".join(p.cmdline()))
        except psutil.NoSuchProcess:
            pass
    return alive


def test_ctrl_c_in_a_terminal_stops_everything_redis_last_and_a_quick_restart_keeps_data(
        tmp_path):
    env = _up_env(tmp_path / "data")
    term = Terminal(env)
    try:
        term.read_until("ssm up:   stop:   Ctrl-C")  # the ready block's last line
        assert "first game server:  flask --app wsgi server create" in term.output()
        assert "/docs" in term.output()
        assert "overcommit" not in term.output().lower()  # in data/redis.log instead
        status, body = _request("POST", term.url + "/v1/players",
                                {"name": "Stayer", "password": "secret1"})
        assert status == 201, body
        procs = term.processes()
        assert len(procs) >= 5, [p.cmdline() for p in procs]
        term.ctrl_c()
        term.read_until("stopping embedded Redis")
        assert term.proc.wait(timeout=30) == 0
    finally:
        kill_tree(term.proc.pid)  # a failed assertion must not leave the stack running
    out = term.output()
    assert "Traceback" not in out, out
    # Redis last: every process had stopped before Redis was asked to
    assert out.rindex("stopped (rc=") < out.index("stopping embedded Redis"), out
    log = (tmp_path / "data" / "redis.log").read_text()
    assert "Received SIGTERM" in log and "SIGINT" not in log, log  # not the terminal's Ctrl-C
    assert _left_running(procs) == [], _left_running(procs)
    port = json.loads((tmp_path / "data" / "ports.json").read_text())["redis"]

    # at once, with the same settings: the recorded port and the same data; then a second
    # Ctrl-C ends it at once
    again = Terminal(_up_env(tmp_path / "data"))
    try:
        again.read_until("ssm up:   stop:   Ctrl-C")
        assert f"embedded Redis on redis://127.0.0.1:{port}/0" in again.output()
        status, body = _request("GET", again.url + "/v1/players/Stayer")
        assert status == 200 and body["name"] == "Stayer", body
        procs = again.processes()
        again.ctrl_c()
        again.read_until("stopping processes")
        began = time.monotonic()
        again.ctrl_c()
        assert again.proc.wait(timeout=10) == 130
        assert time.monotonic() - began < 5  # not the graceful stop's 10 s drain
        assert not (tmp_path / "data" / "redis.url").exists()
    finally:
        kill_tree(again.proc.pid)
    wait_for_gone(procs)


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it (Redis runs in a session of its own, still a
    child), when a test ended before the stack stopped itself; nothing when it already had."""
    try:
        top = psutil.Process(pid)
        procs = [*top.children(recursive=True), top]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def wait_for_gone(procs: list[psutil.Process]) -> None:
    from tests.conftest import wait_for

    wait_for(lambda: _left_running(procs) == [], timeout=10, what="every process gone")


def test_a_closed_output_pipe_stops_everything_without_a_traceback(tmp_path):
    """``python -m shared.up | head``: the reader of its output goes away (here the test, which
    reads until the ready block and then closes the pipe); the quiet stack stops."""
    proc = subprocess.Popen([sys.executable, "-m", "shared.up"], cwd=ROOT,
                            env=_up_env(tmp_path / "data"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            if line.startswith(b"ssm up: ready"):
                break
        procs = psutil.Process(proc.pid).children(recursive=True)
        assert any(binary() in " ".join(p.cmdline()) for p in procs)
        assert len(procs) >= 5, [p.cmdline() for p in procs]
        proc.stdout.close()  # type: ignore[union-attr]
        assert proc.wait(timeout=60) == 0
        err = proc.stderr.read().decode()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    wait_for_gone(procs)


def test_a_held_port_is_waited_for_then_named(tmp_path):
    import socket
    import threading

    from stack.up import Console, wait_for_ports

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    console = Console(json_lines=False, out=open(os.devnull, "w"))  # noqa: SIM115
    with pytest.raises(RuntimeError, match=f"port {port} .*still in use after 0.5 s"):
        wait_for_ports([port], "the embedded Redis", console, timeout=0.5)
    threading.Timer(0.5, holder.close).start()
    began = time.monotonic()
    wait_for_ports([port], "the embedded Redis", console, timeout=20)
    assert time.monotonic() - began < 10


def test_log_format_json_passes_the_processes_json_lines_through_without_a_prefix(
        tmp_path, redis_server, r):
    procfile = tmp_path / "Procfile"
    procfile.write_text("probe: python -c 'print(\"{\\\"level\\\": \\\"INFO\\\", \\\"message\\\": "
                        "\\\"from the probe\\\"}\"); print(\"plain words\")'\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSM_")}
    env.update(REDIS_URL=redis_server.url, LOG_FORMAT="json", PYTHONUNBUFFERED="1")
    out = subprocess.run([sys.executable, "-m", "shared.up", "--procfile", str(procfile)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    lines = out.stdout.splitlines()
    assert '{"level": "INFO", "message": "from the probe"}' in lines, out.stdout
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"message": "plain words", "process": "probe.1"}.items() <= next(
        p for p in parsed if p.get("message") == "plain words").items()


def test_free_port_never_hands_out_a_port_twice():
    """Tests ask for a Redis port and a web port before either is bound: the kernel may pick
    the same free port twice (it once gave both 58703), so free_port remembers what it gave."""
    ports = [free_port() for _ in range(2000)]
    assert len(set(ports)) == len(ports)
