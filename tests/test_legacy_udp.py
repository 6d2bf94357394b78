"""The released (server)² core's UDP verify on LEGACY_UDP_PORT, served by the relay
(docs/RELAY.md): real UDP sockets against in-process relays and a ``python -m relay``
process.

Order proves silence: the relay answers datagrams in the order they come, so when a ``ping``
sent after some datagrams is the first thing answered, none of those got an answer.
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from relay import legacy_udp
from shared import keys, metrics
from shared.config import Config
from shared.storage import modbuilds
from stack.embedded import free_port
from tests.conftest import ADMIN_TOKEN, wait_for
from tests.relay_client import InProcessRelays, greeted

ROOT = Path(__file__).resolve().parent.parent
A = "3f786850e387550fdab836ed7e6dc881de23001b"
B = "89e6c98d92887913cadf06b2adb97f26cde4849b"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Peer:
    """A UDP socket of its own: what it sends, what it receives and from where."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(timeout)
        self.to = ("127.0.0.1", port)

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.to)

    def recv(self) -> tuple[bytes, Any]:
        return self.sock.recvfrom(65536)

    def ask(self, data: bytes) -> bytes:
        self.send(data)
        got, source = self.recv()
        assert source == self.to  # from the bound socket
        return got

    def next_is_pong(self) -> None:
        """Nothing is waiting: a ping now is answered first."""
        self.send(b"ping")
        assert self.recv() == (b"pong", self.to)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def relays(config: Any, r: Any) -> Any:
    running = InProcessRelays(config)
    yield running
    running.stop_all()


@pytest.fixture
def udp(relays: Any) -> Any:
    """A relay with the verify on a free port; a Peer talking to it."""
    port = free_udp_port()
    relays.start(legacy_udp_port=port)
    peer = Peer(port)
    yield peer
    peer.close()


def test_ping_and_verify_are_answered_with_exact_bytes(udp):
    assert udp.ask(b"ping") == b"pong"
    assert udp.ask(b"verify") == b"sendChecksum"


def test_a_checksum_gets_its_version_in_either_case_else_unknown(udp, r):
    modbuilds.put(r, A, "9.0.0 Beta Release 3", 1)
    assert udp.ask(A.encode()) == b"9.0.0 Beta Release 3"
    assert udp.ask(A.upper().encode()) == b"9.0.0 Beta Release 3"
    assert udp.ask(B.encode()) == b"unknown"


def test_a_build_set_or_deleted_is_answered_at_once(udp, r, client, api):
    assert udp.ask(B.encode()) == b"unknown"
    assert client.put(f"/v1/mod/builds/{B}", json={"version": "9.0.1"},
                      headers=api.admin).status_code == 201
    assert udp.ask(B.encode()) == b"9.0.1"
    assert client.delete(f"/v1/mod/builds/{B}", headers=api.admin).status_code == 204
    assert udp.ask(B.encode()) == b"unknown"


@pytest.mark.parametrize("data", [
    b"", b"ping\n", b"ping\r\n", b"PING", b" ping", b"pingping", b"verify\n", b"Verify",
    b"hello", b"pong", b"sendChecksum", A[:-1].encode(), (A + "0").encode(),
    ("g" * 40).encode(), (A + "\n").encode(), b"\x00" * 40, b"ping" * 300,
    "ä".encode() * 20,
])
def test_anything_else_gets_no_answer(udp, r, data):
    modbuilds.put(r, A, "1.0", 1)
    udp.send(data)
    udp.next_is_pong()


def test_the_answer_goes_to_its_sender_only(udp):
    other = Peer(udp.to[1])
    try:
        udp.send(b"verify")
        assert udp.recv() == (b"sendChecksum", udp.to)
        other.next_is_pong()  # the verify's answer did not come here
    finally:
        other.close()


def test_no_answer_is_longer_than_64_bytes(udp, r):
    longest, c = "v" * modbuilds.VERSION_MAX, "c" * 40
    modbuilds.put(r, A, longest, 1)
    # versions that went round validation (written straight into Redis), before the first read
    r.hset(keys.mod_builds(), B, json.dumps({"version": "w" * 65, "at": 2, "seq": 98}))
    r.hset(keys.mod_builds(), c, json.dumps({"version": "w" * 64, "at": 2, "seq": 99}))
    assert udp.ask(A.encode()) == longest.encode()
    assert udp.ask(c.encode()) == b"w" * 64
    udp.send(B.encode())  # 65 bytes: not sent at all
    udp.next_is_pong()
    assert udp.ask(A.encode()) == longest.encode()  # B's answer would have come before it


def test_a_flood_of_checksums_costs_one_read_per_gap(relays, r, monkeypatch):
    """A second of checksums, one every millisecond or so: every one is answered, from at most
    the burst and a second's budget of reads (1 + 4 here)."""
    reads = []

    def counting(client: Any) -> dict[str, str]:
        reads.append(1)
        return {A: "1.0"}

    monkeypatch.setattr(modbuilds, "versions", counting)
    monkeypatch.setattr(legacy_udp, "READS_PER_SECOND", 4)
    monkeypatch.setattr(legacy_udp, "READS_BURST", 1)
    port = free_udp_port()
    relays.start(legacy_udp_port=port)
    peer = Peer(port)
    answers: list[bytes] = []

    def drain() -> None:
        while select.select([peer.sock], [], [], 0)[0]:
            answers.append(peer.recv()[0])
    try:
        sent, end = 0, time.monotonic() + 1.0
        while time.monotonic() < end:
            peer.send(A.encode())
            sent += 1
            drain()
            time.sleep(0.001)  # the flood's pace, so that no socket buffer overflows
        while len(answers) < sent:
            answers.append(peer.recv()[0])
        assert answers == [b"1.0"] * sent and sent > 300
        assert len(reads) <= 1 + 4 + 1, len(reads)  # one more for the timing at the edges
    finally:
        peer.close()


def test_redis_down_answers_from_the_last_table_and_warns_once(relays, monkeypatch, caplog):
    state = {"up": True}

    def flaky(client: Any) -> dict[str, str]:
        if not state["up"]:
            raise redis.ConnectionError("down")
        return {A: "1.0"}

    monkeypatch.setattr(modbuilds, "versions", flaky)
    port = free_udp_port()
    relays.start(legacy_udp_port=port)
    peer = Peer(port)
    try:
        assert peer.ask(A.encode()) == b"1.0"
        state["up"] = False
        for _ in range(5):
            assert peer.ask(A.encode()) == b"1.0"
            assert peer.ask(B.encode()) == b"unknown"
        warned = [rec for rec in caplog.records if "known builds failed" in rec.getMessage()]
        assert len(warned) == 1
    finally:
        peer.close()


def test_before_any_table_is_read_a_checksum_gets_no_answer(relays, monkeypatch):
    def down(client: Any) -> dict[str, str]:
        raise redis.ConnectionError("down")

    monkeypatch.setattr(modbuilds, "versions", down)
    port = free_udp_port()
    relays.start(legacy_udp_port=port)
    peer = Peer(port)
    unanswered = metrics.relay().udp.labels("none")
    before = unanswered._value.get()
    try:
        peer.send(A.encode())
        peer.send(b"verify")  # answered at once, the checksum never
        assert peer.recv()[0] == b"sendChecksum"
        wait_for(lambda: unanswered._value.get() > before, 5, "the checksum's read")
        peer.next_is_pong()
    finally:
        peer.close()


def test_a_busy_port_is_one_warning_and_the_relay_runs_without_it(relays, caplog):
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    try:
        port = holder.getsockname()[1]
        with caplog.at_level(logging.WARNING, logger="ssm.relay"):
            relay = relays.start(legacy_udp_port=port)
        warned = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING]
        assert len(warned) == 1 and "LEGACY_UDP_PORT" in warned[0], warned
        assert relay.legacy_udp is None
        assert greeted(relay.port).cmd("HW")["state"] == "OK"
    finally:
        holder.close()


def test_port_zero_binds_nothing_and_the_default_is_the_cores_port(relays):
    assert relays.start(legacy_udp_port=0).legacy_udp is None
    assert Config().legacy_udp_port == 53472
    assert Config.from_env({"LEGACY_UDP_PORT": "0"}).legacy_udp_port == 0


def test_the_relay_process_serves_it_and_survives_a_busy_port(redis_server, r, tmp_path):
    """``python -m relay``: the verify on its port; then a second relay on the same UDP port
    logs one warning and serves TCP."""
    modbuilds.put(r, A, "9.0.0", 1)
    udp_port = free_udp_port()
    procs = []
    try:
        tcp_ports = []
        for i in range(2):
            tcp_ports.append(free_port())
            env = dict(os.environ, REDIS_URL=redis_server.url, RELAY_PORT=str(tcp_ports[i]),
                       RELAY_HOST="127.0.0.1", LEGACY_UDP_PORT=str(udp_port),
                       SSM_ADMIN_TOKEN=ADMIN_TOKEN)
            log = open(tmp_path / f"relay{i}.log", "wb")  # noqa: SIM115
            procs.append(subprocess.Popen([sys.executable, "-m", "relay"], cwd=ROOT, env=env,
                                          stdout=log, stderr=subprocess.STDOUT))
            wait_for(lambda i=i: "relay listening" in (tmp_path / f"relay{i}.log").read_text(),
                     15, f"relay {i} to listen")
        peer = Peer(udp_port)
        assert peer.ask(b"verify") == b"sendChecksum"
        assert peer.ask(A.encode()) == b"9.0.0"
        peer.close()
        assert greeted(tcp_ports[1]).cmd("HW")["state"] == "OK"
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    first = (tmp_path / "relay0.log").read_text()
    second = (tmp_path / "relay1.log").read_text()
    assert "legacy UDP verify on 127.0.0.1" in first and "WARNING" not in first
    assert second.count("WARNING") == 1 and "LEGACY_UDP_PORT" in second


def test_datagrams_are_counted_by_answer(udp, r):
    counter = metrics.relay().udp

    def now() -> dict[str, float]:
        return {a: counter.labels(a)._value.get() for a in
                ("pong", "sendChecksum", "version", "unknown", "none")}
    before = now()
    modbuilds.put(r, A, "1.0", 1)
    assert udp.ask(A.encode()) == b"1.0"
    assert udp.ask(B.encode()) == b"unknown"
    udp.send(b"hello")
    udp.next_is_pong()
    assert udp.ask(b"verify") == b"sendChecksum"
    after = now()
    assert {a: after[a] - before[a] for a in after} == {
        "pong": 1, "sendChecksum": 1, "version": 1, "unknown": 1, "none": 1}
