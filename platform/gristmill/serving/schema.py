"""Typed request bodies derived from the champion model's features.

``row_model`` builds the pydantic model of one raw row of ``/predict``: one optional field per
feature the model reads, numbers as numbers, categories as text (their training levels in the
description), dates as ISO 8601 strings (required when training never saw one missing), unknown
keys refused. BentoML publishes it in the service's OpenAPI document, so
clients (and property-based testers) see every feature with its type, and a mistake gets a
field-level 400 before it reaches the model. The schema is the one of the champion at start-up: a
model with other features needs a restart (``/reload`` alone keeps checking fields by hand).

Numbers are bounded to what every trainer can score: finite and within float32's range
(:data:`NUMBER_LIMIT`; scikit-learn's members cast to float32 and refuse infinity). ``1e308``,
``1e400`` (read as infinity) and ``Infinity`` are a 400 naming the field; ``NaN`` is a missing
value. The gateway, whose rows are plain objects, applies the same rule by hand
(:func:`check_numbers`).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from gristmill.workspace import Workspace

#: The largest magnitude a numeric feature may carry: float32's (3.4028234663852886e+38).
NUMBER_LIMIT = 3.4028234663852886e38


def _nan_is_missing(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _number_type():
    from pydantic import BeforeValidator, Field

    from pydantic import Strict

    # strict: a JSON number (integers too), not true/false or a numeric string, as documented
    bounded = Annotated[float, Strict(), Field(ge=-NUMBER_LIMIT, le=NUMBER_LIMIT)]
    return Annotated[bounded | None, BeforeValidator(_nan_is_missing)]


def check_numbers(numeric: list[str], row: dict, where: str = "request") -> None:
    """The rule of the typed schema for a plain row: every numeric feature's number is finite and
    within :data:`NUMBER_LIMIT` (NaN counts as missing); else an
    :class:`~gristmill.errors.InvalidRequest` naming the field."""
    from gristmill.errors import InvalidRequest

    for feature in numeric:
        value = row.get(feature)
        if isinstance(value, str):  # a numeric string is read as its number
            try:
                value = float(value)
            except ValueError:
                continue  # not a number at all: the model's own check answers it
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        if not (isinstance(value, float) and math.isinf(value)) and abs(value) <= NUMBER_LIMIT:
            continue
        if isinstance(value, int):
            shown = f"an integer of {len(str(abs(value)))} digits"
        else:
            shown = "infinity" if math.isinf(value) else f"{value:.8g}"
        raise InvalidRequest(f"{where}: feature {feature!r} must be a finite number between "
                             f"-{NUMBER_LIMIT:.8g} and {NUMBER_LIMIT:.8g}, got {shown}")

VALUE = str | int | float | bool | None
_SHOWN_LEVELS = 12


def row_model(ws: Workspace, project: str, class_name: str = "Row", bundled=None) -> type:
    """The pydantic model of one row of raw feature values for ``project``'s champion (the
    registry's, or the one a built bento carries: a :class:`gristmill.serving.bundle.Bundled`)."""
    if bundled is not None:
        from gristmill.serving.bundle import load

        model = load(bundled)
    else:
        from gristmill.serving.batch import champion

        _, model = champion(ws, project)
    return model_for(model.features, model.numeric, model.categories, class_name, model.dates,
                     model.dates_required)


def _date_type(feature: str):
    """An ISO 8601 string (or null), checked by the model's own date reader."""
    from pydantic import AfterValidator, Strict

    from gristmill.errors import InvalidRequest
    from gristmill.training.dates import parse

    def check(value):
        if value is not None:
            try:
                parse([value], feature)
            except InvalidRequest as exc:
                raise ValueError(str(exc)) from None
        return value

    return Annotated[Annotated[str, Strict()] | None, AfterValidator(check)]


def model_for(features: list[str], numeric: list[str], categories: dict[str, list], class_name: str,
              dates: dict[str, list] | None = None, required: list[str] | None = None) -> type:
    """The row model: ``dates`` (the model's date columns) take ISO 8601 strings; those in
    ``required`` (never missing at training) must be given."""
    from pydantic import ConfigDict, Field, create_model

    from gristmill.training.dates import EXAMPLE

    numbers, dates, required = set(numeric), dates or {}, set(required or [])
    fields: dict[str, Any] = {}
    for n, feature in enumerate(features):
        if feature in dates:
            need = feature in required
            fields[f"f{n}"] = (_date_type(feature), Field(
                ... if need else None, alias=feature,
                description=f"{feature}: a date or timestamp, {EXAMPLE} (UTC unless it has an offset); "
                            + ("required." if need else "missing if absent.")))
            continue
        if feature in numbers:
            kind, note = _number_type(), f"a number, at most {NUMBER_LIMIT:.8g} in magnitude"
        else:
            levels = [str(v) for v in categories.get(feature, [])]
            kind = VALUE
            note = "text" if not levels else "one of " + ", ".join(repr(v) for v in levels[:_SHOWN_LEVELS]) + (
                ", ..." if len(levels) > _SHOWN_LEVELS else "") + " (others count as unseen)"
        # internal names f0, f1, ... : a feature may be called like a pydantic attribute
        fields[f"f{n}"] = (kind, Field(None, alias=feature, description=f"{feature}: {note}; missing if absent."))
    return create_model(class_name, __config__=ConfigDict(extra="forbid", populate_by_name=False), **fields)


def as_dicts(rows: list) -> list[dict]:
    """Validated rows back to ``{feature: value}`` with only the values the client gave."""
    return [row.model_dump(by_alias=True, exclude_unset=True) if hasattr(row, "model_dump") else row
            for row in rows]
