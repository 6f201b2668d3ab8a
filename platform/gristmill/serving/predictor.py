"""What a project's service does per request: online features from Feast + the champion model.

The BentoML service file in ``bentos/<project>/`` only declares endpoints and calls this class.
"""

from __future__ import annotations

import time
from typing import Any

from gristmill.errors import EntityNotFound, InvalidRequest, ModelNotFound, shown
from gristmill.features.naming import REQUEST_TIME, service_name
from gristmill.features.online_lookup import lookup
from gristmill.serving import traffic
from gristmill.serving.bundle import Bundled
from gristmill.serving.schema import check_numbers
from gristmill.spec import load_spec
from gristmill.training.model import TabularModel
from gristmill.training.registry import CHALLENGER, CHAMPION
from gristmill.training.train import configure_mlflow, model_name
from gristmill.workspace import Workspace


class Predictor:
    """Loads ``models:/<project>@champion`` and the project's feature service once; logs every
    prediction (:mod:`gristmill.serving.prediction_log`) and counts it (:mod:`.metrics`).

    With ``serving.challenger_share`` or ``serving.shadow`` in the spec it also loads
    ``@challenger`` and routes or shadows traffic to it (:mod:`gristmill.serving.traffic`)."""

    def __init__(self, ws: Workspace, project: str, log: bool = True, store=None,
                 bundled: dict[str, Bundled] | None = None, pinned: bool = False) -> None:
        """``bundled`` maps ``champion`` / ``challenger`` to model versions a bento carries
        (:mod:`gristmill.serving.bundle`); ``pinned`` (a built bento) serves just those, with no
        MLflow; otherwise the registry's aliases decide and a bundled version is read from its folder."""
        from feast.errors import FeatureServiceNotFoundException

        from gristmill.features.store import open_store
        from gristmill.serving.prediction_log import PredictionLog, log_folder

        ws.require_project(project)
        self.ws, self.project = ws, project
        self.bundled = {k: v for k, v in (bundled or {}).items() if v is not None}
        self.pinned = pinned
        self.reload()  # reads the spec and points MLflow at the workspace (once per load)
        self.store = store or open_store(ws)  # the gateway shares one store across projects
        try:
            self.feature_service = self.store.get_feature_service(service_name(project))
        except FeatureServiceNotFoundException:  # applied after this store read the registry: read again
            self.store.refresh_registry()
            self.feature_service = self.store.get_feature_service(service_name(project))
        self.log = PredictionLog(log_folder(ws.root, project)) if log and self.spec.serving.log_predictions else None

    def _record(self, endpoint: str, version: str, variant: str, seconds: float, rows: list[dict],
                predictions: list[dict], ids: list[str] | None = None) -> None:
        from gristmill.serving import metrics
        from gristmill.serving.prediction_log import records

        if variant != traffic.SHADOW:
            metrics.observe(self.project, version, endpoint, len(predictions), seconds)
        if self.log is not None:
            self.log.append(records(endpoint, version, seconds * 1000, rows, predictions, ids, variant))

    def close(self) -> None:
        """Flush the prediction log (the gateway drops this predictor)."""
        if self.log is not None:
            self.log.close()

    def reload(self) -> dict:
        """Load the versions the ``champion`` (and, for A/B or shadow, ``challenger``) aliases name now,
        with the spec's traffic settings as they are now."""
        from gristmill.config import mlflow_client
        from gristmill.training.registry import alias_version

        self.spec = load_spec(self.ws.spec_path(self.project))  # traffic settings may have changed
        self.entity_key = self.spec.entity.key
        wants = self.spec.serving.challenger_share > 0 or self.spec.serving.shadow
        if self.pinned:
            return self._reload_bundled(wants)
        configure_mlflow(self.ws)   # models:/ sources resolve through the process-wide URI: ours, now
        client = mlflow_client(self.ws)
        name = model_name(self.project)
        champion = alias_version(client, name, CHAMPION)
        if champion is None:
            raise ModelNotFound(f"project {self.project!r} has no '{CHAMPION}' model: "
                                f"run `gristmill train {self.project}` first")
        challenger = alias_version(client, name, CHALLENGER) if wants else None
        held = (getattr(self, "served", None), getattr(self, "challenger", None))
        loaded = {pair[0]: pair[1] for pair in held if pair}
        served = (champion, loaded.get(champion) or self._load_model(client, name, champion))
        other = None
        if challenger is not None and challenger != champion:
            other = (challenger, loaded.get(challenger) or self._load_model(client, name, challenger))
        # one attribute each holds version and model, so a request never pairs one version's model
        # with another's number
        self.served, self.challenger = served, other
        return self.describe()

    def _reload_bundled(self, wants_challenger: bool) -> dict:
        """A built bento: the versions it carries, whatever the registry says now."""
        from gristmill.serving import bundle

        champion = self.bundled.get(CHAMPION)
        if champion is None:
            raise ModelNotFound(f"this bento of {self.project!r} was built without a model: run "
                                f"`gristmill deploy {self.project}` after training, then `bentoml build`")
        challenger = self.bundled.get(CHALLENGER) if wants_challenger else None
        self.served = (champion.version, bundle.load(champion))
        self.challenger = (challenger.version, bundle.load(challenger)) if challenger else None
        return self.describe()

    def _load_model(self, client, name: str, version: str) -> TabularModel:
        import mlflow.pyfunc

        from gristmill.serving import bundle

        for item in self.bundled.values():  # the same version, already in BentoML's model store
            if item.version == version and item.path.is_dir():
                return bundle.load(item)
        source = client.get_model_version(name, version).source
        return mlflow.pyfunc.load_model(source).unwrap_python_model().model

    # -- endpoints' logic ----------------------------------------------------------------------
    def by_entities(self, ids: list[Any], extra: dict[str, Any] | None = None,
                    endpoint: str = "predict_entities", strict: bool = True) -> list[dict]:
        """Predict for entity ids with features from the online store (+ request-time values).

        An unknown id fails the request (404) unless ``strict`` is False: then it answers
        ``{"<key>": id, "error": ...}`` in its place (adaptive batching merges strangers' requests,
        and one stranger's typo must not fail the others)."""
        if not ids:
            if not strict:  # adaptive batching: a request of no ids is answered with none
                return []
            raise InvalidRequest("give at least one entity id")
        started = time.perf_counter()
        ids = [str(i) for i in ids]
        models = self._models()
        self._check_fields(models[0][1], extra or {})
        now = time.time()  # the on-demand views' request time
        online = lookup(self.store, self.feature_service, {self.entity_key: ids, REQUEST_TIME: [now] * len(ids)})
        stored = list(dict.fromkeys(f for _, m in models for f in m.features if f in online))
        known = [not all(online[f][n] is None for f in stored) for n in range(len(ids))]
        if not all(known):
            missing = [i for i, k in zip(ids, known) if not k]
            if strict:
                raise EntityNotFound(self.spec.entity.name, missing)
        found = [n for n, k in enumerate(known) if k]
        rows = [{f: online[f][n] for f in stored} | (extra or {}) for n in found]
        answers = dict(zip(found, self._score(endpoint, started, rows, [ids[n] for n in found],
                                              [ids[n] for n in found]))) if found else {}
        error = f"unknown {self.spec.entity.name} id (no features in the online store)"
        return [{self.entity_key: i, **answers[n]} if n in answers else {self.entity_key: i, "error": error}
                for n, i in enumerate(ids)]

    def by_rows(self, rows: list[dict[str, Any]]) -> list[dict]:
        """Predict from raw feature values (missing features count as missing values)."""
        if not rows:
            raise InvalidRequest("give at least one row of feature values")
        started = time.perf_counter()
        champion = self.served[1]
        for n, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InvalidRequest(f"rows[{n}] must be an object of feature values")
            self._check_fields(champion, row, f"rows[{n}]")
            check_numbers(champion.numeric, row, f"rows[{n}]")
        keys = [traffic.row_key(r) for r in rows] if self.challenger else [""] * len(rows)
        return self._score("predict", started, rows, keys, None)

    def _models(self) -> list[tuple[str, TabularModel]]:
        return [self.served] + ([self.challenger] if self.challenger else [])

    def _score(self, endpoint: str, started: float, rows: list[dict], keys: list[str],
               ids: list[str] | None) -> list[dict]:
        """Each row scored by the model its key is routed to; the shadow copy scored after."""
        champion, challenger = self.served, self.challenger
        share = self.spec.serving.challenger_share if challenger else 0.0
        routes = traffic.variants(self.project, keys, share)
        answers: list[dict] = [{}] * len(rows)
        done = []
        for variant, (version, model) in [(traffic.CHAMPION, champion)] + \
                ([(traffic.CHALLENGER, challenger)] if challenger else []):
            picked = [n for n, r in enumerate(routes) if r == variant]
            if not picked:
                continue
            predictions = model.predict_records([rows[n] for n in picked])
            for n, p in zip(picked, predictions):
                answers[n] = {**p, "model_version": version, "variant": variant}
            done.append((variant, version, picked, predictions))
        seconds = time.perf_counter() - started
        for variant, version, picked, predictions in done:
            self._record(endpoint, version, variant, seconds, [rows[n] for n in picked], predictions,
                         [ids[n] for n in picked] if ids else None)
        if challenger and self.spec.serving.shadow:
            picked = [n for n, r in enumerate(routes) if r == traffic.CHAMPION]
            if picked:
                self._shadow(endpoint, challenger, [rows[n] for n in picked],
                             [ids[n] for n in picked] if ids else None)
        return answers

    def _shadow(self, endpoint: str, challenger: tuple[str, TabularModel], rows: list[dict],
                ids: list[str] | None) -> None:
        """Score with the challenger and log it; a failure here is logged, never answered."""
        started = time.perf_counter()
        try:
            predictions = challenger[1].predict_records(rows)
        except Exception as exc:
            import logging

            logging.getLogger(__name__).warning("shadow scoring with version %s failed: %s", challenger[0], exc)
            return
        self._record(endpoint, challenger[0], traffic.SHADOW, time.perf_counter() - started, rows, predictions, ids)

    def describe(self) -> dict:
        version, model = self.served
        serving = self.spec.serving
        return {"project": self.project, "model": model_name(self.project), "alias": CHAMPION,
                "model_version": version, "task": model.task,
                "entity_key": self.entity_key, "features": model.features,
                "classes": [str(c) for c in model.classes],
                "challenger_version": self.challenger[0] if self.challenger else None,
                "challenger_share": serving.challenger_share if self.challenger else 0.0,
                "shadow": bool(self.challenger and serving.shadow),
                "source": "bento" if self.pinned else "registry"}

    @staticmethod
    def _check_fields(model: TabularModel, row: dict, where: str = "request") -> None:
        unknown = model.unknown_fields(row)
        if unknown:
            raise InvalidRequest(f"{where}: unknown feature {shown(unknown[0])!r} "
                                 f"(features: {', '.join(model.features[:8])}"
                                 f"{', ...' if len(model.features) > 8 else ''})")
