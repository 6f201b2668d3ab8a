"""Optuna search of LightGBM within a time budget, tracked in MLflow, the winner registered.

One parent MLflow run per training; each Optuna trial is a nested run (params, validation score,
rounds, duration). The study lives in the workspace's Optuna journal, so an interrupted training
resumes its finished trials. The winner is refitted, scored on a holdout the search never saw, and
registered under the project's name; the promotion gate (:mod:`gristmill.training.registry`) then
makes it ``champion`` or ``challenger``.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gristmill.errors import DataError
from gristmill.features.naming import TIMESTAMP
from gristmill.spec import ProjectSpec
from gristmill.training import lightgbm_space as space
from gristmill.training import registry
from gristmill.training.model import TabularModel, pyfunc_class
from gristmill.training.task import class_order, detect_task, get_metric
from gristmill.workspace import Workspace

CHAMPION = registry.CHAMPION
log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    project: str
    model_name: str
    version: str
    run_id: str
    dataset_id: str
    task: str
    metric: str
    holdout_score: float
    n_trials: int
    best_params: dict
    seconds: float
    alias: str = CHAMPION
    promotion: dict | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def model_name(project: str) -> str:
    return project


def experiment_name(project: str) -> str:
    return f"gristmill/{project}"


def configure_mlflow(ws: Workspace, project: str | None = None) -> str | None:
    """Point MLflow at the workspace; return the experiment id of ``project`` when given."""
    import warnings

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")
    ws.ensure()
    mlflow.set_tracking_uri(ws.mlflow_uri)
    mlflow.set_registry_uri(ws.mlflow_uri)
    if project is None:
        return None
    name = experiment_name(project)
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        mlflow.set_experiment(name)
        return found.experiment_id
    artifacts = (ws.mlflow_dir / "artifacts" / project).as_uri()
    exp_id = mlflow.create_experiment(name, artifact_location=artifacts, tags={"gristmill_project": project})
    mlflow.set_experiment(name)
    return exp_id


def _split(frame, target: str, task: str, fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    stratify = frame[target] if task != "regression" else None
    try:
        return train_test_split(frame, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError:  # a class too rare to stratify
        return train_test_split(frame, test_size=fraction, random_state=seed)


def _schema(frame, features: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    import pandas as pd

    numeric, categories = [], {}
    for col in features:
        series = frame[col]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            numeric.append(col)
        else:
            levels = sorted({str(v) for v in series.dropna().unique()})
            categories[col] = levels
    return numeric, categories


def train(ws: Workspace, spec: ProjectSpec, dataset_id: str, dataset_path: Path,
          budget_seconds: int | None = None, progress: bool = False) -> TrainResult:
    """Search, refit, score on the holdout, register; returns what was registered."""
    import lightgbm as lgb
    import mlflow
    import optuna
    import pandas as pd
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    started = time.monotonic()
    cfg = spec.training
    budget = budget_seconds or cfg.budget_seconds
    key, target = spec.entity.key, spec.label.target
    frame = pd.read_parquet(dataset_path)
    frame = frame[frame[target].notna()].reset_index(drop=True)
    features = [c for c in frame.columns if c not in (key, TIMESTAMP, target)]
    if len(frame) < 20:
        raise DataError(f"the training set {dataset_id!r} has {len(frame)} labelled rows; need at least 20")
    if not features:
        raise DataError("the training set has no feature columns: check `features:` in the spec")
    task = detect_task(frame[target], cfg.task)
    metric = get_metric(cfg.metric, task)
    classes = class_order(frame[target]) if task != "regression" else []
    numeric, categories = _schema(frame, features)
    template = TabularModel(spec.project, task, features, numeric, categories, classes, dataset_id,
                            metric.name)

    def encode_target(series):
        if task == "regression":
            return series.astype("float64").to_numpy()
        lookup = {c: i for i, c in enumerate(classes)}
        return series.map(lookup).to_numpy()

    train_df, holdout_df = _split(frame, target, task, cfg.holdout_fraction, cfg.seed)
    fit_df, valid_df = _split(train_df, target, task, 0.2, cfg.seed + 1)
    X_fit, X_valid = template.frame(fit_df), template.frame(valid_df)
    y_fit, y_valid = encode_target(fit_df[target]), encode_target(valid_df[target])
    prune_metric = space.PRUNE_METRIC.get((task, metric.name))
    watched = [space.LOSS[task]] + ([prune_metric] if prune_metric and prune_metric != space.LOSS[task] else [])
    base = {**space.FIXED, "objective": space.OBJECTIVE[task], "metric": watched, "seed": cfg.seed}
    if task == "multiclass":
        base["num_class"] = len(classes)

    def fit(params: dict, X, y, valid=None, rounds=space.MAX_ROUNDS, callbacks=()):
        dtrain = lgb.Dataset(X, y, free_raw_data=False)
        sets = [lgb.Dataset(valid[0], valid[1], reference=dtrain)] if valid is not None else []
        cbs = list(callbacks)
        if valid is not None:
            cbs.append(lgb.early_stopping(space.EARLY_STOPPING_ROUNDS, first_metric_only=True, verbose=False))
        return lgb.train({**base, **params}, dtrain, num_boost_round=rounds, valid_sets=sets,
                         callbacks=cbs)

    exp_id = configure_mlflow(ws, spec.project)
    journal = ws.optuna_journal(spec.project)
    journal.parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(journal)))
    direction = "maximize" if metric.greater_is_better else "minimize"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=f"{spec.project}:{dataset_id}", storage=storage,
                                direction=direction, load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=cfg.seed),
                                pruner=optuna.pruners.MedianPruner(n_warmup_steps=20))
    if not study.trials:
        study.enqueue_trial(space.DEFAULTS)

    with mlflow.start_run(experiment_id=exp_id, run_name=f"train {dataset_id}") as parent:
        mlflow.set_tags({"gristmill_project": spec.project, "training_set_id": dataset_id,
                         "task": task, "trainer": cfg.trainer})
        mlflow.log_params({"budget_seconds": budget, "metric": metric.name, "rows": len(frame),
                           "features": len(features), "holdout_fraction": cfg.holdout_fraction})

        def objective(trial):
            t0 = time.monotonic()
            params = space.suggest(trial)
            from optuna_integration import LightGBMPruningCallback

            callbacks = [LightGBMPruningCallback(trial, prune_metric)] if prune_metric else []
            booster = fit(params, X_fit, y_fit, (X_valid, y_valid), callbacks=callbacks)
            value = metric.score(y_valid, booster.predict(X_valid))
            trial.set_user_attr("best_iteration", booster.best_iteration or booster.current_iteration())
            with mlflow.start_run(experiment_id=exp_id, run_name=f"trial {trial.number}", nested=True):
                mlflow.log_params(params)
                mlflow.log_metrics({f"valid_{metric.name}": value,
                                    "rounds": trial.user_attrs["best_iteration"],
                                    "seconds": time.monotonic() - t0})
            return value

        remaining = max(1.0, budget - (time.monotonic() - started))
        done_before = len([t for t in study.trials if t.state.is_finished()])
        study.optimize(objective, timeout=remaining, n_trials=max(1, cfg.max_trials - done_before),
                       catch=(), show_progress_bar=progress and sys.stderr.isatty())
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete:
            raise DataError("no training trial finished within the budget; raise training.budget_seconds")
        best = study.best_trial
        rounds = int(best.user_attrs.get("best_iteration") or 100)
        rounds = max(1, int(rounds / 0.8))  # refit on the whole training part: scale the rounds
        booster = fit(best.params, template.frame(train_df), encode_target(train_df[target]), rounds=rounds)
        model = TabularModel(**{**template.__dict__, "booster": booster})
        holdout = metric.score(encode_target(holdout_df[target]), booster.predict(model.frame(holdout_df)))
        mlflow.log_params({f"best_{k}": v for k, v in best.params.items()} | {"best_rounds": rounds})
        mlflow.log_metrics({f"holdout_{metric.name}": holdout, f"valid_{metric.name}": best.value,
                            "trials": len(complete)})
        leaderboard = study.trials_dataframe(attrs=("number", "value", "params", "state", "duration"))
        version = _register(spec.project, model, holdout_df[features], leaderboard)
        champion_score, note = _champion_score(spec.project, model, metric, holdout_df,
                                               encode_target(holdout_df[target]))
        decision = registry.decide(ws, spec.project, version, metric.name, metric.greater_is_better,
                                   holdout, champion_score, cfg.promotion_margin, note)
        mlflow.set_tags({"alias": decision.alias, "promotion": decision.reason})
        result = TrainResult(spec.project, model_name(spec.project), version, parent.info.run_id,
                             dataset_id, task, metric.name, holdout, len(complete), best.params,
                             round(time.monotonic() - started, 1), decision.alias, decision.as_dict())
    return result


def _champion_score(project: str, model: TabularModel, metric, holdout_df, y_holdout):
    """The current champion's score on the new model's holdout: (score, "") or (None, why not)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        loaded = mlflow.pyfunc.load_model(f"models:/{model_name(project)}@{CHAMPION}")
    except MlflowException:
        return None, ""  # no champion yet
    champion = loaded.unwrap_python_model().model
    if champion.task != model.task or [str(c) for c in champion.classes] != [str(c) for c in model.classes]:
        return None, (f"the champion predicts a {champion.task} task with classes {champion.classes}, "
                      "not comparable: promote by hand if intended")
    try:
        return metric.score(y_holdout, champion.booster.predict(champion.frame(holdout_df), num_threads=1)), ""
    except Exception as exc:  # an old model that cannot read today's features is not comparable
        return None, f"the champion could not be scored on the new holdout ({exc})"


def _register(project: str, model: TabularModel, example_rows, leaderboard) -> str:
    import tempfile

    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        leaderboard.to_csv(folder / "leaderboard.csv", index=False)
        mlflow.log_artifact(str(folder / "leaderboard.csv"))
        artifacts = model.save(folder / "model")
        example = example_rows.head(5).copy()
        for col in model.categories:
            example[col] = example[col].astype("object").where(example[col].notna(), None)
        for col in model.numeric:
            example[col] = example[col].astype("float64")
        signature = infer_signature(example, model.predict_table(example))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=pyfunc_class()(),
            artifacts=artifacts,
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
            registered_model_name=model_name(project),
        )
    client = MlflowClient()
    version = str(info.registered_model_version)
    client.set_model_version_tag(model_name(project), version, "training_set_id", model.dataset_id)
    mlflow.set_tag("registered_version", version)
    return version


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("mlflow", "lightgbm", "pandas", "numpy", "scikit-learn")]
