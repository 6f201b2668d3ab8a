"""Registered models copied into BentoML's model store, so a built bento carries its model.

``gristmill deploy`` imports the versions a project's aliases name (the champion, and the
challenger when the spec routes or shadows traffic to it) from the MLflow registry into BentoML's
model store (``$BENTOML_HOME``, default ``~/bentoml``) as ``gristmill-<project>:v<version>-<run>``;
the generated ``service.py`` names those tags as ``bentoml.models.BentoModel`` attributes, so
``bentoml build`` packs them into the bento. The tag carries the MLflow run id: two workspaces'
version 3 of a project of the same name are two different models.

A *built* bento (served from BentoML's bento store: ``bentoml serve shop:latest``) serves the
versions it was built with and needs no MLflow; served from its source folder (``gristmill serve``,
``bentoml serve service:Shop`` in ``bentos/<project>/``), it follows the registry's aliases as they
move, reading a version from the model store when it is there.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from gristmill.errors import ModelNotFound
from gristmill.workspace import Workspace

#: What the generated service reads its stores from; nothing in a bento names a machine's path.
ENVIRONMENT = ("GRISTMILL_WORKSPACE", "GRISTMILL_FEATURE_REPO")


@dataclass(frozen=True)
class Bundled:
    """One model version in BentoML's model store: its MLflow version and the folder holding the
    saved :class:`~gristmill.training.model.TabularModel`."""

    version: str
    path: Path


def model_name(project: str) -> str:
    """The BentoML model name of a project (BentoML names take letters, digits, ``-``, ``_``, ``.``)."""
    return f"gristmill-{project.replace('_', '-')}"


def model_tag(project: str, version: str, run_id: str) -> str:
    return f"{model_name(project)}:v{version}-{re.sub(r'[^a-z0-9]', '', run_id.lower())[:12]}"


def import_versions(ws: Workspace, project: str, versions: list[str]) -> dict[str, str]:
    """Copy each MLflow ``version`` of the project's model into BentoML's model store (once: a tag
    already there is kept). Returns ``{version: tag}``."""
    import bentoml
    import mlflow.pyfunc

    from gristmill.config import mlflow_client
    from gristmill.training.train import configure_mlflow
    from gristmill.training.train import model_name as registered

    configure_mlflow(ws)  # models:/ and runs:/ sources resolve through the process-wide URI
    client = mlflow_client(ws)
    tags = {}
    for version in versions:
        mv = client.get_model_version(registered(project), version)
        tag = model_tag(project, version, mv.run_id)
        try:
            bentoml.models.get(tag)
        except bentoml.exceptions.NotFound:
            model = mlflow.pyfunc.load_model(mv.source).unwrap_python_model().model
            name, _, stamp = tag.partition(":")
            with bentoml.models.create(name=f"{name}:{stamp}", labels={"gristmill_project": project},
                                       metadata={"mlflow_model": registered(project), "mlflow_version": version,
                                                 "mlflow_run": mv.run_id, "dataset_id": model.dataset_id,
                                                 "task": model.task, "metric": model.metric}) as saved:
                model.save(Path(saved.path) / "model")
        tags[version] = tag
    return tags


def bundled(model) -> Bundled | None:
    """The version and folder of a stored BentoML model (what a service's
    ``bentoml.models.BentoModel`` attribute resolves to on an instance); None for None."""
    if model is None:
        return None
    return Bundled(str(model.info.metadata["mlflow_version"]), Path(model.path) / "model")


def built(service_file: str) -> bool:
    """Whether ``service_file`` runs from a built bento (its ``src/`` sits beside ``bento.yaml``)."""
    return (Path(service_file).resolve().parent.parent / "bento.yaml").is_file()


def building() -> bool:
    """Whether this process is ``bentoml build`` (it imports the service to read its endpoints and
    models; the stores are not needed, and the build machine may have none)."""
    return Path(sys.argv[0]).name == "bentoml" and sys.argv[1:2] == ["build"]


def require_environment(project: str) -> None:
    """Stop a service start with one line when its stores are not named: a bento holds no paths."""
    missing = [name for name in ENVIRONMENT if not os.environ.get(name)]
    if missing:
        raise SystemExit(f"error: set {' and '.join(missing)} before serving {project!r}: the workspace "
                         "folder (its gristmill.yaml names the team-mode stores) and the feature repo "
                         f"(`gristmill serve {project}` sets both)")
    for name in ENVIRONMENT:
        if not Path(os.environ[name]).is_dir():
            raise SystemExit(f"error: {name}={os.environ[name]} is not a folder")


def load(item: Bundled):
    """The bundled :class:`TabularModel`."""
    from gristmill.training.model import TabularModel

    if not item.path.is_dir():
        raise ModelNotFound(f"the bento's model folder {item.path} is missing")
    return TabularModel.load(item.path)



def environment(ws: Workspace) -> dict[str, str]:
    """The variables a project's service or the gateway reads its stores from."""
    return {"GRISTMILL_WORKSPACE": str(ws.root), "GRISTMILL_FEATURE_REPO": str(ws.feature_repo)}


def command_prefix(ws: Workspace) -> str:
    """``GRISTMILL_WORKSPACE=... GRISTMILL_FEATURE_REPO=...`` for a command a user copies."""
    import shlex

    return " ".join(f"{k}={shlex.quote(v)}" for k, v in environment(ws).items())
