"""Printing for the CLI: human tables with Rich, or one JSON object with ``--json``."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)
_stdout = sys.stdout


def json_mode(argv: list[str]) -> bool:
    """With ``--json``, everything but the one JSON object goes to stderr (libraries print too)."""
    if "--json" not in argv:
        return False
    sys.stdout = sys.stderr
    return True


def emit_json(obj: Any) -> None:
    _stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    _stdout.flush()


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*["" if v is None else str(v) for v in row])
    console.print(t)


def step(message: str) -> None:
    err.print(f"[bold cyan]>[/] {message}")


def say_left_out(left_out: dict, fate: str) -> None:
    """The label rows left out (pending targets, rows without key or time) and their ``fate``."""
    if left_out.get("pending"):
        err.print(f"[yellow]{left_out['pending']} labels have no target yet (pending): {fate}[/]")
    others = {k: n for k, n in left_out.items() if k != "pending" and n}
    if others:
        err.print("[yellow]labels left out: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in others.items())
                  + "[/]")
