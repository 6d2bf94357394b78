"""The code stays ruff-clean (E, F, I, UP, W, B; see pyproject.toml) and type-checked (mypy over
shared/, functions/, relay/ and wsgi.py; see pyproject.toml), operations stay transport-free and
tests stand without the benchmarks."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_clean():
    if shutil.which("ruff") is None and subprocess.run(
            [sys.executable, "-m", "ruff", "--version"], capture_output=True).returncode:
        pytest.skip("ruff is not installed (pip install -r requirements-dev.txt)")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise",
                           "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_types_checked():
    """mypy passes with the project's settings ([tool.mypy] in pyproject.toml: the files it
    checks, check_untyped_defs, no implicit Optional, no unused ``type: ignore``). Its cache
    (.mypy_cache/, ignored by git) keeps a second run to about a second."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -r requirements-dev.txt)")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".mypy_cache"),
                           "--no-color-output", "--no-error-summary"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


TRANSPORT = {"flask", "werkzeug", "asyncio", "socket"}


def _imported(path: Path) -> set[str]:
    """Top-level modules a file imports, anywhere in it (TYPE_CHECKING blocks included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_operations_import_no_transport():
    """An operation is transport-free: no file in functions/ imports flask, werkzeug, asyncio or
    socket (STYLE.md: the registry and the adapters own the wire)."""
    files = sorted((ROOT / "functions").glob("*.py"))
    assert len(files) > 30
    bad = {f.name: sorted(_imported(f) & TRANSPORT) for f in files if _imported(f) & TRANSPORT}
    assert not bad, bad


def _production_files() -> list[Path]:
    return [*sorted((ROOT / "shared").rglob("*.py")), *sorted((ROOT / "functions").glob("*.py")),
            *sorted((ROOT / "relay").glob("*.py")), ROOT / "wsgi.py"]


def test_fault_hooks_in_one_place():
    """The crash tests' fault-injection settings (SSM_TEST_*) are all declared in
    shared/faults.py, documented there, and read nowhere else (the Config fields aside)."""
    from shared import faults
    from shared.config import Config

    declared = {f.metadata["env"]: f.name for f in dataclasses.fields(Config)
                if f.metadata["env"].startswith("SSM_TEST_")}
    assert declared == faults.HOOKS
    assert all(env in (faults.__doc__ or "") for env in declared)
    own = {ROOT / "shared" / "faults.py", ROOT / "shared" / "config.py"}
    readers = {}
    for path in _production_files():
        if path in own:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in declared.values() or (
                    isinstance(node, ast.Constant) and node.value in declared):
                readers.setdefault(str(path.relative_to(ROOT)), []).append(node.lineno)
    assert not readers, readers


def test_tests_import_no_bench():
    """Benchmarks may change freely: what a test needs lives in tests/ or shared/."""
    bad = [f.name for f in sorted((ROOT / "tests").glob("*.py")) if "bench" in _imported(f)]
    assert not bad, bad
