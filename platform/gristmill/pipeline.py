"""The path from raw files to a served, monitored model, one function per stage.

Only the CLI and this module wire areas together; areas meet through names (DuckDB tables, Feast
feature services, MLflow model URIs, run ids).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from gristmill.errors import StageNotReady
from gristmill.spec import ProjectSpec, dump_spec, load_spec
from gristmill.workspace import Workspace


def register(ws: Workspace, spec_path: Path) -> ProjectSpec:
    """Validate the spec at ``spec_path`` and record it in the workspace, source paths made absolute."""
    spec = load_spec(spec_path)
    base = spec_path.resolve().parent
    sources = [s.model_copy(update={"path": str(p.resolve())})
               for s, p in zip(spec.sources, spec.source_paths(base))]
    spec = spec.model_copy(update={"sources": sources})
    target = ws.ensure().spec_path(spec.project)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dump_spec(spec), encoding="utf-8")
    return spec


def project_spec(ws: Workspace, project_or_file: str) -> ProjectSpec:
    """A registered project by name, or a spec file (registered on the way)."""
    path = Path(project_or_file)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return register(ws, path)
    return load_spec(ws.spec_path(ws.require_project(project_or_file)))


def ingest(ws: Workspace, project: str, spec: ProjectSpec | None = None, folder: Path | None = None,
           jsonl: bool = False, progress: bool = False):
    """Ingest the spec's sources (or every file of ``folder``) into the project's lake and schema."""
    from ingestion import SourceSpec, ingest as run_ingest

    if folder is not None:
        sources = [SourceSpec(name=None, path=folder)]
    else:
        assert spec is not None, "a spec or a folder"
        sources = [SourceSpec(name=s.name, path=Path(s.path), format=s.format, types=s.types)
                   for s in spec.sources]
    ws.ensure()
    return run_ingest(sources, project=project, lake_dir=ws.lake(project), catalog=ws.catalog,
                      jsonl=jsonl, progress=progress)


def features_apply(ws: Workspace, spec: ProjectSpec) -> dict:
    """Build feature tables, write the Feast definitions and run ``feast apply``."""
    from gristmill.features.repo import write_repo
    from gristmill.features.store import feast_apply
    from gristmill.features.tables import build_feature_tables

    manifest = build_feature_tables(ws, spec)
    repo = write_repo(ws, manifest)
    feast_apply(ws)
    return {"feature_repo": str(repo), "definitions": str(repo / "projects" / f"{spec.project}.py"),
            "feature_views": [t.table for t in manifest.tables],
            "features": sum(len(t.features) for t in manifest.tables)}


def features_dataset(ws: Workspace, spec: ProjectSpec) -> tuple[str, Path]:
    from gristmill.features.store import build_training_set

    return build_training_set(ws, spec.project)


def features_materialize(ws: Workspace, spec: ProjectSpec) -> dict:
    from gristmill.features.store import materialize

    return materialize(ws, spec.project)


def train(ws: Workspace, spec: ProjectSpec, budget: int | None = None, dataset_id: str | None = None,
          progress: bool = False, job_id: str | None = None, report=None, workers: int | None = None,
          spawn_helpers=None):
    """Train on a training set (the latest by default); ``job_id``, ``report``, ``workers`` and
    ``spawn_helpers`` go to :func:`gristmill.training.train.train` (idempotent per job; progress
    dicts; trials of one study in several processes)."""
    from gristmill.features.store import latest_training_set
    from gristmill.training.train import train as run_train

    if dataset_id:
        path = ws.datasets(spec.project) / f"{dataset_id}.parquet"
        if not path.is_file():
            raise StageNotReady("training", f"training set {dataset_id!r}",
                                f"gristmill features dataset {spec.project}")
    else:
        dataset_id, path = latest_training_set(ws, spec.project)
    return run_train(ws, spec, dataset_id, path, budget_seconds=budget, progress=progress, job_id=job_id,
                     report=report, workers=workers, spawn_helpers=spawn_helpers)


def deploy(ws: Workspace, spec: ProjectSpec) -> tuple[Path, dict[str, str]]:
    """Write the project's bento for the versions its aliases name now (champion and challenger),
    copied into BentoML's model store so ``bentoml build`` packs them; returns the folder and
    ``{alias: BentoML model tag}``."""
    from gristmill.serving.bento import write_bento
    from gristmill.serving.bundle import import_versions
    from gristmill.training import registry

    aliases = registry.aliases(ws, spec.project)
    tags = import_versions(ws, spec.project, sorted(set(aliases.values())))
    models = {alias: tags[version] for alias, version in aliases.items()}
    return write_bento(ws, spec.project, spec.entity.name, spec.entity.key, spec.serving.port,
                       spec.serving.api_token_env, spec.serving.workers, models), models


def monitor(ws: Workspace, spec: ProjectSpec, current: Path | None = None):
    """Drift of current data against the latest training set.

    ``current`` is a Parquet/CSV file of feature rows; without it, the current batch is the data's
    own latest period, not the clock's: the labelled entities whose event time is within 30 days
    before the latest one (at least the latest 30 rows), each with its features read from the offline
    store as of that event time (``as_of`` is the latest). Scoring stale data "now" made every
    window feature look drifted (or empty); reading every entity as of the latest time still
    compared entities long after their activity with the training set's at its time.
    Columns with no value on either side are left out and listed (``not_compared``).
    The report's snapshot is added to the Evidently workspace ``<workspace>/monitoring/evidently``
    (what ``evidently ui --workspace`` shows), under the project's name.
    """
    import logging

    import pandas as pd

    from gristmill.features.naming import TIMESTAMP, service_name
    from gristmill.features.store import historical, latest_training_set, load_manifest, open_store
    from monitoring.checks import has_values
    from monitoring.drift import build_drift_report

    manifest = load_manifest(ws, spec.project)
    dataset_id, path = latest_training_set(ws, spec.project)
    reference = pd.read_parquet(path)
    columns = [c for c in reference.columns if c not in (manifest.key, TIMESTAMP, manifest.target)]
    as_of = None
    if current is not None:
        current_df = pd.read_parquet(current) if current.suffix == ".parquet" else pd.read_csv(current)
    else:
        store = open_store(ws)
        stamps = pd.to_datetime(reference[TIMESTAMP], utc=True)
        as_of = stamps.max()
        recent = stamps > as_of - pd.Timedelta(days=30)
        if recent.sum() < 30:
            recent = stamps >= stamps.nlargest(min(30, len(stamps))).min()
        entity_df = pd.DataFrame({manifest.key: reference.loc[recent, manifest.key].to_numpy(),
                                  TIMESTAMP: stamps[recent].to_numpy()})
        current_df = historical(store, entity_df, store.get_feature_service(service_name(spec.project)))
    # a column empty (or only infinite) on either side has no distribution to compare: listed, not counted
    usable = [c for c in columns if c in current_df and has_values(reference[c]) and has_values(current_df[c])]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    result, snapshot = build_drift_report(reference[usable], current_df[usable], ws.reports(spec.project),
                                          name=f"drift-{stamp}", columns=usable,
                                          drift_share_threshold=spec.monitoring.drift_share_threshold)
    result = result.model_copy(update={"not_compared": [c for c in columns if c not in usable],
                                       "as_of": as_of.to_pydatetime() if as_of is not None else None})
    try:
        from monitoring.publish import add_to_evidently

        add_to_evidently(ws, spec.project, snapshot)
    except Exception as exc:  # the report is written; say what did not reach the Evidently workspace
        logging.getLogger("gristmill.monitoring").warning(
            "%s: drift report not added to the Evidently workspace: %s", spec.project, exc)
    return result


def sample_entity_id(ws: Workspace, spec: ProjectSpec) -> str:
    """An entity id that has features online (for the printed curl example)."""
    import pyarrow.parquet as pq

    from gristmill.features.store import load_manifest

    manifest = load_manifest(ws, spec.project)
    keys = pq.read_table(manifest.labels_path, columns=[manifest.key]).column(0)
    return str(keys[len(keys) - 1]) if len(keys) else ""
