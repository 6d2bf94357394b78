"""The house's import graph, read with ast: no cycle among the production modules, and no
production module importing ``wsgi`` (the web app sits on top of the house), ``tests`` or
``bench`` (docs/DESIGN.md, "The map"). Imports inside functions count: a local import hides a
cycle from Python's loader, not from the design."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# each process's room and the mechanism they share; wsgi.py is the web app on top of them
ROOMS = ("shared", "functions", "relay", "worker", "web", "stack")
FORBIDDEN = {"wsgi", "tests", "bench"}


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def production() -> dict[str, Path]:
    """Every production module by dotted name."""
    files = [p for room in ROOMS for p in (ROOT / room).rglob("*.py")] + [ROOT / "wsgi.py"]
    return {_name(p): p for p in sorted(files)}


def _type_checking(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Dotted names ``name`` imports, anywhere in the file: ``from a import b`` is ``a.b`` when
    that is a module, else ``a``; relative imports resolved against the package. Imports under
``if TYPE_CHECKING:`` are left out: they serve annotations and never run."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {id(n) for block in ast.walk(tree) if _type_checking(block)
                   for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # annotations only: never imported when the code runs
            continue
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in known else base)
    return out


def graph() -> dict[str, set[str]]:
    mods = production()
    known = set(mods)
    return {name: {m for m in imports(name, path, known) if m in known and m != name}
            for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read():
    """The reader finds the house's known arrows (a reader that found nothing would pass
    everything below)."""
    edges = graph()
    assert len(edges) > 100
    assert "shared.queues" in edges["shared.storage.mail"]
    assert "shared.storage.mail" in edges["worker.jobs"]
    assert "worker.main" in edges["shared.worker"]
    assert "web.cli" in edges["wsgi"]


def test_the_cycle_finder_finds_a_local_import_cycle():
    """What the old ``shared.jobs`` <-> ``shared.storage.mail`` pair looked like."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_no_production_module_imports_wsgi_tests_or_bench():
    mods = production()
    known = set(mods) | FORBIDDEN
    bad = {name: sorted(m for m in imports(name, path, known) if m.split(".")[0] in FORBIDDEN)
           for name, path in mods.items()}
    assert {k: v for k, v in bad.items() if v} == {}


# every job name RQ has stored with a queued job since the first release
QUEUED_NAMES = ("notify_mail", "notify_pending", "sweep_outbox", "sweep_status", "trim_inboxes",
                "ban_outbox", "archive_seasons", "drain_outbox", "deliver_webhook")


def test_jobs_queued_before_the_worker_room_still_resolve():
    """A job queued by an older release names ``shared.jobs.<function>``: RQ must still find
    the body, now in ``worker/jobs.py``; and new jobs are queued under the same names."""
    from rq.utils import import_attribute

    from shared import queues
    from worker import jobs

    assert queues.JOBS == "shared.jobs"
    for name in QUEUED_NAMES:
        assert import_attribute(f"shared.jobs.{name}") is getattr(jobs, name)
