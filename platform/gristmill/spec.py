"""The declarative project spec (YAML) that drives the whole path.

Every model forbids unknown keys and every field says what it is for; :func:`load_spec` turns a
validation problem into one line naming the file and the key path, e.g.
``churn.yaml: label.target: field required``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gristmill.errors import SpecError
from gristmill.workspace import PROJECT_NAME, PROJECT_RULE

Identifier = Annotated[str, Field(min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Strict):
    """Where raw files come from."""

    path: str = Field(description="A file, folder or glob; relative paths start at the spec's folder.")
    name: Identifier | None = Field(
        None, description="Table name for these files (default: derived from each file's name)."
    )
    format: Literal["csv", "excel", "json", "jsonl", "parquet", "arrow", "sqlite"] | None = Field(
        None, description="Force a reader instead of detecting the format from the content."
    )
    types: dict[Identifier, Literal["text", "integer", "decimal", "boolean", "date", "timestamp"]] = Field(
        default_factory=dict,
        description="Force column types by snake_case name, e.g. {zip_code: text}; values that do "
        "not fit are quarantined.",
    )


class EntitySpec(_Strict):
    """The thing predictions are about (a customer, a machine, a loan)."""

    name: Identifier = Field(description="Entity name used in Feast, e.g. 'customer'.")
    key: Identifier = Field(description="Column holding the entity id in feature and label tables.")


class FeatureTableSpec(_Strict):
    """An ingested table that feeds features."""

    table: Identifier = Field(description="Ingested table name (after snake_case normalisation).")
    key: Identifier | None = Field(None, description="Entity id column if not the entity's key.")
    timestamp: Identifier | None = Field(
        None, description="Event-time column; without one the rows are static attributes."
    )
    kind: Literal["snapshot", "events"] = Field(
        "snapshot",
        description="'snapshot': each row states the entity's values as of its timestamp; "
        "'events': rows are events, turned into running counts, sums and means per entity.",
    )
    columns: list[Identifier] | None = Field(
        None, description="Columns to use as features (default: all but key and timestamp)."
    )
    windows: list[Annotated[int, Field(ge=1, le=3650)]] = Field(
        [7, 30, 90], description="Event tables: windows in days for counts, sums, means, minima "
        "and maxima beside the all-time aggregates ([] for all-time only).",
    )
    ttl_days: int | None = Field(
        None, ge=1, description="How long a value stays valid after its timestamp (default: forever)."
    )
    created: Identifier | None = Field(
        None, description="Column saying when each row was written (snapshot tables): of two rows for "
        "the same entity and timestamp, the later-written one is a correction and wins.",
    )
    project: str | None = Field(
        None, description="Reuse this feature table from another project, which owns, builds and "
        "applies it (its entity key must be this project's); give only `table` with it.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "FeatureTableSpec":
        if self.project is not None:
            given = [k for k in ("key", "timestamp", "columns", "ttl_days", "created") if getattr(self, k)]
            default = type(self).model_fields["windows"].get_default(call_default_factory=True)
            # a dumped spec writes every default back: only windows other than the default count
            given += ["windows"] if "windows" in self.model_fields_set and self.windows != default else []
            if given or self.kind != "snapshot":
                raise ValueError(f"a table reused from project {self.project!r} takes only `table` and "
                                 f"`project` (its owner defines {', '.join(given) or 'kind'})")
            return self
        if self.kind == "events" and not self.timestamp:
            raise ValueError("kind 'events' needs a timestamp column")
        if self.created and (self.kind != "snapshot" or not self.timestamp):
            raise ValueError("`created` goes with a snapshot table that has a timestamp")
        return self


class LabelSpec(_Strict):
    """The table of outcomes to learn, each observed at a point in time."""

    table: Identifier = Field(description="Ingested table holding the labels.")
    target: Identifier = Field(description="Column to predict.")
    timestamp: Identifier = Field(
        description="As-of column: features are taken as they were at this time (no leakage)."
    )
    key: Identifier | None = Field(None, description="Entity id column if not the entity's key.")


MetricName = Literal["roc_auc", "log_loss", "accuracy", "f1", "average_precision", "rmse", "mae", "mape",
                     "r2"]


class GateSpec(_Strict):
    """Quality gates a trained model must pass on its holdout before it may become champion.

    A model that fails one is still registered (with the reasons as tags, shown by `gristmill
    models list`) but gets no alias: it never becomes champion. `target_metric: "AUC > 0.85"` in a
    requirements file becomes ``min: {roc_auc: 0.85}``."""

    min: dict[MetricName, float] = Field(
        default_factory=dict, description="Lowest acceptable holdout value per metric, e.g. "
        "{roc_auc: 0.85} (the model fails when its value is below).")
    max: dict[MetricName, float] = Field(
        default_factory=dict, description="Highest acceptable holdout value per metric, e.g. "
        "{rmse: 3.0} (the model fails when its value is above).")
    max_regression: float | None = Field(
        None, ge=0.0, description="How much worse than the current champion, on the same holdout and "
        "in the selection metric's units, the model may be overall (omitted: no check).")
    slices: list[Identifier] = Field(
        default_factory=list, description="Feature columns (names as in the table, e.g. 'plan') whose "
        "values cut the holdout into slices; each slice is checked against the champion with "
        "max_slice_regression.")
    max_slice_regression: float | None = Field(
        None, ge=0.0, description="How much worse than the champion the model may be on any slice "
        "(default: max_regression).")
    min_slice_rows: int = Field(
        30, ge=1, description="Slices with fewer holdout rows are not checked (they are listed with "
        "the reason).")
    max_calibration_error: float | None = Field(
        None, gt=0.0, le=1.0, description="Classifiers: highest acceptable expected calibration error "
        "of the holdout probabilities (10 equal-width bins), e.g. 0.1.")

    def is_empty(self) -> bool:
        return not (self.min or self.max or self.max_regression is not None or self.slices
                    or self.max_slice_regression is not None or self.max_calibration_error is not None)


def default_trainers() -> list[str]:
    """The families searched when the spec names none: every tabular family that runs here, the
    small torch MLP only when torch is installed (the ``transformer`` extra; looked up, not imported)."""
    from importlib.util import find_spec

    names = ["lightgbm", "xgboost", "catboost", "linear", "random_forest", "extra_trees", "linear_spline", "knn"]
    return names + (["mlp"] if find_spec("torch") is not None else [])


class TrainingSpec(_Strict):
    """How models are searched and chosen."""

    task: Literal["auto", "binary", "multiclass", "regression"] = Field(
        "auto", description="Learning task; 'auto' detects it from the target."
    )
    metric: Literal["auto", "roc_auc", "log_loss", "accuracy", "f1", "average_precision", "rmse", "mae",
                    "mape", "r2"] = Field(
        "auto", description="Selection metric; 'auto': roc_auc (binary), log_loss (multiclass), rmse."
    )
    trainers: list[Literal["lightgbm", "xgboost", "catboost", "linear", "random_forest", "extra_trees",
                           "linear_spline", "knn", "mlp", "ft_transformer", "text_finetune"]] = Field(
        default_factory=lambda: default_trainers(), min_length=1,
        description="Model families the search may use; each starts from its known-good defaults. "
        "Default: lightgbm, xgboost, catboost, linear, random_forest, extra_trees, linear_spline, knn, "
        "and mlp when torch is installed. mlp needs torch, ft_transformer and text_finetune the "
        "'transformer' extra.",
    )
    text_columns: list[Identifier] | None = Field(
        None, description="Free-text feature columns (names as in the table, e.g. 'review'); "
        "omitted: detected (long, mostly distinct strings); []: none.")
    keep_identifiers: list[Identifier] = Field(
        [], description="Identifier-like feature columns to train on anyway (names as in the table, "
        "e.g. 'customer_number'). By default a column that is (nearly) unique per entity, holds whole "
        "numbers or codes and is named like an id ('*_id', '*_number', '*_no') or rises with time is "
        "kept out of training with a notice: such a column identifies rows instead of describing "
        "them, and one that encodes time leaks it.")
    text_encoder: Literal["auto", "minilm", "tfidf", "none"] = Field(
        "auto", description="How text becomes numbers for every trainer: 'minilm' sentence embeddings "
        "(the 'transformer' extra), 'tfidf' (TF-IDF + SVD), 'none'; 'auto': minilm when installed, "
        "else tfidf (none when text_finetune is the only trainer: it reads the text itself).")
    text_model: Literal["all-minilm-l6-v2"] = Field(
        "all-minilm-l6-v2", description="Text encoder (shipped inside a Python package, no download), "
        "frozen for text_encoder: minilm, fine-tuned by the text_finetune trainer.")
    text_dims: int = Field(32, ge=1, le=384, description="Numeric columns each text column becomes.")
    epochs: int | None = Field(
        None, ge=1, le=1000, description="Epochs of the neural trainers: text_finetune trains at most "
        "this many (default 3), ft_transformer at most this many (default 200); both keep the epoch "
        "with the best validation loss.")
    folds: int | None = Field(
        None, ge=2, le=10, description="Cross-validation folds of the search; omitted: the smallest "
        "multiple of the cores that is at least 4, at most 10 (4 on 2 or 4 cores, 6 on 3), 5 on one "
        "core: the folds of a trial fit in parallel, one per core.")
    cv: Literal["auto", "stratified", "group", "time"] = Field(
        "auto", description="How folds and the holdout are cut: 'group' keeps each entity's rows "
        "together, 'time' trains on the past and validates on the future; 'auto' is 'group' when an "
        "entity has several labels, else stratified (classification) or shuffled.",
    )
    class_weight: Literal["none", "balanced"] = Field(
        "none", description="'balanced' weighs classes inversely to their frequency (rare positives).")
    ensemble: bool = Field(
        True, description="Combine the best trials by greedy selection on out-of-fold predictions.")
    budget_seconds: int = Field(60, ge=5, le=86_400, description="Wall-clock budget of the whole "
                                "training: search, refit and registration (the first trial always "
                                "finishes, even past it).")
    max_trials: int = Field(200, ge=1, description="Upper bound on completed Optuna trials within the "
                            "budget (pruned ones do not count).")
    workers: int = Field(1, ge=1, le=64, description="Processes running trials of the study at once "
                         "(this one plus workers - 1 helpers: queue workers in team mode, else local "
                         "processes); the ensemble is built from every process's trials.")
    holdout_fraction: float = Field(
        0.2, gt=0.0, lt=0.5, description="Share of labelled rows kept apart to score the winner."
    )
    refit: Literal["all", "train", "bag"] = Field(
        "all", description="How the registered model's members are made: 'all' refits each on every "
        "labelled row (the holdout is then scored by the cross-validation fold models, which never "
        "saw it) and keeps a member's fold models instead when its refit would not end within the "
        "budget; 'bag' keeps every member's fold models (no time kept for refits: more search, "
        "K models per member at prediction); 'train' refits on the train rows only (the holdout is "
        "scored by the registered model itself).")
    seed: int = Field(42, description="Seed for splits and the search.")
    promotion_margin: float = Field(
        0.0, ge=0.0,
        description="A new model becomes champion only if it beats the current one on the new "
        "holdout by more than this (in the metric's units); else it becomes challenger.",
    )
    gate: GateSpec = Field(default_factory=GateSpec, description="Quality gates (minimum / maximum "
                           "holdout metrics, regression against the champion overall and per slice, "
                           "calibration); a model failing one is registered but never champion.")


class ServingSpec(_Strict):
    """How the project's BentoML service runs."""

    port: int = Field(3000, ge=1, le=65_535, description="Port for `bentoml serve`.")
    workers: int = Field(1, ge=1, le=64, description="Worker processes of the service (each loads the "
                         "model and the feature store; one per core is the usual choice).")
    api_token_env: Identifier | None = Field(
        None, description="Name of an environment variable holding a shared secret the service also "
        "accepts as `Authorization: Bearer <secret>`, as viewer on this project only (beside users' and "
        "project tokens, which every request needs anyway). Weaker than per-user tokens: everyone "
        "holding it looks alike, it never expires, and revoking it means changing it everywhere and "
        "restarting; prefer `gristmill tokens create --project <p> --role viewer`.")
    log_predictions: bool = Field(
        True, description="Append every prediction (features, result, model version, latency) to "
        "<workspace>/predictions/<project>/ for monitoring.")
    challenger_share: float = Field(
        0.0, ge=0.0, le=1.0, description="A/B test: share of traffic the 'challenger' model answers, "
        "chosen by a stable hash of the entity id (of the row's values for raw rows), so an entity "
        "always meets the same model. 0 serves the champion only.")
    shadow: bool = Field(
        False, description="Shadow mode: the 'challenger' also scores every request the champion "
        "answers; its predictions are logged (variant 'shadow'), never returned.")


class MonitoringSpec(_Strict):
    """Drift checks of current data against the training reference."""

    drift_share_threshold: float = Field(
        0.5, gt=0.0, le=1.0, description="Share of drifted features that marks the dataset as drifted."
    )
    jobs: list[dict] = Field(
        default_factory=list, description="Monitoring jobs (model, reference, window, labels, "
        "thresholds, alerts, schedule); each is validated as monitoring.jobs.JobSpec when it runs.")


class ProjectSpec(_Strict):
    """A Gristmill project: sources to ingest, features to build, a target to learn, how to serve."""

    project: str = Field(description="Project name; scopes every table, feature, model and bento.")
    description: str = Field("", description="Free text shown in listings.")
    sources: list[SourceSpec] = Field(min_length=1, description="Raw files to ingest.")
    entity: EntitySpec
    features: list[FeatureTableSpec] = Field(min_length=1, description="Tables that feed features.")
    label: LabelSpec
    training: TrainingSpec = TrainingSpec()
    serving: ServingSpec = ServingSpec()
    monitoring: MonitoringSpec = MonitoringSpec()

    @field_validator("project")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not PROJECT_NAME.match(value) or "__" in value:
            raise ValueError(f"{value!r} is not a valid project name: {PROJECT_RULE} (no '__')")
        return value

    @model_validator(mode="after")
    def _distinct_feature_tables(self) -> "ProjectSpec":
        seen: set[str] = set()
        for table in (f.table for f in self.features):
            if table in seen:
                raise ValueError(f"features: table {table!r} is listed twice")
            seen.add(table)
        for i, f in enumerate(self.features):
            if f.project == self.project:
                raise ValueError(f"features[{i}].project: {f.project!r} is this project; leave it out")
        return self

    def label_key(self) -> str:
        return self.label.key or self.entity.key

    def source_paths(self, base: Path) -> list[Path]:
        return [(base / s.path) if not Path(s.path).is_absolute() else Path(s.path) for s in self.sources]


def _key_path(loc: tuple) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1 if parts else 0 :] = [f"{parts[-1] if parts else ''}[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts)


def _describe(error: dict) -> tuple[str, str]:
    loc = tuple(p for p in error["loc"] if p not in ("function-after",))
    message = error["msg"]
    if error["type"] == "missing":
        message = "field required"
    elif error["type"] == "extra_forbidden":
        message = "unknown key (check its spelling and indentation)"
    elif message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return _key_path(loc), message


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: object, file: str, keys: str) -> M:
    """Validate parsed YAML ``data`` as ``model``; errors name ``file`` and the key path."""
    if not isinstance(data, dict):
        raise SpecError(file, "", f"the file must be a YAML mapping of keys ({keys})")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        key, message = problems[0]
        rest = "; ".join(f"{k}: {m}" if k else m for k, m in problems[1:])
        raise SpecError(file, key, message + (f"; {rest}" if rest else "")) from None


#: libyaml's safe loader where PyYAML was built with it (about 10x faster than the pure-Python one)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> object:
    """The YAML document at ``path``; invalid YAML is a one-line :class:`SpecError`."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise SpecError(path.name, where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None


def parse_spec(data: object, file: str) -> ProjectSpec:
    """Validate already-parsed YAML ``data``; errors name ``file`` and the key path."""
    return validate(ProjectSpec, data, file, "project, sources, ...")


def load_spec(path: str | Path) -> ProjectSpec:
    """Read and validate the spec at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(str(path), "", "no such spec file")
    return parse_spec(read_yaml(path), path.name)


def dump_spec(spec: ProjectSpec) -> str:
    """The spec as YAML, keys in declaration order, defaults included."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
