"""Prove the README's quick start in a venv holding nothing but requirements.txt.

``python .ci/quickstart.py`` (standard library only; `.ci/run` calls it before the dev
requirements are installed):

1. ``python -m venv`` + ``pip install -r requirements.txt`` in a temporary folder;
2. ``python -m shared.up`` from that venv (activated the way ``venv/bin/activate`` does it) on
   free ports, with a temporary SSM_DATA_DIR and SSM_ADMIN_TOKEN set;
3. waits for ``GET /readyz`` (200) and the relay's greeting line, registers a player over HTTP
   and creates a game server with the admin CLI (``flask --app wsgi server create``, REDIS_URL
   unset: it must find the embedded Redis by itself);
4. sends SIGTERM and checks that ``shared.up`` exits 0, that nothing it started is left
   running (every process of the run carries a marker in its environment) and that the
   embedded Redis's ``redis.url`` file is gone.

A runtime dependency missing from requirements.txt makes a process fail to start, and this
script fail. Exit status 0 on success, 1 with the stack's output on failure.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GREETING = b'{"state": "OK", "msg": "CONNECTED serversquaredGlobal"}\r\n'
READY_TIMEOUT = 60


class Failed(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, start time, command line) of every process we can read."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile
            continue
        out[int(entry)] = (int(stat[1]), int(stat[19]), cmd)
    return out


def marked(token: str) -> set[int]:
    """Pids whose environment carries the run's marker (the embedded server is not among
    them: it writes its process title over its environment)."""
    found = set()
    needle = f"QUICKSTART_RUN={token}".encode()
    for pid in processes():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.add(pid)
        except OSError:
            continue
    return found


def of_run(root: int, token: str) -> dict[int, tuple[int, str]]:
    """pid -> (start time, command line) of every process of the run: the descendants of
    ``root`` and whatever carries the marker (something that escaped its parent)."""
    procs = processes()
    ours = marked(token) | {root}
    grew = True
    while grew:
        kids = {pid for pid, (ppid, _, _) in procs.items() if ppid in ours} - ours
        ours |= kids
        grew = bool(kids)
    return {pid: procs[pid][1:] for pid in ours if pid in procs}


def still_running(seen: dict[int, tuple[int, str]], token: str) -> list[str]:
    procs = processes()
    alive = [cmd for pid, (start, cmd) in seen.items()
             if pid in procs and procs[pid][1] == start and not _zombie(pid)]
    return alive + [procs[pid][2] for pid in marked(token) if pid not in seen]


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def wait_ready(proc: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failed(f"python -m shared.up exited with {proc.returncode} before /readyz")
        try:
            if http("GET", url + "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise Failed(f"/readyz did not answer 200 within {READY_TIMEOUT} s")


def relay_greeting(port: int) -> bytes:
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                line = b""
                while not line.endswith(b"\n"):
                    chunk = s.recv(256)
                    if not chunk:
                        break
                    line += chunk
                return line
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run(tmp: Path) -> None:
    venv, data, token = tmp / "venv", tmp / "data", uuid.uuid4().hex
    step("python -m venv + pip install -r requirements.txt")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bindir = venv / "bin"
    subprocess.run([str(bindir / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", "-r", str(ROOT / "requirements.txt")],
                   check=True)
    port, relay_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")
           and not k.startswith("SSM_")}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
               PORT=str(port), RELAY_PORT=str(relay_port), SSM_REDIS_PORT=str(free_port()),
               SSM_DATA_DIR=str(data), SSM_ADMIN_TOKEN="quickstart-admin-0123456789",
               QUICKSTART_RUN=token, PYTHONUNBUFFERED="1")
    log_path = tmp / "up.log"
    step("python -m shared.up")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(bindir / "python"), "-m", "shared.up"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    seen: dict[int, tuple[int, str]] = {}
    try:
        check_stack(proc, env, bindir, port, relay_port)
        seen = of_run(proc.pid, token)
        running = " | ".join(cmd for _, cmd in seen.values())
        for what in ("valkey-server", "gunicorn", "shared.worker", "-m relay"):
            if what not in running:
                raise Failed(f"no {what} process among the run's processes: {running}")
        step("SIGTERM")
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            raise Failed("python -m shared.up did not exit within 30 s of SIGTERM") from None
        if code != 0:
            raise Failed(f"python -m shared.up exited with {code} after SIGTERM")
        left: list[str] = []
        for _ in range(25):  # a few seconds for the last exits to land
            left = still_running(seen, token)
            if not left:
                break
            time.sleep(0.2)
        if left:
            raise Failed("left running after SIGTERM: " + " | ".join(left))
        step(f"stopped: exit 0, none of its {len(seen)} processes left")
        if (data / "redis.url").exists():
            raise Failed("data/redis.url is still there after the stack stopped")
    except Failed:
        sys.stdout.write(log_path.read_text(errors="replace")[-6000:])
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in set(seen) | marked(token):  # processes of this run only
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def check_stack(proc: subprocess.Popen, env: dict[str, str], bindir: Path, port: int,
                relay_port: int) -> None:
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, url)
    step("/readyz 200")
    line = relay_greeting(relay_port)
    if line != GREETING:
        raise Failed(f"relay greeting was {line!r}, expected {GREETING!r}")
    step("relay greeting")
    status, body = http("POST", url + "/v1/players", {"name": "Quick", "password": "secret1"})
    if status != 201:
        raise Failed(f"POST /v1/players answered {status} {body}")
    status, body = http("POST", url + "/v1/sessions", {"name": "quick", "password": "secret1"})
    if status != 200 or not body.get("token"):
        raise Failed(f"POST /v1/sessions answered {status} {body}")
    cli = subprocess.run([str(bindir / "flask"), "--app", "wsgi", "server", "create", "CI"],
                         cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, capture_output=True,
                         text=True, timeout=60)
    try:
        made = json.loads(cli.stdout)
    except ValueError:
        made = {}
    if cli.returncode != 0 or not made.get("key"):
        raise Failed(f"admin CLI failed ({cli.returncode}): {cli.stdout}{cli.stderr}")
    step("player registered, server created with the admin CLI")


T0 = time.monotonic()


def step(text: str) -> None:
    print(f"quickstart: {time.monotonic() - T0:5.1f} s  {text}", flush=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ssm-quickstart-") as tmp:
        try:
            run(Path(tmp))
        except (Failed, subprocess.CalledProcessError, subprocess.TimeoutExpired,
                OSError) as err:
            print(f"quickstart: FAILED: {err}", file=sys.stderr, flush=True)
            return 1
    step("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
