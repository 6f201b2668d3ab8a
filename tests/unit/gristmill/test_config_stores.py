"""The MLflow and Optuna parts of the workspace configuration: embedded defaults, team URLs, the
environment on top, a wrong URL as a one-line mistake."""

import pytest

from gristmill.config import load_config, mlflow_artifacts_root, mlflow_tracking_uri, optuna_storage_url
from gristmill.errors import GristmillError


def test_embedded_defaults(workspace):
    assert not load_config(workspace).team_mode
    assert mlflow_tracking_uri(workspace) == workspace.mlflow_uri
    assert mlflow_artifacts_root(workspace) == workspace.mlflow_dir / "artifacts"
    assert optuna_storage_url(workspace) is None


def test_team_urls_and_defaults(workspace, monkeypatch, tmp_path):
    (workspace.root / "gristmill.yaml").write_text(
        "server:\n  metadata: postgresql://u@db:5432/meta\n"
        f"mlflow:\n  tracking: postgresql://u@db:5432/mlflow\n  artifacts: {tmp_path / 'art'}\n")
    assert mlflow_tracking_uri(workspace) == "postgresql+psycopg://u@db:5432/mlflow"
    assert mlflow_artifacts_root(workspace) == tmp_path / "art"
    assert optuna_storage_url(workspace) == "postgresql+psycopg://u@db:5432/meta"  # metadata by default
    monkeypatch.setenv("GRISTMILL_OPTUNA_STORAGE", "postgresql://u@db:5432/optuna")
    assert optuna_storage_url(workspace) == "postgresql+psycopg://u@db:5432/optuna"


def test_wrong_url_is_a_one_line_mistake(workspace):
    (workspace.root / "gristmill.yaml").write_text("mlflow:\n  tracking: sqlite:///x.db\n")
    with pytest.raises(GristmillError, match="mlflow.tracking"):
        load_config(workspace)
    (workspace.root / "gristmill.yaml").write_text("training:\n  optuna_url: x\n")
    with pytest.raises(GristmillError):
        load_config(workspace)
