"""Publishing a monitoring run where people look: MLflow metrics and the Evidently workspace."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitoring import history
from monitoring.places import evidently_dir, lock

if TYPE_CHECKING:
    from gristmill.workspace import Workspace
    from monitoring.jobs import JobSpec


def log_to_mlflow(ws: "Workspace", info: dict, job: "JobSpec", row: dict) -> None:
    """The run's figures as metrics of the model's training run (``monitor.<job>.<figure>``)."""
    from gristmill.config import mlflow_client

    root = ws.root
    client = mlflow_client(ws)
    ts = int(time.time() * 1000)
    step = len(history.read(root, row["project"], job.name, limit=1_000_000))
    metrics = {"drift_share": row.get("drift_share"), "drifted_columns": len(row.get("drifted_columns") or []),
               "prediction_drift_score": row.get("prediction_drift_score"),
               "target_drift_score": row.get("target_drift_score"), "quality": row.get("quality"),
               "max_missing_increase": row.get("max_missing_increase"),
               "max_new_category_share": row.get("max_new_category_share"),
               "max_out_of_range_share": row.get("max_out_of_range_share"),
               "alert": 1.0 if row["status"] == "alert" else 0.0, "current_rows": row.get("n_current")}
    for key, value in metrics.items():
        if value is not None:
            client.log_metric(info["run_id"], f"monitor.{job.name}.{key}", float(value), timestamp=ts, step=step)


def add_to_evidently(ws: "Workspace", project: str, snapshot: Any) -> None:
    """Add an Evidently snapshot to the workspace's Evidently workspace (`evidently ui` shows it)."""
    from evidently.ui.workspace import Workspace as EvidentlyWorkspace

    folder = evidently_dir(ws)
    folder.mkdir(parents=True, exist_ok=True)
    with lock(folder.parent / ".evidently.lock"):
        workspace = EvidentlyWorkspace.create(str(folder))
        found = workspace.search_project(project)
        target = found[0] if found else workspace.create_project(
            project, description=f"Gristmill project {project}: monitoring runs")
        workspace.add_run(target.id, snapshot, include_data=False)
