"""The trained model as served: preprocessing + one or more native models, no pyfunc overhead.

:class:`TabularModel` holds the feature schema and its members: native models of the trainers
(:mod:`gristmill.training.trainers`) with their ensemble weights; a prediction is the weighted
average of the members' scores (or a linear second layer over them, ``stacker``). It is what both the MLflow pyfunc wrapper and the BentoML service
call, so the registered model and the served model run the same code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

from gristmill.errors import InvalidRequest
from gristmill.features.naming import TIMESTAMP
from gristmill.training.dates import output

META_FILE = "gristmill_model.json"
TEXT_FILE = "text_encoders.joblib"


@dataclass
class Member:
    """One native model of an ensemble: its trainer's name, its weight and the fitted model."""

    trainer: str
    weight: float
    fitted: Any = None
    params: dict = field(default_factory=dict)


@dataclass
class TabularModel:
    """Feature schema + members. ``categories`` maps each categorical column to its training
    levels; ``text_columns`` hold free text, each turned into numbers by its fitted encoder in
    ``encoders`` (:mod:`gristmill.training.text`) and also passed on raw for trainers that read text;
    ``dates`` maps each date column to the parts it becomes (:mod:`gristmill.training.dates`),
    ``dates_required`` lists those never missing at training (a row without one is refused)."""

    project: str
    task: str
    features: list[str]
    numeric: list[str]
    categories: dict[str, list[str]]
    classes: list[Any] = field(default_factory=list)
    dataset_id: str = ""
    metric: str = ""
    members: list[Member] = field(default_factory=list)
    text_columns: list[str] = field(default_factory=list)
    encoders: dict[str, Any] = field(default_factory=dict)
    #: how the ensemble's probabilities are recalibrated (:mod:`gristmill.training.calibration`)
    calibration: dict[str, Any] | None = None
    dates: dict[str, list[str]] = field(default_factory=dict)
    dates_required: list[str] = field(default_factory=list)
    #: a linear second layer over the ensemble's members (:mod:`gristmill.training.stacking`), with
    #: ``groups``: each member's input (the fold models of one bagged trial share one)
    stacker: dict[str, Any] | None = None

    # -- preprocessing -------------------------------------------------------------------------
    def frame(self, rows, as_of=None):
        """A model-ready DataFrame from a DataFrame or a list of dicts (missing features -> NaN).

        ``as_of`` is the time date features are measured to (``elapsed_days``): one time or one
        per row (datetimes, ISO strings); by default a frame's ``event_timestamp`` column (a
        training set's label time) when it has one, else now (the request time)."""
        import pandas as pd

        if isinstance(rows, pd.DataFrame):
            df, index = rows, rows.index
            out = self._columns_of_frame(df)
            if as_of is None and TIMESTAMP in df:
                as_of = df[TIMESTAMP]

            def column(col):
                return df[col] if col in df else pd.Series(None, index=index, dtype="object")
        else:
            rows = list(rows)
            index = pd.RangeIndex(len(rows))
            out = self._columns_of_records(rows)

            def column(col):
                return [row.get(col) for row in rows]
        if self.dates:
            out.update(self._date_columns(column, len(index), as_of))
        order = []
        for c in self.features:
            if c in self.dates:
                order += [output(c, part) for part in self.dates[c]]
            elif c not in self.text_columns:
                order.append(c)
        raw = {}
        for col in self.text_columns:
            raw[col] = pd.array(text_strings(column(col)), dtype="string")
            if col in self.encoders:
                encoder = self.encoders[col]
                matrix = encoder.transform(raw[col])
                for i, name in enumerate(encoder.outputs):
                    out[name] = matrix[:, i]
                order += encoder.outputs
        out.update(raw)
        if not raw and not self.categories:  # numbers only: one float block, built at once
            import numpy as np

            block = (np.column_stack([np.asarray(out[c], dtype="float64") for c in order]) if order
                     else np.empty((len(index), 0)))
            return pd.DataFrame(block, index=index, columns=order)
        return pd.DataFrame(out, index=index)[order + self.text_columns]

    def _date_columns(self, column, n: int, as_of) -> dict:
        """Each date column's parts (:func:`gristmill.training.dates.expand`); a date the model
        never saw missing, missing here, is an :class:`InvalidRequest`."""
        import numpy as np

        from gristmill.training import dates

        if as_of is None:
            at = dates.now_us()
        elif isinstance(as_of, (str, int, float)) or not hasattr(as_of, "__len__"):
            at = dates.parse([as_of], "as_of")[0][0]
        else:
            at, missing, _ = dates.parse(as_of, "as_of")
            at = np.where(missing, dates.now_us(), at)
        out = {}
        for col, parts in self.dates.items():
            values = column(col)
            found = dates.expand(values, col, parts, at)
            if col in self.dates_required and n and parts:
                gone = np.isnan(found[output(col, parts[0])])
                if gone.any():
                    raise InvalidRequest(f"feature {col!r} is required: a date or timestamp "
                                         f"({dates.EXAMPLE}); the model never saw it missing "
                                         f"(row {int(gone.argmax())} has none)")
            out.update(found)
        return out

    def _columns_of_frame(self, df) -> dict:
        import numpy as np
        import pandas as pd

        out = {}
        for col in self.numeric:
            values = df[col] if col in df else pd.Series(np.nan, index=df.index)
            converted = pd.to_numeric(values, errors="coerce")
            bad = converted.isna() & values.notna()
            if bad.any():
                raise InvalidRequest(f"feature {col!r} must be a number, got {values[bad].iloc[0]!r}")
            out[col] = converted.astype("float64")
        for col in self.categories:
            values = df[col] if col in df else pd.Series(None, index=df.index, dtype="object")
            text = values.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
            out[col] = pd.Categorical(text, dtype=self._levels[col][0])
        return out

    def _columns_of_records(self, rows: list[dict]) -> dict:
        """The request path: a few dicts straight into numpy columns (pandas' per-column Series
        machinery costs ~1 ms a column, too much for a single-row request)."""
        import numpy as np
        import pandas as pd

        n = len(rows)
        out = {}
        for col in self.numeric:
            values = np.full(n, np.nan)
            for i, row in enumerate(rows):
                value = row.get(col)
                if value is not None:
                    values[i] = value if type(value) in (float, int) else _number(col, value)
            out[col] = values
        for col in self.categories:
            dtype, code = self._levels[col]
            codes = np.fromiter((code.get(_text(row.get(col)), -1) for row in rows), dtype="int32", count=n)
            out[col] = pd.Categorical.from_codes(codes, dtype=dtype)
        return out

    @cached_property
    def _levels(self) -> dict:
        """Each categorical column's dtype and its level -> code map, made once (a request's
        categoricals are built from codes, without pandas inferring anything)."""
        import pandas as pd

        return {col: (pd.CategoricalDtype(levels), {level: i for i, level in enumerate(levels)})
                for col, levels in self.categories.items()}

    def unknown_fields(self, row: dict) -> list[str]:
        return sorted(set(row) - set(self.features))

    # -- prediction ----------------------------------------------------------------------------
    def scores(self, frame):
        """The members' weighted scores of a prepared frame, in the trainers' shape (binary:
        P(positive class); multiclass: a rows x classes matrix; regression: values), calibrated
        as training chose (:mod:`gristmill.training.calibration`)."""
        from gristmill.training import trainers
        from gristmill.training.calibration import apply
        from gristmill.training.trainers.base import reading

        task = self.trainer_task()
        groups = self.stacker["groups"] if self.stacker else [0] * len(self.members)
        totals: dict[int, Any] = {}
        weights: dict[int, float] = {}
        with reading(frame):  # the members read the frame's columns once between them
            for member, group in zip(self.members, groups):
                trainer = trainers.get(member.trainer)
                part = member.weight * trainer.predict(member.fitted, task, trainer.inputs(frame))
                totals[group] = part if group not in totals else totals[group] + part
                weights[group] = weights.get(group, 0.0) + member.weight
        if self.stacker:
            from gristmill.training import stacking

            inputs = stacking.inputs(self.task, [totals[g] / weights[g] for g in sorted(totals)])
            return stacking.apply(self.stacker, self.task, inputs)
        return apply(self.calibration, self.task, totals[0] / weights[0])

    def trainer_task(self):
        from gristmill.training.trainers import Task

        return Task(self.task, len(self.classes), threads=1)

    def predict_raw(self, frame):
        """Scores of a prepared frame: P(class) matrix for classifiers, values for regression."""
        import numpy as np

        scores = np.asarray(self.scores(frame))
        if self.task == "binary":
            return np.column_stack([1.0 - scores, scores])
        return scores

    def predict_records(self, rows) -> list[dict]:
        """Predictions as JSON-able dicts: ``prediction`` and, for classifiers, ``probabilities``."""
        scores = self.predict_raw(self.frame(rows))
        if self.task == "regression":
            return [{"prediction": float(s)} for s in scores]
        out = []
        for row in scores:
            best = int(row.argmax())
            out.append({"prediction": _plain(self.classes[best]),
                        "probabilities": {str(c): float(p) for c, p in zip(self.classes, row)}})
        return out

    def predict_table(self, rows):
        """Predictions as a DataFrame: ``prediction`` and one ``probability_<class>`` per class."""
        import pandas as pd

        flat = []
        for rec in self.predict_records(rows):
            row = {"prediction": rec["prediction"]}
            row.update({f"probability_{c}": p for c, p in rec.get("probabilities", {}).items()})
            flat.append(row)
        return pd.DataFrame(flat)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        """Write the schema and every member into ``folder`` (one subfolder per member)."""
        from gristmill.training import trainers

        folder.mkdir(parents=True, exist_ok=True)
        meta = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("members", "encoders")}
        meta["members"] = []
        if self.encoders:
            import joblib

            joblib.dump(self.encoders, folder / TEXT_FILE)
            meta["encoders"] = {c: {"kind": e.kind, "dims": e.dims} for c, e in self.encoders.items()}
        for n, member in enumerate(self.members):
            sub = folder / f"member_{n}"
            sub.mkdir(exist_ok=True)
            file = trainers.get(member.trainer).save(member.fitted, sub)
            meta["members"].append({"trainer": member.trainer, "weight": member.weight,
                                    "params": member.params, "file": f"member_{n}/{file}"})
        (folder / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "TabularModel":
        from gristmill.training import trainers

        folder = Path(folder)
        meta = json.loads((folder / META_FILE).read_text())
        members = [Member(m["trainer"], m["weight"], trainers.get(m["trainer"]).load(folder / m["file"]),
                          m.get("params", {})) for m in meta.pop("members")]
        encoders = {}
        if meta.pop("encoders", None):
            import joblib

            encoders = joblib.load(folder / TEXT_FILE)
        return cls(**meta, members=members, encoders=encoders)


def text_strings(values) -> list:
    """Text values as strings (missing stays missing)."""
    import pandas as pd

    return [None if not isinstance(v, str) and pd.api.types.is_scalar(v) and pd.isna(v) else str(v)
            for v in values]


def _number(col: str, value) -> float:
    """A request's value of a numeric feature: numbers and numeric strings; else a 422."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    elif not isinstance(value, (list, dict)):
        try:
            return float(value)  # numpy scalars, bools, decimals
        except (TypeError, ValueError):
            pass
    raise InvalidRequest(f"feature {col!r} must be a number, got {value!r}")


def _text(value):
    """A request's value of a categorical feature as text (missing stays missing)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def pyfunc_class():
    """The MLflow PythonModel wrapping :class:`TabularModel` (defined lazily: mlflow is heavy)."""
    import mlflow.pyfunc

    class GristmillModel(mlflow.pyfunc.PythonModel):
        def load_context(self, context):
            self.model = TabularModel.load(context.artifacts["model"])

        def predict(self, context, model_input, params=None):
            return self.model.predict_table(model_input)

    return GristmillModel
