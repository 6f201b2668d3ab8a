"""Names of a project's Feast objects: every one is scoped by the project."""

from __future__ import annotations

import re

FEAST_PROJECT = "gristmill"
PROJECT_TAG = "gristmill_project"
TIMESTAMP = "event_timestamp"
CREATED = "created_timestamp"
REQUEST_TIME = "request_time"  # seconds since the epoch of the request (or the label's as-of time)
STATIC_TIME = "1970-01-01 00:00:00"
#: the online store classes ``feature_store.yaml`` names (:mod:`gristmill.features.online_store`)
SQLITE_STORE_TYPE = "gristmill.features.online_store.GristmillSqliteOnlineStore"
REDIS_STORE_TYPE = "gristmill.features.online_store.GristmillRedisOnlineStore"


def entity_name(project: str, entity: str) -> str:
    return f"{project}__{entity}"


def view_name(project: str, table: str) -> str:
    return f"{project}__{table}"


def request_source_name(project: str) -> str:
    return f"{project}__request"


def service_name(project: str) -> str:
    return project


def feature_name(table: str, column: str) -> str:
    """``<table>__<column>``, the table named once: a column that already carries the table's prefix
    (a table built from an exported training set, ``turnaround__collect_h``) keeps it, not doubled."""
    prefix = f"{table}__"
    while column[:len(prefix)].lower() == prefix.lower() and len(column) > len(prefix):
        column = column[len(prefix):]
    return prefix + column


def snake(value: str) -> str:
    """Lower-case snake_case made of [a-z0-9_] (used for category values inside feature names)."""
    out = re.sub(r"[^0-9a-zA-Z]+", "_", str(value)).strip("_").lower()
    return out or "blank"


def helper_column(name: str) -> bool:
    """Columns the feature store needs but models must not see: the request time and the absolute
    time of the last event (its on-demand "days since last event" is the feature)."""
    return name == REQUEST_TIME or name.endswith("__last_event_at")
