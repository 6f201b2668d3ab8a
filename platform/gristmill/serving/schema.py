"""Typed request bodies derived from the champion model's features.

``row_model`` builds the pydantic model of one raw row of ``/predict``: one optional field per
feature the model reads, numbers as numbers, categories as text (their training levels in the
description), unknown keys refused. BentoML publishes it in the service's OpenAPI document, so
clients (and property-based testers) see every feature with its type, and a mistake gets a
field-level 400 before it reaches the model. The schema is the one of the champion at start-up: a
model with other features needs a restart (``/reload`` alone keeps checking fields by hand).
"""

from __future__ import annotations

from typing import Any

from gristmill.workspace import Workspace

NUMBER = float | None
VALUE = str | int | float | bool | None
_SHOWN_LEVELS = 12


def row_model(ws: Workspace, project: str, class_name: str = "Row") -> type:
    """The pydantic model of one row of raw feature values for ``project``'s champion."""
    from gristmill.serving.batch import champion

    _, model = champion(ws, project)
    return model_for(model.features, model.numeric, model.categories, class_name)


def model_for(features: list[str], numeric: list[str], categories: dict[str, list], class_name: str) -> type:
    from pydantic import ConfigDict, Field, create_model

    numbers = set(numeric)
    fields: dict[str, Any] = {}
    for n, feature in enumerate(features):
        if feature in numbers:
            kind, note = NUMBER, "a number"
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
