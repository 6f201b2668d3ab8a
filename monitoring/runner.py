"""One monitoring run: reference, window, checks, reports, history, MLflow, Evidently workspace, alerts.

The run meets the rest of Gristmill through names only: the training set's Parquet and its JSON
record (``datasets/<project>/``), the prediction log (``predictions/<project>/date=*/*.parquet``),
the label table in the DuckDB catalog, and the registered MLflow model named after the project.

Outputs of a run ``<job>-<UTC time>`` in ``<workspace>/reports/<project>/``: Evidently's ``.html``
and ``.json`` and Gristmill's ``.summary.json``; a row in the history table; metrics
``monitor.<job>.*`` on the model version's MLflow run; a run in the Evidently workspace
``<workspace>/monitoring/evidently`` (``evidently ui --workspace ...``).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gristmill.errors import DataError, GristmillError, StageNotReady

from monitoring import checks, history
from monitoring.publish import add_to_evidently, log_to_mlflow
from monitoring.places import JobBusy, evidently_dir, lock as _lock, monitoring_dir  # noqa: F401
from monitoring.window import join_labels, label_table, prediction_log_window, read_file
from monitoring.jobs import JobSpec

if TYPE_CHECKING:
    import pandas as pd

    from gristmill.spec import ProjectSpec
    from gristmill.workspace import Workspace

log = logging.getLogger("gristmill.monitoring")

PREDICTION, TARGET = "__prediction__", "__target__"
STATS_VERSION = 2  # 2: columns without values listed (no_values)


# -- the model and its reference -------------------------------------------------------------------
def model_info(ws: Workspace, project: str, model: str) -> dict[str, Any] | None:
    """Version, run id, training set, task and holdout score of the monitored model (None: no model)."""
    import warnings

    from gristmill.config import mlflow_in_use

    if not mlflow_in_use(ws):
        return None  # nothing was ever trained in this workspace

    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")
    from gristmill.config import mlflow_tracking_uri

    uri = mlflow_tracking_uri(ws)
    mlflow.set_tracking_uri(uri)   # models:/ URIs loaded later in this run resolve through it
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        if model.isdigit():
            mv = client.get_model_version(project, model)
        else:
            mv = client.get_model_version_by_alias(project, model)
    except MlflowException:
        try:
            client.get_registered_model(project)
        except MlflowException:
            return None  # no model trained yet: drift of the data alone
        raise GristmillError(f"model {project!r} has no version or alias {model!r}: set `model` of the "
                             f"job to 'champion' or an existing version (gristmill models list {project})")
    tags = dict(mv.tags or {})
    run = client.get_run(mv.run_id) if mv.run_id else None
    run_tags = dict(run.data.tags) if run else {}
    metric = next((k[len("holdout_"):] for k in tags if k.startswith("holdout_")), None)
    return {"version": str(mv.version), "run_id": mv.run_id, "source": mv.source,
            "dataset_id": tags.get("training_set_id") or run_tags.get("training_set_id"),
            "task": run_tags.get("task"), "metric": metric,
            "holdout": float(tags[f"holdout_{metric}"]) if metric else None}


def _dataset(ws: Workspace, project: str, dataset_id: str | None) -> tuple[str, Path, dict]:
    folder = ws.datasets(project)
    if dataset_id:
        if not dataset_id.replace("-", "").replace("_", "").isalnum():
            raise GristmillError(f"invalid training-set id {dataset_id!r}")
        path = folder / f"{dataset_id}.parquet"
        if not path.is_file():
            raise StageNotReady("monitoring", f"training set {dataset_id!r}",
                                f"gristmill features dataset {project}")
    else:
        found = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        if not found:
            raise StageNotReady("monitoring", f"a training set of {project!r}",
                                f"gristmill features dataset {project}")
        path = found[-1]
        dataset_id = path.stem
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return dataset_id, path, meta


def _feature_kinds(frame: pd.DataFrame, features: list[str]) -> dict[str, str]:
    kinds = {}
    for col in features:
        kind = checks.column_kind(frame[col])
        if kind is not None and frame[col].notna().any():
            kinds[col] = kind
    return kinds


def _reference_predictions(info: dict, features: pd.DataFrame) -> pd.Series | None:
    """The model's predictions on the reference, as the prediction log writes them (text)."""
    try:
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(f"models:/{info['model_name']}/{info['version']}")
        inner = getattr(getattr(model, "unwrap_python_model", lambda: None)(), "model", None)
        if hasattr(inner, "predict_table"):  # Gristmill's own model: it casts as the service does
            table = inner.predict_table(features)
        else:
            table = model.predict(features)
        return table["prediction"].map(str)
    except Exception as exc:  # a model that cannot be loaded here: no prediction drift, said so
        log.warning("reference predictions of version %s unavailable: %s", info["version"],
                    str(exc).splitlines()[0][:300])
        return None


def reference(ws: Workspace, project: str, job: JobSpec, info: dict | None) -> dict[str, Any]:
    """Reference statistics of the monitored model version, computed once and cached.

    Cached under ``<workspace>/monitoring/reference/<project>/<dataset id>__v<version>/``:
    ``stats.json`` and ``sample.parquet`` (at most ``report_rows`` rows for the Evidently report).
    """
    import pandas as pd

    dataset_id, path, meta = _dataset(ws, project, job.reference.dataset_id or (info or {}).get("dataset_id"))
    version = info["version"] if info else "none"
    folder = monitoring_dir(ws) / "reference" / project / f"{dataset_id}__v{version}"
    stats_path, sample_path = folder / "stats.json", folder / "sample.parquet"
    with _lock(folder.parent / f".{folder.name}.lock"):  # two jobs of one version compute it once
        if stats_path.is_file() and sample_path.is_file():
            stats = json.loads(stats_path.read_text())
            if stats.get("stats_version") == STATS_VERSION and stats.get("report_rows", 0) >= job.report_rows:
                stats["cached"] = True
                return stats
        started = time.perf_counter()
        frame = pd.read_parquet(path)
        key, target = meta.get("key"), meta.get("target")
        features = meta.get("features") or [c for c in frame.columns
                                            if c not in (key, target, "event_timestamp")]
        features = [c for c in features if c in frame.columns]
        kinds = _feature_kinds(frame, features)
        stats = checks.reference_stats(frame, kinds)
        task = (info or {}).get("task")
        if info is not None:
            preds = _reference_predictions({**info, "model_name": project}, frame[features])
            if preds is not None:
                kind = "numerical" if task == "regression" else "categorical"
                values = pd.to_numeric(preds, errors="coerce") if kind == "numerical" else preds
                stats["prediction"] = checks.column_stats(values, kind)
        if target and target in frame:
            kind = "numerical" if task == "regression" else "categorical"
            values = frame[target] if kind == "numerical" else frame[target].map(
                lambda v: None if pd.isna(v) else str(v))
            stats["target"] = checks.column_stats(values, kind)
        stats.update(stats_version=STATS_VERSION, dataset_id=dataset_id, model_version=version,
                     key_column=key, target_column=target, features=list(kinds), report_rows=job.report_rows,
                     no_values=[c for c in features if c not in kinds],
                     seconds=round(time.perf_counter() - started, 3))
        folder.mkdir(parents=True, exist_ok=True)
        checks.sample_rows(frame[list(kinds)], job.report_rows, 0).to_parquet(
            sample_path.with_suffix(".tmp"), index=False)
        sample_path.with_suffix(".tmp").replace(sample_path)
        tmp = stats_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(stats))
        tmp.replace(stats_path)
        stats["cached"] = False
        return stats


def run_job(ws: Workspace, spec: ProjectSpec, job: JobSpec, current_file: Path | None = None,
            now: datetime | None = None) -> dict[str, Any]:
    """Run ``job`` of ``spec``'s project now; return the summary (also written as JSON)."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    lock = monitoring_dir(ws) / "locks" / f"{spec.project}.{job.name}.lock"
    with _lock(lock, f"monitoring job {spec.project}/{job.name} is already running; try again later"):
        started = datetime.now(timezone.utc)
        try:
            return _run(ws, spec, job, current_file, now)
        except Exception as exc:  # a failed run is part of the history too, then the error goes on
            history.append(ws.root, {
                "run_id": f"{job.name}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}", "project": spec.project,
                "job": job.name, "status": "error", "started_at": started.isoformat(timespec="seconds"),
                "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "message": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]})
            raise


def _run(ws, spec, job: JobSpec, current_file: Path | None, now: datetime | None) -> dict[str, Any]:
    import pandas as pd

    started = time.perf_counter()
    end = now or datetime.now(timezone.utc)
    stamp = end.strftime("%Y%m%dT%H%M%S")
    run_id = f"{job.name}-{stamp}-{uuid.uuid4().hex[:6]}"
    row: dict[str, Any] = {"run_id": run_id, "project": spec.project, "job": job.name,
                           "started_at": end.isoformat(timespec="seconds")}
    info = model_info(ws, spec.project, job.model)
    ref = reference(ws, spec.project, job, info)
    row.update(model_version=info["version"] if info else None, reference_id=ref["dataset_id"],
               n_reference=ref["rows"])

    # the window
    path = current_file or (Path(job.current.path) if job.current.source == "file" else None)
    bad_files: list[dict] = []
    if path is not None:
        window = read_file(path)
        row.update(window_start=None, window_end=None)
    else:
        start = end - timedelta(hours=job.current.hours)
        window = prediction_log_window(ws, spec.project, start, end, bad_files)
        row.update(window_start=start.isoformat(timespec="seconds"), window_end=end.isoformat(timespec="seconds"))
    row["n_current"] = int(len(window))
    row.update(n_bad_files=len(bad_files), bad_files=bad_files or None)
    messages: list[str] = []
    if bad_files:
        names = ", ".join(Path(b["file"]).name for b in bad_files[:5])
        more = f", +{len(bad_files) - 5} more" if len(bad_files) > 5 else ""
        messages.append(f"{len(bad_files)} unreadable prediction-log files skipped: {names}{more}")
        log.warning("%s/%s: %s", spec.project, job.name, messages[-1])
    summary: dict[str, Any] = {"run_id": run_id, "project": spec.project, "job": job.name,
                               "model_version": row["model_version"], "reference": ref["dataset_id"],
                               "reference_cached": ref["cached"], "window": {
                                   "source": "file" if path else "prediction_log", "file": str(path) if path else None,
                                   "start": row["window_start"], "end": row["window_end"], "rows": len(window),
                                   "bad_files": bad_files}}
    columns = [c for c in ref["features"] if c in window.columns and ref["columns"][c].get("n", 0)]
    not_compared = [{"column": c, "reason": "no values in the reference (all missing or infinite)"}
                    for c in [*ref.get("no_values", []), *(c for c in ref["features"]
                                                          if not ref["columns"][c].get("n", 0))]]
    not_compared += [{"column": c, "reason": "not in the window"} for c in ref["features"]
                     if c not in window.columns and ref["columns"][c].get("n", 0)]
    if len(window) < job.current.min_rows or not columns:
        why = (f"{len(window)} rows in the window (< min_rows {job.current.min_rows}): serve traffic, or "
               "pass --current FILE" if columns or
               len(window) < job.current.min_rows else "the window has none of the reference's feature columns")
        return _finish(ws, spec, job, row, summary, started, status="skipped",
                       message="; ".join([why, *messages]), alerts=[])

    # drift on a sample, quality on every row
    sampled = checks.sample_rows(window, job.current.sample_rows, job.current.seed)
    eps = checks.dkw_epsilon(len(sampled)) if len(sampled) < len(window) else 0.0
    row.update(n_sampled=int(len(sampled)), sample_error=eps)
    threshold = job.thresholds.drift_share or spec.monitoring.drift_share_threshold
    reports = ws.reports(spec.project)
    name = f"{job.name}-{stamp}"
    ref_sample = pd.read_parquet(monitoring_dir(ws) / "reference" / spec.project
                                 / f"{ref['dataset_id']}__v{ref['model_version']}" / "sample.parquet")
    window = _align_types(window, ref, columns)
    sampled = window.loc[sampled.index]
    report_cur = sampled if job.engine == "evidently" else checks.sample_rows(sampled, job.report_rows,
                                                                               job.current.seed)
    # one set of compared columns for the verdict and for Evidently's report: values on both sides
    compared = []
    for col in columns:
        if not checks.has_values(sampled[col]):
            not_compared.append({"column": col, "reason": "no values in the window (all missing or infinite)"})
        elif job.engine != "evidently" and not (checks.has_values(ref_sample[col])
                                                and checks.has_values(report_cur[col])):
            not_compared.append({"column": col, "reason": "no values in the report's sample"})
        else:
            compared.append(col)
    judged = len(sampled) >= checks.MIN_ROWS_TO_JUDGE and bool(compared)
    result = snapshot = None
    if not compared:
        column_results: list[dict] = []
    elif not judged:  # no Evidently report: its HTML would state a verdict on too few rows
        column_results = checks.drift(ref, sampled, compared)
    elif job.engine == "evidently":
        _, ref_path, _ = _dataset(ws, spec.project, ref["dataset_id"])
        full_ref = pd.read_parquet(ref_path, columns=compared)
        result, snapshot = _evidently(full_ref, sampled, compared, ref, reports, name, threshold)
        column_results = [c.model_dump() for c in result.columns]
    else:
        result, snapshot = _evidently(ref_sample, report_cur, compared, ref, reports, name, threshold)
        if len(report_cur) == len(sampled) and len(ref_sample) == ref["rows"]:
            # the report saw every row the fast tests would: its verdicts are the run's, computed once
            column_results = [c.model_dump() for c in result.columns]
        else:
            column_results = checks.drift(ref, sampled, compared)
    verdict = checks.verdict(column_results, threshold, rows=len(sampled), reference_rows=ref["rows"],
                             not_compared=not_compared)
    drifted, share = verdict["drifted_columns"], verdict["drift_share"]
    quality_rows = checks.quality(ref, window, columns)
    non_finite = sum(q.get("non_finite") or 0 for q in quality_rows)
    evidently: dict[str, Any] = {"html": None, "json": None, "agrees": None,
                                 "why_none": None if result else "too few rows to judge: no report"}
    if result is not None:
        from monitoring.drift import read_saved_verdict

        saved = read_saved_verdict(result.json_path)
        differs = sorted(set(saved["drifted_columns"]) ^ set(drifted))
        agrees = (saved["compared_columns"] == verdict["compared_columns"] and not differs
                  and saved["dataset_drift"] == verdict["dataset_drift"])
        evidently = {"html": str(result.html_path), "json": str(result.json_path), "saved_verdict": saved,
                     "agrees": agrees, "differs_on": differs,
                     "rows_per_side": [len(ref_sample) if job.engine != "evidently" else ref["rows"],
                                       len(report_cur)]}
        if not agrees:
            messages.append(f"Evidently's report ({len(report_cur)} current rows) differs from the verdict "
                            f"(from {len(sampled)} rows) on {', '.join(differs[:5]) or 'the dataset verdict'}")
    row.update(drift_share=share, dataset_drift=None if verdict["dataset_drift"] is None
               else int(verdict["dataset_drift"]), drifted_columns=drifted,
               verdict=verdict["text"], compared_columns=verdict["compared_columns"],
               not_compared=not_compared or None, window_error=verdict["epsilon"], n_non_finite=non_finite,
               evidently_agrees=None if evidently["agrees"] is None else int(evidently["agrees"]),
               html_path=evidently["html"], json_path=evidently["json"],
               max_missing_increase=max(q["missing_increase"] for q in quality_rows),
               max_new_category_share=max((q["new_category_share"] or 0.0) for q in quality_rows),
               max_out_of_range_share=max((q["out_of_range_share"] or 0.0) for q in quality_rows))
    summary.update(drift={"verdict": verdict, "columns": column_results, "drifted_columns": drifted,
                          "drift_share": share, "compared_columns": verdict["compared_columns"],
                          "not_compared": not_compared, "threshold": threshold,
                          "dataset_drift": verdict["dataset_drift"],
                          "engine": job.engine, "sampled_rows": len(sampled),
                          "sample_error_bound": {"epsilon": eps, "alpha": 0.01, "meaning":
                                                 "sup |F_sample - F_window| <= epsilon with probability "
                                                 "1 - alpha (DKW); category shares within 2*epsilon"}},
                   quality=quality_rows, non_finite_values=non_finite, evidently=evidently)

    # predictions, labels
    if "prediction" in ref and "_prediction" in window:
        values = window["_prediction"]
        if ref["prediction"]["kind"] == "numerical":
            values = pd.to_numeric(values, errors="coerce")
        pd_result = checks.column_drift(ref["prediction"], values.loc[sampled.index])
        row.update(prediction_drift_score=pd_result["score"], prediction_drift=int(pd_result["drifted"]))
        summary["prediction_drift"] = pd_result
    if job.labels.enabled and "_entity_id" in window and "_ts" in window:
        try:
            labels = label_table(ws, spec, job)
        except DataError as exc:
            labels, _ = None, messages.append(str(exc))
        if labels is not None:
            joined = join_labels(window, labels, job.labels.horizon_days)
            row["n_labelled"] = int(len(joined))
            summary["labels"] = {"labelled_predictions": len(joined)}
            if len(joined):
                _label_checks(ref, info, joined, row, summary)
    alerts = _reasons(job, row, summary, quality_rows, threshold, judged=judged)
    return _finish(ws, spec, job, row, summary, started, status="alert" if alerts else "ok",
                   message="; ".join(messages) or None, alerts=alerts, snapshot=snapshot, info=info)


def _align_types(window: pd.DataFrame, ref: dict, columns: list[str]) -> pd.DataFrame:
    """Numeric reference columns read as numbers in the window too (the log may hold text)."""
    import pandas as pd

    fix = [c for c in columns
           if ref["columns"][c]["kind"] == "numerical" and checks.column_kind(window[c]) != "numerical"]
    if fix:  # copy only when something changes: a window can be large
        window = window.assign(**{c: pd.to_numeric(window[c], errors="coerce") for c in fix})
    return window


def _evidently(ref_frame, cur_frame, columns, ref, reports, name, threshold):
    """Evidently's report (HTML + JSON) on the columns that have values on both sides."""
    from monitoring.drift import build_drift_report

    usable = list(columns)  # the run's compared columns: values on both sides
    cats = [c for c in usable if ref["columns"][c]["kind"] == "categorical"]
    ref_frame, cur_frame = ref_frame[usable].copy(), cur_frame[usable].copy()
    for col in cats:  # the same categorical dtype on both sides
        ref_frame[col] = ref_frame[col].map(lambda v: v if v is None or v != v else str(v)).astype(object)
        cur_frame[col] = cur_frame[col].map(lambda v: v if v is None or v != v else str(v)).astype(object)
    return build_drift_report(ref_frame, cur_frame, reports, name=name, columns=usable,
                              drift_share_threshold=threshold, categorical=cats)


def _label_checks(ref: dict, info: dict | None, joined: pd.DataFrame, row: dict, summary: dict) -> None:
    import pandas as pd

    task = (info or {}).get("task") or ("regression" if ref.get("target", {}).get("kind") == "numerical"
                                        else "binary")
    if "target" in ref:
        values = joined["target"]
        values = pd.to_numeric(values, errors="coerce") if ref["target"]["kind"] == "numerical" else \
            values.map(lambda v: None if pd.isna(v) else str(v))
        td = checks.column_drift(ref["target"], values)
        row.update(target_drift_score=td["score"], target_drift=int(td["drifted"]))
        summary["target_drift"] = td
    frame = pd.DataFrame({"prediction": joined["prediction"].to_numpy(),
                          "target": joined["target"].map(str).to_numpy()})
    if task == "binary" and joined["probabilities"].notna().all():
        probs = [json.loads(p) for p in joined["probabilities"]]
        positive = list(probs[0])[-1]
        frame["probability"] = [p.get(positive) for p in probs]
        frame["positive"] = positive
    scores = checks.labelled_quality(task, frame)
    summary["model_quality"] = scores
    metric = (info or {}).get("metric")
    chosen = metric if metric in scores else next(iter(scores), None)
    if chosen:
        row.update(quality_metric=chosen, quality=scores[chosen],
                   quality_baseline=(info or {}).get("holdout") if chosen == metric else None)


def _reasons(job: JobSpec, row: dict, summary: dict, quality_rows: list[dict], threshold: float,
             judged: bool = True) -> list[str]:
    """Why the run alerts. Below :data:`checks.MIN_ROWS_TO_JUDGE` current rows (``judged`` false)
    nothing that rests on the window's shares fires, and quality needs as many labelled rows."""
    t = job.thresholds
    out: list[str] = []
    if not judged:
        return out
    if row.get("dataset_drift"):
        out.append(f"drift share {row['drift_share']:.2f} >= {threshold:.2f} "
                   f"({', '.join(row['drifted_columns'][:5])})")
    if t.prediction_drift and row.get("prediction_drift"):
        out.append(f"prediction drift ({summary['prediction_drift']['method']} "
                   f"{summary['prediction_drift']['score']:.3g})")
    if t.target_drift and row.get("target_drift"):
        out.append(f"target drift ({summary['target_drift']['method']} {summary['target_drift']['score']:.3g})")
    for q in quality_rows:
        if q["missing_increase"] >= t.missing_share_increase:
            out.append(f"{q['column']}: missing share {q['missing_share']:.2f} "
                       f"(reference {q['reference_missing_share']:.2f})")
        if (q["new_category_share"] or 0) >= t.new_category_share:
            out.append(f"{q['column']}: {q['new_category_share']:.1%} new categories "
                       f"({', '.join(map(str, q['new_categories'][:3]))})")
        if (q["out_of_range_share"] or 0) >= t.out_of_range_share:
            infinite = f" ({q['non_finite']} infinite)" if q.get("non_finite") else ""
            out.append(f"{q['column']}: {q['out_of_range_share']:.1%} of values outside the reference "
                       f"range{infinite}")
    if (row.get("quality") is not None and row.get("quality_baseline") is not None
            and (row.get("n_labelled") is None or row["n_labelled"] >= checks.MIN_ROWS_TO_JUDGE)):
        metric = row["quality_metric"]
        better = checks.GREATER_IS_BETTER.get(metric, True)
        drop = (row["quality_baseline"] - row["quality"]) if better else (row["quality"] - row["quality_baseline"])
        if drop >= t.quality_drop:
            out.append(f"{metric} {row['quality']:.4g} is {drop:.4g} worse than the holdout's "
                       f"{row['quality_baseline']:.4g}")
    return out


def _finish(ws, spec, job: JobSpec, row: dict, summary: dict, started: float, *, status: str,
            message: str | None, alerts: list[str], snapshot: Any = None,
            info: dict | None = None) -> dict[str, Any]:
    from monitoring.alerts import Alert, dispatch

    finished = datetime.now(timezone.utc)
    row.update(status=status, message=message, finished_at=finished.isoformat(timespec="seconds"),
               seconds=round(time.perf_counter() - started, 3))
    outcomes: list[dict] = []
    if alerts:
        alert = Alert(project=spec.project, job=job.name, run_id=row["run_id"],
                      model_version=row.get("model_version"), reasons=alerts,
                      drift_share=row.get("drift_share"), drifted_columns=row.get("drifted_columns") or [],
                      report=row.get("html_path"), at=row["finished_at"])
        outcomes = dispatch(alert, job.alerts, {"workspace": str(ws.root), "project": spec.project})
    row["alerts"] = {"reasons": alerts, "channels": outcomes} if alerts else None
    summary.update(status=status, message=message, alerts=row["alerts"], seconds=row["seconds"],
                   finished_at=row["finished_at"])
    reports = ws.reports(spec.project)
    reports.mkdir(parents=True, exist_ok=True)
    summary_path = reports / f"{row['run_id']}.summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    row["summary_path"] = str(summary_path)
    summary["summary_path"] = str(summary_path)
    history.append(ws.root, row)
    notes = []
    if info and status in ("ok", "alert"):
        try:
            log_to_mlflow(ws, info, job, row)
        except Exception as exc:  # the run is recorded; say what did not reach MLflow
            notes.append(f"MLflow metrics not logged: {exc}")
    if snapshot is not None:
        try:
            add_to_evidently(ws, spec.project, snapshot)
        except Exception as exc:
            notes.append(f"not added to the Evidently workspace: {exc}")
    for note in notes:
        log.warning("%s/%s: %s", spec.project, job.name, note)
    summary["notes"] = notes
    summary["history"] = {k: v for k, v in row.items()}
    return summary
