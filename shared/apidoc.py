"""Write docs/API.md from the operation registry: ``python -m shared.apidoc``.

A test checks the committed file matches the registry, so the table never drifts.
"""

from __future__ import annotations

import sys
from pathlib import Path

from shared.openapi import who
from shared.registry import load

PATH = Path(__file__).resolve().parent.parent / "docs" / "API.md"


def render() -> str:
    rows = []
    for op in sorted(load().values(), key=lambda o: o.name):
        fields = ", ".join(f"`{f.name}`" + ("" if f.required else "?") for f in op.fields
                           if f.where != "path")
        aliases = ", ".join(f"`{a}`" for a in op.aliases)
        rows.append(f"| `{op.name}` | `{op.method} {op.path}` | {op.status} | {who(op)} | "
                    f"{fields} | {aliases} | {op.summary} |")
    return ("# SSMGlobal API\n\nGenerated from the operation registry by `python -m shared.apidoc`;"
            " the live reference with every field's rules is `GET /docs` and `GET /openapi.json`."
            " Every operation is also a relay command under its name (case-insensitive) or its"
            " alias.\n\n| operation | route | success | who | inputs (? = optional) | relay alias |"
            " summary |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    PATH.parent.mkdir(exist_ok=True)
    PATH.write_text(render())
    sys.stdout.write(f"wrote {PATH}\n")
