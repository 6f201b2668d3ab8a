"""Lays the bundled demo export and its spec down in the workspace (``<workspace>/demo/churn_demo``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from gristmill.workspace import Workspace

HERE = Path(__file__).parent
SPEC = "churn_demo.yaml"


def lay_down(ws: Workspace) -> Path:
    """Copy the demo files into the workspace; return the spec's path there."""
    target = ws.ensure().root / "demo" / "churn_demo"
    (target / "data").mkdir(parents=True, exist_ok=True)
    for item in sorted((HERE / "data").iterdir()):
        if item.is_file():
            shutil.copy2(item, target / "data" / item.name)
    shutil.copy2(HERE / SPEC, target / SPEC)
    return target / SPEC
