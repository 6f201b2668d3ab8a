"""Which model answers a request: A/B split by a stable hash, and the shadow copy.

An entity is hashed with its project (SHA-256, first 8 bytes as a fraction of 2**64); it goes to the
challenger when that fraction is below the spec's ``serving.challenger_share``. The same id meets the
same model on every worker, after every restart and on every machine; raising the share only moves
more entities over, never back.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

CHAMPION, CHALLENGER, SHADOW = "champion", "challenger", "shadow"


def bucket(project: str, key: str) -> float:
    """A stable number in [0, 1) for ``key`` within ``project``."""
    digest = hashlib.sha256(f"{project}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def row_key(row: dict[str, Any]) -> str:
    """The routing key of a raw row without an id: its values, in a canonical form."""
    return json.dumps(row, sort_keys=True, default=str, separators=(",", ":"))


def variants(project: str, keys: list[str], share: float) -> list[str]:
    """``champion`` or ``challenger`` for each key."""
    if share <= 0:
        return [CHAMPION] * len(keys)
    return [CHALLENGER if bucket(project, k) < share else CHAMPION for k in keys]
