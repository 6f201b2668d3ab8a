"""A training's inputs, prepared once: the rows of the training set, the features and their kinds
(numbers, categories, dates, text), the task and metric, the holdout, the encoded matrices and the
folds. :func:`prepare` is what a training (:mod:`gristmill.training.train`) and each helper of a
distributed study (:mod:`gristmill.training.distributed`) start from, so both see the same data."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gristmill.errors import DataError
from gristmill.features.naming import TIMESTAMP
from gristmill.spec import ProjectSpec
from gristmill.training.leaks import identifier_columns, likely_leaks
from gristmill.training.model import TabularModel
from gristmill.training.task import class_order, detect_task, get_metric
from gristmill.training.text import cache_at
from gristmill.workspace import Workspace

log = logging.getLogger(__name__)


def _strategy(cv: str, frame, key: str) -> str:
    if cv != "auto":
        return cv
    return "group" if frame[key].duplicated().any() else "shuffle"


def _split(frame, target: str, task: str, fraction: float, seed: int, strategy: str, key: str):
    """The holdout, cut like the folds: by entity (group), by time (the latest rows) or at random."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    if strategy == "time":
        ordered = frame.sort_values(TIMESTAMP, kind="stable")
        cut = int(len(ordered) * (1 - fraction))
        return ordered.iloc[:cut], ordered.iloc[cut:]
    if strategy == "group":
        tr, te = next(GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
                      .split(frame, groups=frame[key]))
        return frame.iloc[tr], frame.iloc[te]
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
        if pd.api.types.is_datetime64_any_dtype(series):
            continue  # a date: the model expands it (training.dates)
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            numeric.append(col)
        else:  # most frequent first (ties by name): the boosted trees read many levels as ranks
            counts = series.dropna().astype(str).value_counts()
            categories[col] = sorted(counts.index, key=lambda v: (-counts[v], v))
    return numeric, categories


def _read_dates(frame, features: list[str]):
    """The frame with its date columns (datetimes, ISO strings: :func:`training.dates.recognise`)
    as UTC datetimes, and a notice for each whose unparsable values are read as missing."""
    from gristmill.training import dates
    from gristmill.training.leaks import Notice

    notices = []
    found = dates.recognise(frame, features)
    if found:
        frame = frame.copy()
    for item in found:
        frame[item.column] = dates.as_datetimes(frame[item.column], item.column)
        if item.failed:
            notices.append(Notice("date", item.column, item.line()))
    return frame, notices


def _fit_dates(frame, train_df, features: list[str]):
    """Per date column, the parts that vary on the training rows (as-of: each row's label time);
    the features without the date columns where none varies, and a notice for each of those."""
    from gristmill.training import dates
    from gristmill.training.leaks import Notice

    parts, dropped, notices = {}, set(), []
    for col in features:
        if not dates.is_datetime(frame[col]):
            continue
        as_of, _, _ = dates.parse(train_df[TIMESTAMP], TIMESTAMP)
        kept = dates.varying_parts(train_df[col], col, as_of)
        if not kept:
            dropped.add(col)
            notices.append(Notice("date", col, f"date column {col}: the same on every training row "
                                               "(or always missing): left out"))
            continue
        parts[col] = kept
    taken = set(features)
    for col, kept in parts.items():
        clash = sorted(taken & {dates.output(col, p) for p in kept})
        if clash:
            raise DataError(f"feature {clash[0]!r} is both a column and a part of the date column {col!r}: "
                            "rename the column")
    return parts, [c for c in features if c not in dropped], notices


def _text_columns(frame, features: list[str], categories: dict, wanted: list[str] | None) -> list[str]:
    """The text feature columns: those the spec names (``review`` matches ``reviews__review``), or
    the detected ones among the non-numeric columns."""
    from gristmill.training.text import detect_text_columns

    if wanted is None:
        return detect_text_columns(frame, list(categories))
    found = []
    for name in wanted:
        match = [c for c in features if c == name or c.endswith(f"__{name}")]
        if len(match) != 1:
            raise DataError(f"training.text_columns: {name!r} is "
                            f"{'ambiguous' if match else 'not a feature'} (features: "
                            f"{', '.join(features[:12])}{', ...' if len(features) > 12 else ''})")
        found.append(match[0])
    return found


def _fit_encoders(cfg, text_columns: list[str], train_df, seed: int) -> dict:
    """One fitted text encoder per text column (none when no trainer reads the encodings)."""
    from gristmill.training.text import TextEncoder, resolve_encoder

    readers = [t for t in cfg.trainers if t != "text_finetune"]
    mode = cfg.text_encoder
    if not text_columns or mode == "none" or (mode == "auto" and not readers):
        return {}
    kind = resolve_encoder(mode)
    return {col: TextEncoder(col, kind, cfg.text_dims).fit(train_df[col], seed=seed) for col in text_columns}


def sample_weights(y, task: str, mode: str):
    """Per-row weights making every class weigh the same in total ('balanced'), or None."""
    import numpy as np

    if mode != "balanced" or task == "regression":
        return None
    counts = np.bincount(y.astype(int))
    return (len(y) / (len(counts) * counts))[y.astype(int)]


@dataclass
class Prepared:
    """What a training and its helper processes rebuild alike from the training set (deterministic)."""

    key: object
    target: object
    frame: object
    left_out: object
    features: object
    identifiers: object
    task: object
    metric: object
    classes: object
    numeric: object
    categories: object
    text_columns: object
    fit_task: object
    strategy: object
    train_df: object
    holdout_df: object
    encoders: object
    template: object
    X: object
    X_holdout: object
    y: object
    y_holdout: object
    weight: object
    leaks: object
    notices: object
    folds: object
    splits: object


def prepare(ws: Workspace, spec: ProjectSpec, dataset_id: str, dataset_path: Path) -> Prepared:
    """The rows, features, task, holdout, encoded matrices and folds of a training."""
    import pandas as pd

    from gristmill.training.search import default_folds, make_splits
    from gristmill.training.trainers import Task

    cfg = spec.training
    key, target = spec.entity.key, spec.label.target
    frame = pd.read_parquet(dataset_path)
    left_out = _labels_left_out(dataset_path, frame, target)
    frame = frame[~_pending(frame[target])].reset_index(drop=True)
    if left_out["pending"]:
        log.info("%d labels have no target yet (pending) and are left out of training", left_out["pending"])
    features = [c for c in frame.columns if c not in (key, TIMESTAMP, target)]
    if len(frame) < 20:
        raise DataError(f"the training set {dataset_id!r} has {len(frame)} labelled rows; need at least 20")
    if not features:
        raise DataError("the training set has no feature columns: check `features:` in the spec")
    frame, date_notices = _read_dates(frame, features)
    types = _dataset_meta(dataset_path).get("feature_types")
    whole = [c for c, t in types.items() if t == "Int64"] if types else None
    identifiers = identifier_columns(frame, features, key, TIMESTAMP, cfg.keep_identifiers, whole)
    features = [c for c in features if c not in {n.column for n in identifiers}]
    for notice in identifiers:
        log.info("%s", notice.line())
    if not features:
        raise DataError("every feature column is identifier-like: name the ones to train on in "
                        "training.keep_identifiers")
    task = detect_task(frame[target], cfg.task)
    metric = get_metric(cfg.metric, task)
    classes = class_order(frame[target]) if task != "regression" else []
    numeric, categories = _schema(frame, features)
    text_columns = _text_columns(frame, features, categories, cfg.text_columns)
    categories = {c: v for c, v in categories.items() if c not in text_columns}
    numeric = [c for c in numeric if c not in text_columns]
    fit_task = Task(task, len(classes), seed=cfg.seed, epochs=cfg.epochs)

    def encode_target(series):
        if task == "regression":
            return series.astype("float64").to_numpy()
        lookup = {c: i for i, c in enumerate(classes)}
        return series.map(lookup).to_numpy()

    strategy = _strategy(cfg.cv, frame, key)
    train_df, holdout_df = _split(frame, target, task, cfg.holdout_fraction, cfg.seed, strategy, key)
    train_df = train_df.reset_index(drop=True)
    date_parts, features, constant = _fit_dates(frame, train_df, features)
    date_notices += constant
    for notice in date_notices:
        log.info("%s", notice.line())
    with cache_at(ws.root / "cache" / "text"):
        encoders = _fit_encoders(cfg, text_columns, train_df, cfg.seed)
        template = TabularModel(spec.project, task, features, numeric, categories, classes, dataset_id,
                                metric.name, text_columns=text_columns, encoders=encoders, dates=date_parts,
                                dates_required=[c for c in date_parts if frame[c].notna().all()])
        X = template.frame(train_df)
        X_holdout = template.frame(holdout_df)
    y = encode_target(train_df[target])
    y_holdout = encode_target(holdout_df[target])
    weight = sample_weights(y, task, cfg.class_weight)
    leaks = likely_leaks(train_df, holdout_df, [c for c in features if c not in text_columns], numeric,
                         y, y_holdout, task)
    for notice in leaks:
        log.info("%s", notice.line())  # shown by the CLI from the result: not twice
    notices = [n.as_dict() for n in identifiers + date_notices + leaks]
    folds = cfg.folds or default_folds()
    splits = make_splits("stratified" if strategy == "shuffle" else strategy, task, y, train_df[key],
                         train_df[TIMESTAMP], folds, cfg.seed)

    return Prepared(key=key, target=target, frame=frame, left_out=left_out, features=features, identifiers=identifiers, task=task, metric=metric, classes=classes, numeric=numeric, categories=categories, text_columns=text_columns, fit_task=fit_task, strategy=strategy, train_df=train_df, holdout_df=holdout_df, encoders=encoders, template=template, X=X, X_holdout=X_holdout, y=y, y_holdout=y_holdout, weight=weight, leaks=leaks, notices=notices, folds=folds, splits=splits)



def _pending(series):
    """Rows whose target is not known yet: missing, NaN, or blank text."""
    blank = series.astype("string").str.strip().str.lower().isin(["", "nan"]).fillna(False)
    return (series.isna() | blank).to_numpy(dtype=bool)


def _dataset_meta(dataset_path: Path) -> dict:
    """The training set's description written beside it (``.json``), or {}."""
    import json

    meta = Path(dataset_path).with_suffix(".json")
    return json.loads(meta.read_text()) if meta.is_file() else {}


def _labels_left_out(dataset_path: Path, frame, target: str) -> dict[str, int]:
    """Label rows this training cannot use, by reason: those the training set's build left out (its
    ``.json`` beside it) plus rows of the set itself whose target is pending."""
    found = {"pending": 0, "no_key": 0, "no_timestamp": 0}
    for reason, n in (_dataset_meta(dataset_path).get("labels_left_out") or {}).items():
        found[reason] = found.get(reason, 0) + int(n)
    found["pending"] += int(_pending(frame[target]).sum())
    return found
