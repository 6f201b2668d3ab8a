"""Training: a cross-validated Optuna search over every trainer, an ensemble, the winner registered.

The holdout (cut by entity or by time when the spec says so) is kept apart. The search
(:mod:`gristmill.training.search`) runs K-fold CV over the trainers, folds in parallel, until a
deadline that leaves room for the refit; the ensemble (:mod:`gristmill.training.ensemble`) is
chosen greedily on the out-of-fold predictions. Its members are refitted on every labelled row
(``training.refit: all``; the holdout is then scored by each member's fold models, which never saw
it, and a member whose refit would not end in time is kept as those fold models), kept as their
fold models (``bag``), or refitted on the training rows only (``train``), and registered as one MLflow model; the promotion gate
(:mod:`gristmill.training.registry`) makes it ``champion`` or ``challenger``. The whole call keeps
to ``budget_seconds``. One parent MLflow run per training (with the seconds of each phase), a
nested run per trial, a leaderboard (CSV + HTML) and holdout plots as artifacts. The study lives in
the workspace's Optuna journal, its out-of-fold predictions beside it, so an interrupted training
resumes every finished trial.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from gristmill.errors import DataError
from gristmill.spec import ProjectSpec
from gristmill.training import calibration, registry, reports, stacking
from gristmill.training.model import TabularModel
from gristmill.training.prepare import prepare, sample_weights
from gristmill.training.text import cache_at
from gristmill.workspace import Workspace

CHAMPION = registry.CHAMPION
#: Seconds the budget keeps for what follows the search and the refit: holdout scoring, plots,
#: the leaderboard, registration and the gate (measured: 2-4 s on 2 cores).
AFTER_SEARCH = 4.0
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
    ensemble: list | None = None
    #: label rows not trained on, by reason (``pending``: no target yet; ``no_key``, ``no_timestamp``)
    labels_left_out: dict | None = None
    #: notices about the features: identifier-like columns kept out, single features that look leaked
    feature_notices: list | None = None
    #: the quality gate's checks (``training.gate``): status, failures, skipped checks, slice scores
    gate: dict | None = None
    #: the evaluation report (:mod:`gristmill.training.evaluation`): its JSON and HTML paths
    evaluation: dict | None = None

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
    from gristmill.config import mlflow_artifacts_root, mlflow_tracking_uri

    ws.ensure()
    uri = mlflow_tracking_uri(ws)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    with _mlflow_setup_lock(ws):  # two workers' first use would both migrate the new database
        if uri == ws.mlflow_uri:
            from gristmill.training.mlflow_db import seed

            seed(ws.mlflow_dir / "mlflow.db")  # a migrated copy: no 2.5 s of migrations on first use
        if project is None:
            mlflow.MlflowClient().search_experiments(max_results=1)  # creates the store once
            return None
        name = experiment_name(project)
        found = mlflow.get_experiment_by_name(name)
        if found is not None:
            mlflow.set_experiment(name)
            return found.experiment_id
        artifacts = (mlflow_artifacts_root(ws) / project).as_uri()
        exp_id = mlflow.create_experiment(name, artifact_location=artifacts, tags={"gristmill_project": project})
        mlflow.set_experiment(name)
        return exp_id


@contextlib.contextmanager
def _mlflow_setup_lock(ws: Workspace):
    """An exclusive lock (fcntl, next to the MLflow database) while the store is created or an
    experiment is looked up and made: processes sharing the workspace do it one at a time."""
    import fcntl

    ws.mlflow_dir.mkdir(parents=True, exist_ok=True)
    with open(ws.mlflow_dir / "setup.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def study_storage(ws: Workspace, project: str, create: bool = True):
    """The Optuna storage of ``project``'s studies: the team's PostgreSQL (RDB storage) when
    configured, else the project's journal file (None when ``create`` is False and it has none)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from gristmill.config import optuna_storage_url

    url = optuna_storage_url(ws)
    if url:
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    journal = ws.optuna_journal(project)
    if not create and not journal.is_file():
        return None
    journal.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(journal)))


class Reporter:
    """Progress for a caller (a job record, a progress bar): ``report(dict)`` at most once per
    ``every`` seconds, except stage changes and the last call, which always go through."""

    def __init__(self, report: Callable[[dict], None] | None, metric: str, total: int | None,
                 end: float, every: float = 1.0) -> None:
        self.report, self.metric, self.total, self.end, self.every = report, metric, total, end, every
        self.last, self.stage = -1e9, None

    def __call__(self, stage: str, done: int = 0, best: float | None = None, message: str = "",
                 force: bool = False) -> None:
        if self.report is None:
            return
        now = time.monotonic()
        if not force and stage == self.stage and now - self.last < self.every:
            return
        self.last, self.stage = now, stage
        self.report({"stage": stage, "done": int(done), "total": self.total,
                     "best": None if best is None else float(best), "metric": self.metric,
                     "eta_seconds": max(0.0, round(self.end - now, 1)), "message": message})


def _log_history(history: list[dict], prefix: str) -> None:
    """Per-epoch metrics of a neural trainer (``<prefix>train_loss`` ... at step = epoch)."""
    import mlflow

    for row in history:
        values = {f"{prefix}{k}": float(v) for k, v in row.items() if k not in ("epoch", "fold")}
        mlflow.log_metrics(values, step=int(row["epoch"]))


def train(ws: Workspace, spec: ProjectSpec, dataset_id: str, dataset_path: Path,
          budget_seconds: int | None = None, progress: bool = False, job_id: str | None = None,
          report: Callable[[dict], None] | None = None, workers: int | None = None,
          spawn_helpers: Callable[[dict, int], Any] | None = None) -> TrainResult:
    """Search, ensemble, refit, score on the holdout, register; returns what was registered.

    ``job_id`` (a job queue's id) tags the MLflow runs, the Optuna trials and the model version
    (``gristmill_job``), and makes the call idempotent: when a version of this job is registered
    already, it is returned and nothing is trained again. ``report`` receives progress dicts
    (:class:`Reporter`: stage, trials done, best score, seconds left), about once a second.
    ``workers`` (default ``training.workers``) processes run trials of the study at once: this one
    and helpers started by ``spawn_helpers(ref, n)`` (a job queue's sub-jobs running
    :func:`gristmill.training.distributed.run_trials`) or, without it, local processes; the
    ensemble is chosen from every complete trial of the study."""
    started = time.monotonic()  # the budget counts from here, imports included
    import mlflow
    import numpy as np
    import optuna
    import pandas as pd

    from gristmill.training import recovery, trainers
    from gristmill.training.ensemble import greedy_weights
    from gristmill.training.model import Member
    from gristmill.training.search import (REFIT_FACTOR, Pace, has_folds, load_folds, plan_bags, remove_folds,
                                           run_search)

    cfg = spec.training
    budget = budget_seconds or cfg.budget_seconds
    job_id = recovery.check_job_id(job_id)
    if job_id:
        done_before = registered_for_job(ws, spec.project, job_id)
        if done_before is not None:
            log.info("job %s already registered version %s of %s: returned as is", job_id,
                     done_before.version, spec.project)
            return done_before
    p = prepare(ws, spec, dataset_id, dataset_path)
    from gristmill.training import gate as quality_gate

    quality_gate.validate(cfg.gate, p.task, list(p.holdout_df.columns))  # before the budget is spent
    (key, target, frame, left_out, features, identifiers, task, metric, text_columns, fit_task,
     strategy, holdout_df, encoders, template, X, X_holdout, y, y_holdout, weight, leaks, notices,
     folds, splits) = (p.key, p.target, p.frame, p.left_out, p.features, p.identifiers, p.task,
     p.metric, p.text_columns, p.fit_task, p.strategy, p.holdout_df, p.encoders, p.template, p.X,
     p.X_holdout, p.y, p.y_holdout, p.weight, p.leaks, p.notices, p.folds, p.splits)
    exp_id = configure_mlflow(ws, spec.project)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = study_storage(ws, spec.project)
    recovery.fail_stale(ws, spec.project)  # a killed training's runs and trials end FAILED
    tags = recovery.process_tags(job_id)
    study_name = f"{spec.project}:{dataset_id}:{','.join(cfg.trainers)}:{folds}:{strategy}"
    study = optuna.create_study(study_name=study_name, storage=storage,
                                direction="maximize" if metric.greater_is_better else "minimize",
                                load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=cfg.seed, multivariate=True, group=True),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=len(cfg.trainers),
                                                                   n_warmup_steps=1))
    oof_dir = ws.root / "optuna" / spec.project / f"oof-{study._study_id}"
    progress_of = Reporter(report, metric.name, cfg.max_trials, started + budget)
    progress_of("search", message="searching")

    # every run is created with its tags in one call: a kill right after it leaves no untagged RUNNING run
    run_tags = {"gristmill_project": spec.project, "training_set_id": dataset_id, "task": task,
                "trainers": ",".join(cfg.trainers), "cv": strategy, "optuna_study": study_name, **tags}
    with cache_at(ws.root / "cache" / "text"), \
            mlflow.start_run(experiment_id=exp_id, run_name=f"train {dataset_id}", tags=run_tags) as parent:
        mlflow.log_params({"budget_seconds": budget, "metric": metric.name, "rows": len(frame),
                           "features": len(features), "holdout_fraction": cfg.holdout_fraction,
                           "folds": folds, "class_weight": cfg.class_weight,
                           **{f"labels_left_out_{k}": v for k, v in left_out.items()}})
        mlflow.log_metric("labels_pending", left_out["pending"])
        if identifiers:
            mlflow.set_tag("identifier_columns_kept_out", ",".join(n.column for n in identifiers))
        if leaks:
            mlflow.set_tag("likely_leaks", ", ".join(f"{n.column} {n.score:.4f}" for n in leaks))
        if text_columns:
            mlflow.log_params({"text_columns": ",".join(text_columns),
                               "text_encoder": ",".join(sorted({e.kind for e in encoders.values()})) or "none"})

        if template.dates:
            mlflow.log_param("date_columns", ",".join(template.dates))

        def on_trial(trial, name, params, score, seconds):
            with mlflow.start_run(experiment_id=exp_id, run_name=f"trial {trial.number} {name}", nested=True,
                                  tags={"trainer": name, "optuna_trial": trial.number, **tags}):
                mlflow.log_params(params)
                mlflow.log_metrics({f"cv_{metric.name}": score, "seconds": seconds,
                                    "rounds": trial.user_attrs.get("rounds") or 0})
                for fold in sorted({h["fold"] for h in trial.user_attrs.get("history", [])}):
                    _log_history([h for h in trial.user_attrs["history"] if h["fold"] == fold], f"fold{fold}_")
            done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            best = max if metric.greater_is_better else min
            progress_of("search", len(done) + 1, best([t.value for t in done] + [score]),
                        f"trial {trial.number} {name}: {score:.4f}")

        pace = Pace.for_budget(started + budget, AFTER_SEARCH, folds)
        mlflow.log_params({"parallel_fits": pace.workers, "threads_per_fit": pace.threads, "refit": cfg.refit})
        search_started = time.monotonic()
        n_workers = workers or cfg.workers
        helpers, deadline = None, time.time() + (started + budget - time.monotonic())
        if n_workers > 1:
            from gristmill.config import optuna_storage_url
            from gristmill.training import distributed
            from gristmill.training.portfolio import enqueue_next

            enqueue_next(study, cfg.trainers, lambda: False, metric.greater_is_better, len(y),  # before helpers join
                         classes=fit_task.n_classes)
            ref = distributed.study_ref(ws, spec, dataset_id, dataset_path, study_name, oof_dir, deadline,
                                        job_id, parent.info.run_id, optuna_storage_url(ws))
            helpers = (spawn_helpers or distributed.spawn_local)(ref, n_workers - 1)
            mlflow.log_param("workers", n_workers)
        found = run_search(X, y, weight, fit_task, metric, cfg.trainers, splits, pace, study, oof_dir,
                           cfg.max_trials, progress, on_trial, X_holdout if cfg.refit != "train" else None,
                           cfg.ensemble, trial_attrs=tags, keep_refit_time=cfg.refit != "bag")
        if n_workers > 1:
            from gristmill.training.search import candidates

            progress_of("search", len(found), found[0].score if found else None, "waiting for the helpers",
                        force=True)
            distributed.wait_for_helpers(study, deadline - AFTER_SEARCH, helpers)
            found = candidates(study, oof_dir, with_holdout=cfg.refit != "train")
            hosts = {t.user_attrs.get("gristmill_host", "") + ":" + str(t.user_attrs.get("gristmill_pid", ""))
                     for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))}
            log.info("study %s: %d complete trial(s) from %d process(es)", study_name, len(found), len(hosts))
        if not found:
            raise DataError("no training trial finished within the budget; raise training.budget_seconds")
        refit_started = time.monotonic()
        progress_of("ensemble", len(found), found[0].score, f"ensemble of {len(found)} trials")
        mask = np.zeros(len(y), dtype=bool)
        for _, va in splits:
            mask[va] = True
        weights = greedy_weights(found, y, metric, mask) if cfg.ensemble else {found[0].number: 1.0}
        chosen = [c for c in found if c.number in weights]
        # the ensemble's probabilities recalibrated on its out-of-fold rows (None: left as they are)
        calibrated = calibration.fit(task, sum(weights[c.number] * c.oof for c in chosen)[mask], y[mask],
                                     metric.name, cfg.seed)
        stacker = None
        if cfg.ensemble and len(chosen) > 1:  # a linear second layer, if it beats the weights unseen
            greedy = calibration.apply(calibrated, task, sum(weights[c.number] * c.oof for c in chosen)[mask])
            stacker = stacking.fit(task, [c.oof[mask] for c in chosen], y[mask], metric,
                                   metric.score(y[mask], greedy), cfg.seed)
        stacked = [c.number for c in chosen] if stacker else []
        if stacker:
            calibrated = None  # the logistic layer fits the probabilities itself
        if cfg.refit != "train":  # every labelled row, or the fold models; they scored the holdout
            X_fit, y_fit = pd.concat([X, X_holdout], ignore_index=True), np.concatenate([y, y_holdout])
            w_fit = sample_weights(y_fit, task, cfg.class_weight)
            holdout_scores = (stacking.apply(stacker, task, stacking.inputs(task, [c.holdout for c in chosen]))
                              if stacker else
                              calibration.apply(calibrated, task, sum(weights[c.number] * c.holdout for c in chosen)))
        else:
            X_fit, y_fit, w_fit = X, y, weight
        grow = (len(y_fit) / np.mean([len(tr) for tr, _ in splits])) ** 0.5  # rounds for more rows

        chosen.sort(key=lambda c: c.seconds, reverse=True)  # the longest refit starts first
        # a member whose refit would not end in time (or every one, with refit: bag) is served as
        # its fold models, which scored the holdout already
        bagged = set() if cfg.refit == "train" else plan_bags(
            {c.number: REFIT_FACTOR * c.seconds * pace.workers / len(splits) for c in chosen}, pace.workers,
            pace.end - pace.after_search - time.monotonic(), cfg.refit == "bag",
            {c.number for c in chosen if has_folds(oof_dir, c.number)})
        bags = {}
        for cand in chosen:
            try:
                bags.update({cand.number: load_folds(oof_dir, cand.number)} if cand.number in bagged else {})
            except Exception as exc:  # unreadable fold models: refit this member after all
                log.warning("fold models of trial %s unreadable (%s): refitting it", cand.number, exc)
        to_refit = [c for c in chosen if not bags.get(c.number)]
        threads = max(pace.threads, (pace.workers * pace.threads) // max(1, len(to_refit)))

        def refit(cand):
            trainer = trainers.get(cand.trainer)
            rounds = max(1, int(cand.rounds * grow)) if cand.rounds else None
            fit = replace(fit_task, threads=threads)  # never stopped: its rounds were validated
            return trainer.fit(cand.params, fit, trainer.inputs(X_fit), y_fit, w_fit, rounds=rounds)

        progress_of("refit", len(found), found[0].score, f"refitting {len(to_refit)} member(s)"
                    + (f", {len(bags)} kept as their fold models" if bags else ""))
        members, groups = [], []  # groups: each member's input of the stacker
        for cand, fitted in zip(to_refit, pace.map(refit, to_refit) if to_refit else []):
            _log_history(fitted.extra.get("history", []), f"refit_{cand.trainer}_")
            fitted.extra.pop("history", None)
            members.append(Member(cand.trainer, weights[cand.number], fitted, cand.params))
            groups.append(stacked.index(cand.number) if stacker else 0)
        for cand in chosen:
            for fitted in bags.get(cand.number) or []:
                members.append(Member(cand.trainer, weights[cand.number] / len(bags[cand.number]), fitted,
                                      {**cand.params, "bagged_trial": cand.number}))
                groups.append(stacked.index(cand.number) if stacker else 0)
        model = replace(template, members=members, calibration=calibrated,
                        stacker={**stacker, "groups": groups} if stacker else None)
        remove_folds(oof_dir)  # the members are in memory; the fold models of every trial are not needed
        if cfg.refit == "train":
            holdout_scores = model.scores(X_holdout)
        holdout = metric.score(y_holdout, holdout_scores)
        registered_started = time.monotonic()
        mlflow.log_metrics({f"holdout_{metric.name}": holdout, f"cv_{metric.name}": found[0].score,
                            "trials": len(found), "ensemble_members": len(members),
                            "ensemble_bagged": len(bags), "ensemble_stacked": int(stacker is not None),
                            "seconds_before_search": search_started - started,
                            "seconds_search": refit_started - search_started,
                            "seconds_refit": registered_started - refit_started})
        ensemble = reports.ensemble_summary(chosen, weights, bags)
        mlflow.log_params({"ensemble": " + ".join(f"{e['weight']:.2f} {e['trainer']}"
                                                  + (f" (bag of {e['bag']})" if e.get("bag") else "") for e in ensemble),
                           "calibration": reports.calibration_label(calibrated),
                           "stacker": (f"linear over {len(stacked)} members (CV {metric.name} "
                                       f"{stacker['cv']['stacked']:.4f} against {stacker['cv']['greedy']:.4f})"
                                       if stacker else "none")})
        leaderboard = reports.leaderboard(study, weights, metric.name)
        reports.log_reports(model, holdout_scores, y_holdout, leaderboard)
        from gristmill.training.publish import register_model

        progress_of("register", len(found), found[0].score, f"registering ({metric.name} {holdout:.4f})")
        version = register_model(spec.project, model, holdout_df[features], {"gristmill_job": job_id}
                                 if job_id else None)
        rows = reports.holdout_rows(holdout_df, key, target)
        champion = reports.champion_score(spec.project, model, metric, holdout_df, y_holdout, rows)
        champion_score, note = champion.score, champion.note
        checked = quality_gate.check(cfg.gate, task, metric, y_holdout, holdout_scores,
                                     holdout_df.reset_index(drop=True), champion_score,
                                     champion.slices, champion.predicted)
        registry.tag_version(ws, spec.project, version, {"fingerprint_holdout": rows, "refit": cfg.refit,
                                                         **checked.tags()})
        if checked.checks:
            mlflow.log_dict(checked.as_dict(), "gate.json")
            mlflow.set_tags({"gate": checked.status, **({"gate_failures": checked.tags()["gate_failures"]}
                                                         if checked.failures else {})})
        decision = registry.decide(ws, spec.project, version, metric.name, metric.greater_is_better,
                                   holdout, champion_score, cfg.promotion_margin, note,
                                   flags=[n.line() for n in leaks], gate_failures=checked.failures)
        mlflow.set_tags({"alias": decision.alias, "promotion": decision.reason})
        evaluation = reports.evaluation_report(ws, spec.project, version, task, metric, y_holdout, holdout_scores,
                                        holdout_df, cfg, checked, champion)
        mlflow.log_metric("seconds_register", time.monotonic() - registered_started)
        best = found[0]
        result = TrainResult(spec.project, model_name(spec.project), version, parent.info.run_id,
                             dataset_id, task, metric.name, holdout, len(found),
                             {"trainer": best.trainer, **best.params},
                             round(time.monotonic() - started, 1), decision.alias, decision.as_dict(),
                             ensemble,
                             left_out, notices, checked.as_dict(), evaluation)
    progress_of("register", len(found), found[0].score, f"registered version {version} as {decision.alias}",
                force=True)
    return result


def registered_for_job(ws: Workspace, project: str, job_id: str) -> TrainResult | None:
    """The model version a job registered already (tagged ``gristmill_job``), as a result, or None."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from gristmill.config import mlflow_in_use

    if not mlflow_in_use(ws):
        return None
    configure_mlflow(ws)
    client = MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{model_name(project)}'")
    except MlflowException:
        return None
    found = client.get_experiment_by_name(experiment_name(project))
    runs = {r.info.run_id for r in client.search_runs([found.experiment_id],
                                                      f"tags.gristmill_job = '{job_id}'")} if found else set()
    mine = [v for v in versions if v.tags.get("gristmill_job") == job_id or v.run_id in runs]
    if not mine:
        return None
    v = max(mine, key=lambda v: int(v.version))
    run = client.get_run(v.run_id)
    metric = run.data.params.get("metric", "")
    aliases = list(getattr(v, "aliases", []) or [])
    return TrainResult(project, model_name(project), str(v.version), v.run_id,
                       run.data.tags.get("training_set_id", v.tags.get("training_set_id", "")),
                       run.data.tags.get("task", ""), metric,
                       float(run.data.metrics.get(f"holdout_{metric}", float("nan"))),
                       int(run.data.metrics.get("trials", 0)), {}, 0.0,
                       aliases[0] if aliases else run.data.tags.get("alias", ""),
                       {"reason": "already registered by this job", "job_id": job_id})
