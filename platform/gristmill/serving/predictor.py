"""What a project's service does per request: online features from Feast + the champion model.

The BentoML service file in ``bentos/<project>/`` only declares endpoints and calls this class.
"""

from __future__ import annotations

import time
from typing import Any

from gristmill.errors import EntityNotFound, InvalidRequest, ModelNotFound
from gristmill.features.naming import REQUEST_TIME, service_name
from gristmill.spec import load_spec
from gristmill.training.model import TabularModel
from gristmill.training.train import CHAMPION, configure_mlflow, model_name
from gristmill.workspace import Workspace


class Predictor:
    """Loads ``models:/<project>@champion`` and the project's feature service once; logs every
    prediction (:mod:`gristmill.serving.prediction_log`) and counts it (:mod:`.metrics`)."""

    def __init__(self, ws: Workspace, project: str, log: bool = True) -> None:
        from gristmill.features.store import open_store
        from gristmill.serving.prediction_log import PredictionLog, log_folder

        ws.require_project(project)
        self.project = project
        self.spec = load_spec(ws.spec_path(project))
        self.entity_key = self.spec.entity.key
        configure_mlflow(ws)
        self.reload()
        self.store = open_store(ws)
        self.feature_service = self.store.get_feature_service(service_name(project))
        self.log = PredictionLog(log_folder(ws.root, project)) if log and self.spec.serving.log_predictions else None

    def _record(self, endpoint: str, version: str, started: float, rows: list[dict], predictions: list[dict],
                ids: list[str] | None = None) -> None:
        from gristmill.serving import metrics
        from gristmill.serving.prediction_log import records

        seconds = time.perf_counter() - started
        metrics.observe(self.project, version, endpoint, len(predictions), seconds)
        if self.log is not None:
            self.log.append(records(endpoint, version, seconds * 1000, rows, predictions, ids))

    def reload(self) -> dict:
        """Load the version the ``champion`` alias names now (after a promotion or rollback)."""
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        try:
            version = MlflowClient().get_model_version_by_alias(model_name(self.project), CHAMPION)
        except MlflowException:
            raise ModelNotFound(f"project {self.project!r} has no '{CHAMPION}' model: "
                                f"run `gristmill train {self.project}` first") from None
        served = getattr(self, "served", None)
        if served is None or served[0] != str(version.version):
            # one attribute holds both, so a request never pairs one version's model with another's number
            self.served = (str(version.version), self._load_model(version.source))
        return self.describe()

    @staticmethod
    def _load_model(source: str) -> TabularModel:
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(source).unwrap_python_model().model

    # -- endpoints' logic ----------------------------------------------------------------------
    def by_entities(self, ids: list[Any], extra: dict[str, Any] | None = None,
                    endpoint: str = "predict_entities") -> list[dict]:
        """Predict for entity ids with features from the online store (+ request-time values)."""
        if not ids:
            raise InvalidRequest("give at least one entity id")
        started = time.perf_counter()
        ids = [str(i) for i in ids]
        version, model = self.served
        self._check_fields(model, extra or {})
        now = time.time()  # the on-demand views' request time
        online = self.store.get_online_features(
            features=self.feature_service,
            entity_rows=[{self.entity_key: i, REQUEST_TIME: now} for i in ids],
        ).to_dict()
        stored = [f for f in model.features if f in online]
        unknown = [i for n, i in enumerate(ids) if all(online[f][n] is None for f in stored)]
        if unknown:
            raise EntityNotFound(self.spec.entity.name, unknown)
        rows = [{f: online[f][n] for f in stored} | (extra or {}) for n in range(len(ids))]
        predictions = model.predict_records(rows)
        self._record(endpoint, version, started, rows, predictions, ids)
        return [{self.entity_key: i, **p, "model_version": version} for i, p in zip(ids, predictions)]

    def by_rows(self, rows: list[dict[str, Any]]) -> list[dict]:
        """Predict from raw feature values (missing features count as missing values)."""
        if not rows:
            raise InvalidRequest("give at least one row of feature values")
        started = time.perf_counter()
        version, model = self.served
        for n, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InvalidRequest(f"rows[{n}] must be an object of feature values")
            self._check_fields(model, row, f"rows[{n}]")
        predictions = model.predict_records(rows)
        self._record("predict", version, started, rows, predictions)
        return [{**p, "model_version": version} for p in predictions]

    def describe(self) -> dict:
        version, model = self.served
        return {"project": self.project, "model": model_name(self.project), "alias": CHAMPION,
                "model_version": version, "task": model.task,
                "entity_key": self.entity_key, "features": model.features,
                "classes": [str(c) for c in model.classes]}

    @staticmethod
    def _check_fields(model: TabularModel, row: dict, where: str = "request") -> None:
        unknown = model.unknown_fields(row)
        if unknown:
            raise InvalidRequest(f"{where}: unknown feature {unknown[0]!r} "
                                 f"(features: {', '.join(model.features[:8])}"
                                 f"{', ...' if len(model.features) > 8 else ''})")
