"""Training and the registry: train, list, history, promote, challenge, rollback."""

from __future__ import annotations

from gristmill.identity.roles import Action
from gristmill.services.context import Context
from gristmill.services.feature_ops import project_spec
from gristmill.services.registry import operation


@operation("models.train", "POST", "/projects/{project}/train", Action.train, changes=True, job=True)
def train(ctx: Context, project: str, budget: int | None = None, dataset: str | None = None,
          workers: int | None = None) -> dict:
    """Search, ensemble, register the winner (champion if it passes the promotion gate).
    ``workers`` (default: the spec's ``training.workers``) processes run the study's trials at once:
    on a worker, the others are jobs on other workers (``models.trials``)."""
    from gristmill import pipeline
    from gristmill.audit import lineage
    from gristmill.errors import GristmillError

    if budget is not None and budget < 5:
        raise GristmillError("--budget must be at least 5 seconds")
    if workers is not None and not 1 <= workers <= 64:
        raise GristmillError(f"workers must be between 1 and 64, not {workers}")
    spawn = None
    if ctx.job_id is not None:  # on a queue worker: the helpers are jobs too, as the same user
        def spawn(ref: dict, n: int) -> list[str]:
            from gristmill.services.registry import invoke
            from gristmill.training.distributed import helper_refs

            sub = Context(ctx.ws, ctx.principal, submit_jobs=True, request_id=ctx.request_id)
            return [invoke(sub, "models.trials", project=project, ref=one)["job"]["id"]
                    for one in helper_refs(ref, n)]
    result = pipeline.train(ctx.ws, project_spec(ctx, project), budget=budget, dataset_id=dataset,
                            progress=ctx.progress, job_id=ctx.job_id, report=ctx.report, workers=workers,
                            spawn_helpers=spawn).as_dict()
    lineage.record(ctx.md, project, [(f"dataset:{result['dataset_id']}", f"model:{result['version']}")],
                   ctx.actor)
    ctx.note(before=(result.get("promotion") or {}).get("from_version"),
             after={"version": result["version"], "alias": result["alias"], "run_id": result["run_id"]})
    return result


@operation("models.trials", "POST", "/projects/{project}/trials", Action.train, changes=True, job=True)
def trials(ctx: Context, project: str, ref: dict) -> dict:
    """Run trials of a training's shared study until its deadline (a helper of ``models.train``
    with ``workers`` > 1). The study, training set and folder must be the project's own."""
    from pathlib import Path

    from gristmill.config import optuna_storage_url
    from gristmill.errors import GristmillError
    from gristmill.training.distributed import run_trials

    if not isinstance(ref, dict) or ref.get("project") != project:
        raise GristmillError(f"the study reference must name project {project!r}")
    try:
        data = Path(str(ref["dataset_path"])).resolve()
        oof = Path(str(ref["oof_dir"])).resolve()
    except KeyError as exc:
        raise GristmillError(f"the study reference lacks {exc}") from None
    if not data.is_relative_to(ctx.ws.datasets(project).resolve()) or \
            not oof.is_relative_to(ctx.ws.optuna_journal(project).parent.resolve()):
        raise GristmillError("the study reference points outside the project's training sets and study folder")
    if _storage_identity(ref.get("storage_url")) != _storage_identity(optuna_storage_url(ctx.ws)):
        raise GristmillError("the study reference names another study storage than this workspace's")
    done = run_trials(ctx.ws, {**ref, "workspace": str(ctx.ws.root), "job_id": ctx.job_id or ref.get("job_id")},
                      report=ctx.report)
    return {"project": project, "study": ref.get("study_name"), "trials": done}


@operation("models.list", "GET", "/projects/{project}/models", Action.read)
def list_versions(ctx: Context, project: str) -> dict:
    """Every registered version with its aliases and holdout scores, newest first."""
    from gristmill.training import registry

    return {"project": project, "versions": registry.versions(ctx.ws, project)}


@operation("models.history", "GET", "/projects/{project}/models/history", Action.read)
def history(ctx: Context, project: str) -> dict:
    """Every alias move (by training, promotion or rollback): when, who, from, to, why."""
    from gristmill.training import registry

    return {"project": project, "moves": registry.history(ctx.ws, project)}


def _moved(ctx: Context, move: dict) -> dict:
    ctx.note(before={"alias": move["alias"], "version": move.get("from_version")},
             after={"alias": move["alias"], "version": move["to_version"]})
    return move


@operation("models.promote", "POST", "/projects/{project}/models/promote", Action.promote, changes=True)
def promote(ctx: Context, project: str, version: str | None = None) -> dict:
    """Make a version (default: the challenger) the champion (serving picks it up on reload)."""
    from gristmill.training import registry

    return _moved(ctx, registry.promote(ctx.ws, project, version))


@operation("models.challenge", "POST", "/projects/{project}/models/challenge", Action.promote, changes=True)
def challenge(ctx: Context, project: str, version: str) -> dict:
    """Make a version the challenger (A/B share or shadow mode score it beside the champion)."""
    from gristmill.training import registry

    return _moved(ctx, registry.challenge(ctx.ws, project, version))


@operation("models.rollback", "POST", "/projects/{project}/models/rollback", Action.promote, changes=True)
def rollback(ctx: Context, project: str, to: str | None = None) -> dict:
    """Give the champion alias back to the previous champion (or to version ``to``)."""
    from gristmill.training import registry

    return _moved(ctx, registry.rollback(ctx.ws, project, to))


@operation("models.runs", "GET", "/projects/{project}/runs", Action.read)
def runs(ctx: Context, project: str, limit: int = 100, offset: int = 0) -> dict:
    """The project's MLflow runs, newest first (a page of at most 1000; ``more`` says whether
    another page follows): name, trainer, status, start and end (ms), metrics, parent run."""
    from gristmill.config import mlflow_client
    from gristmill.training.train import configure_mlflow, experiment_name

    configure_mlflow(ctx.ws)
    client = mlflow_client(ctx.ws)
    found = client.get_experiment_by_name(experiment_name(project))
    if found is None:
        return {"project": project, "experiment_id": None, "runs": [], "more": False}
    limit, offset = max(1, min(int(limit), 1000)), max(0, int(offset))
    page = client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"],
                              max_results=min(offset + limit + 1, 50000))
    rows = [{"run_id": run.info.run_id, "name": run.info.run_name, "status": run.info.status,
             "start_time": run.info.start_time, "end_time": run.info.end_time,
             "trainer": run.data.tags.get("trainer"), "parent": run.data.tags.get("mlflow.parentRunId"),
             "metrics": dict(run.data.metrics)} for run in list(page)[offset:offset + limit]]
    return {"project": project, "experiment_id": found.experiment_id, "runs": rows,
            "more": len(page) > offset + limit}


def _storage_identity(url: str | None):
    """A study storage as every host names it: its kind, user and database, not the address a host
    reaches it by (two worker hosts may name one PostgreSQL by different addresses)."""
    if not url:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(str(url))
    return parts.scheme, parts.username, parts.path


#: What models.plots hands back at most: a training logs three or four plots of ~50 kB
PLOTS_MAX, PLOT_BYTES_MAX = 8, 2_000_000


@operation("models.plots", "GET", "/projects/{project}/plots", Action.read)
def plots(ctx: Context, project: str, run_id: str | None = None) -> dict:
    """The holdout plots a training logged as MLflow artifacts under ``plots/`` (ROC or confusion,
    residuals, feature importance) as base64 PNG: of ``run_id`` (a run of this project's experiment)
    or of the newest top-level run that has any. ``skipped`` counts plots left out, by reason."""
    import base64
    import tempfile
    from pathlib import Path

    from gristmill.config import mlflow_client, mlflow_in_use
    from gristmill.errors import NotFound
    from gristmill.training.train import configure_mlflow, experiment_name

    empty = {"project": project, "run_id": None, "plots": [], "skipped": {}}
    if not mlflow_in_use(ctx.ws):
        return empty
    configure_mlflow(ctx.ws)
    client = mlflow_client(ctx.ws)
    found = client.get_experiment_by_name(experiment_name(project))
    if found is None:
        return empty
    if run_id:
        from mlflow.exceptions import MlflowException

        try:
            run = client.get_run(run_id)
        except MlflowException:
            run = None
        if run is None or run.info.experiment_id != found.experiment_id:
            raise NotFound(f"project {project!r} has no MLflow run {run_id!r}")
        candidates = [run]
    else:
        candidates = [r for r in client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"],
                                                    max_results=50)
                      if "mlflow.parentRunId" not in r.data.tags]
    for run in candidates:
        files = [f for f in client.list_artifacts(run.info.run_id, "plots") if f.path.endswith(".png")]
        if not files:
            continue
        shown, skipped = [], {}
        with tempfile.TemporaryDirectory() as tmp:
            for f in sorted(files, key=lambda f: f.path):
                if len(shown) >= PLOTS_MAX:
                    skipped["more than %d plots" % PLOTS_MAX] = skipped.get("more than %d plots" % PLOTS_MAX, 0) + 1
                    continue
                if f.file_size and f.file_size > PLOT_BYTES_MAX:
                    skipped["larger than 2 MB"] = skipped.get("larger than 2 MB", 0) + 1
                    continue
                local = Path(client.download_artifacts(run.info.run_id, f.path, tmp))
                shown.append({"name": Path(f.path).stem, "png_base64": base64.b64encode(local.read_bytes()).decode()})
        return {"project": project, "run_id": run.info.run_id, "plots": shown, "skipped": skipped}
    return empty
