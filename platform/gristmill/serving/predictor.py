"""What a project's service does per request: online features from Feast + the champion model.

The BentoML service file in ``bentos/<project>/`` only declares endpoints and calls this class.
"""

from __future__ import annotations

from typing import Any

from gristmill.errors import EntityNotFound, InvalidRequest, ModelNotFound
from gristmill.features.naming import service_name
from gristmill.spec import load_spec
from gristmill.training.model import TabularModel
from gristmill.training.train import CHAMPION, configure_mlflow, model_name
from gristmill.workspace import Workspace


class Predictor:
    """Loads ``models:/<project>@champion`` and the project's feature service once."""

    def __init__(self, ws: Workspace, project: str) -> None:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        from gristmill.features.store import open_store

        ws.require_project(project)
        self.project = project
        self.spec = load_spec(ws.spec_path(project))
        self.entity_key = self.spec.entity.key
        configure_mlflow(ws)
        try:
            version = MlflowClient().get_model_version_by_alias(model_name(project), CHAMPION)
        except MlflowException:
            raise ModelNotFound(f"project {project!r} has no '{CHAMPION}' model: "
                                f"run `gristmill train {project}` first") from None
        self.model_version = str(version.version)
        self.model = self._load_model(version.source)
        self.store = open_store(ws)
        self.feature_service = self.store.get_feature_service(service_name(project))

    @staticmethod
    def _load_model(source: str) -> TabularModel:
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(source).unwrap_python_model().model

    # -- endpoints' logic ----------------------------------------------------------------------
    def by_entities(self, ids: list[Any], extra: dict[str, Any] | None = None) -> list[dict]:
        """Predict for entity ids with features from the online store (+ request-time values)."""
        if not ids:
            raise InvalidRequest("give at least one entity id")
        ids = [str(i) for i in ids]
        self._check_fields(extra or {})
        online = self.store.get_online_features(
            features=self.feature_service,
            entity_rows=[{self.entity_key: i} for i in ids],
        ).to_dict()
        features = self.model.features
        stored = [f for f in features if f in online]
        unknown = [i for n, i in enumerate(ids) if all(online[f][n] is None for f in stored)]
        if unknown:
            raise EntityNotFound(self.spec.entity.name, unknown)
        rows = [{f: online[f][n] for f in stored} | (extra or {}) for n in range(len(ids))]
        return [{self.entity_key: i, **p, "model_version": self.model_version}
                for i, p in zip(ids, self.model.predict_records(rows))]

    def by_rows(self, rows: list[dict[str, Any]]) -> list[dict]:
        """Predict from raw feature values (missing features count as missing values)."""
        if not rows:
            raise InvalidRequest("give at least one row of feature values")
        for n, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InvalidRequest(f"rows[{n}] must be an object of feature values")
            self._check_fields(row, f"rows[{n}]")
        return [{**p, "model_version": self.model_version} for p in self.model.predict_records(rows)]

    def describe(self) -> dict:
        return {"project": self.project, "model": model_name(self.project), "alias": CHAMPION,
                "model_version": self.model_version, "task": self.model.task,
                "entity_key": self.entity_key, "features": self.model.features,
                "classes": [str(c) for c in self.model.classes]}

    def _check_fields(self, row: dict, where: str = "request") -> None:
        unknown = self.model.unknown_fields(row)
        if unknown:
            raise InvalidRequest(f"{where}: unknown feature {unknown[0]!r} "
                                 f"(features: {', '.join(self.model.features[:8])}"
                                 f"{', ...' if len(self.model.features) > 8 else ''})")
