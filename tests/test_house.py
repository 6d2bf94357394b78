"""The house rules of the test suite and the docs, checked over the tree."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"


def _is_test_module(name: str) -> bool:
    parts = name.lstrip(".").split(".")
    relative = name.startswith(".") and len(parts) == 1
    return parts[-1].startswith("test_") and (relative or parts[-2:-1] == ["tests"])


def _imported_test_modules(path: Path) -> list[str]:
    """Every ``tests.test_*`` module that ``path`` imports, however it is spelled."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if _is_test_module(a.name)]
        elif isinstance(node, ast.ImportFrom):
            base = ("." * node.level) + (node.module or "")
            if _is_test_module(base):
                found.append(base)
            else:
                sep = "." if node.module else ""
                found += [f"{base}{sep}{a.name}" for a in node.names
                          if _is_test_module(f"{base}{sep}{a.name}")]
    return found


def test_no_test_module_imports_another():
    """Shared helpers live in tests/conftest.py (fixtures) or a helpers module
    (tests/helpers.py, tests/relay_client.py, …), never in a test module."""
    offenders = {p.name: got for p in sorted(TESTS.glob("*.py"))
                 if (got := _imported_test_modules(p))}
    assert offenders == {}


def test_the_import_check_sees_every_spelling(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import tests.test_a\nfrom tests.test_b import x\n"
                     "from tests import test_c\nfrom .test_d import y\n"
                     "from tests import helpers\nimport tests.relay_client\n")
    assert _imported_test_modules(probe) == [
        "tests.test_a", "tests.test_b", "tests.test_c", ".test_d"]


def test_no_spec_section_is_cited():
    """The project carries its own contract (docs/API.md, docs/RELAY.md, docs/WEBHOOKS.md,
    docs/CLUSTER.md, docs/WORKERS.md, docs/OPERATIONS.md, clients/lua/README.md, the README):
    nothing cites a section of a contract the repository does not hold. Every tracked file."""
    import subprocess

    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    mark = "SPEC " + "\u00a7"
    cited = [f for f in files if f and (ROOT / f).is_file()
             and mark.encode() in (ROOT / f).read_bytes()]
    assert cited == []
