"""Project templates: plain YAML data, one file each, validated by :class:`Template`.

The built-in ones lie in ``gristmill/requirements/templates/``; a user adds one as a YAML file in
``<workspace>/templates/`` (same keys). A user template may not reuse a built-in's name (the
registry fails loudly on duplicates); a miss lists the known names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gristmill.errors import GristmillError
from gristmill.spec import GateSpec, Identifier, MetricName

BUILTIN_DIR = Path(__file__).parent / "templates"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelRecipe(_Strict):
    """How the label is built from events when the export holds no label table."""

    recipe: Literal["given", "flag", "inactivity", "event_within", "sum_within"] = Field(
        description="'given': a label table must exist; 'flag': a yes/no column on the event rows "
        "themselves; 'inactivity': 1 when an active entity has no event (or a matching cancellation "
        "event) in the horizon after the as-of date; 'event_within': 1 when a matching event happens "
        "in the horizon; 'sum_within': the sum of an amount column in the horizon.")
    description: str = Field(description="How the label is made, shown to the user ({horizon}, "
                             "{every} and {amount} are filled in).")
    event_words: list[str] = Field(default_factory=list, description="Words an event's type, status "
                                   "or category value contains to count as the outcome (cancel, won).")
    amount_words: list[str] = Field(default_factory=list, description="Words naming the amount column "
                                    "summed by 'sum_within' (amount, quantity).")
    every_days: int = Field(30, ge=1, le=366, description="Days between two as-of dates of the grid.")


class FeatureDefaults(_Strict):
    """Default feature settings of the template."""

    windows: list[int] = Field([7, 30, 90], description="Event-table windows in days.")


class ServingShape(_Strict):
    """What a prediction request is about."""

    shape: Literal["entity", "entity_date", "rows"] = Field(
        "entity", description="'entity': one id in, a score out; 'entity_date': an id and a date; "
        "'rows': raw feature rows.")
    requests_per_worker_second: float = Field(
        100.0, gt=0, description="Peak requests a second one service worker is planned to answer "
        "(serving workers = peak / this, at least 1).")


class MonitoringDefaults(_Strict):
    drift_share_threshold: float = Field(0.5, gt=0.0, le=1.0, description="Share of drifted features "
                                         "that marks the dataset as drifted.")


class Template(_Strict):
    """A kind of project: what the words of an objective mean, and the spec it leads to."""

    name: Identifier = Field(description="Short key, e.g. 'churn' (`gristmill templates show churn`).")
    title: str = Field(description="Human name.")
    description: str = Field(description="One sentence of what it predicts; matched against the "
                             "objective by sentence embeddings.")
    keywords: list[str] = Field(min_length=1, description="Words of an objective that point to it.")
    task: Literal["binary", "multiclass", "regression"] = Field(description="Learning task.")
    metric: MetricName = Field(description="Selection metric.")
    cv: Literal["stratified", "group", "time"] = Field(
        description="How folds are cut; 'time' where the objective is about the future.")
    class_weight: Literal["none", "balanced"] = Field("none", description="Class weighting.")
    horizon_days: int | None = Field(None, ge=1, le=3650, description="Default prediction horizon.")
    entity_words: list[str] = Field(default_factory=list, description="Words naming the entity.")
    target_words: list[str] = Field(default_factory=list, description="Words naming the target column.")
    timestamp_words: list[str] = Field(default_factory=list, description="Words naming the as-of column.")
    label: LabelRecipe
    features: FeatureDefaults = FeatureDefaults()
    serving: ServingShape = ServingShape()
    monitoring: MonitoringDefaults = MonitoringDefaults()
    gate: GateSpec = Field(default_factory=GateSpec, description="Default quality gate.")
    source: str = Field("built-in", description="Where it was read from (set by the loader).")

    def explain_label(self, horizon: int | None, amount: str | None = None) -> str:
        return self.label.description.format(horizon=horizon or self.horizon_days or "?",
                                             every=self.label.every_days, amount=amount or "the amount")


def _read(path: Path) -> Template:
    from gristmill.spec import read_yaml, validate

    data = read_yaml(path)
    if isinstance(data, dict):
        data = {**data, "source": str(path) if path.parent != BUILTIN_DIR else "built-in"}
    template = validate(Template, data, path.name, "name, title, description, keywords, task, ...")
    if template.name != path.stem:
        raise GristmillError(f"{path.name}: name {template.name!r} must match the file name {path.stem!r}")
    return template


def load_templates(workspace_root: Path | None = None) -> dict[str, Template]:
    """Every template by name: the built-in ones, then ``<workspace>/templates/*.yaml``."""
    found: dict[str, Template] = {}
    folders = [BUILTIN_DIR] + ([workspace_root / "templates"] if workspace_root is not None else [])
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.y*ml")):
            template = _read(path)
            if template.name in found:
                raise GristmillError(f"{path}: template {template.name!r} exists already "
                                     f"({found[template.name].source}); give it another name")
            found[template.name] = template
    return found


def get_template(name: str, workspace_root: Path | None = None) -> Template:
    templates = load_templates(workspace_root)
    if name not in templates:
        raise GristmillError(f"no template {name!r}; known: {', '.join(sorted(templates))}")
    return templates[name]
