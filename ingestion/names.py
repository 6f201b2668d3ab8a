"""Names from user data: snake_case columns and tables, collisions resolved, nothing left unquoted.

Rules (documented in the package docstring):

- letters are folded to ASCII (``Gebühr`` -> ``gebuhr``, ``ß`` -> ``ss``), camelCase is split,
  every run of other characters becomes one ``_``; the result is lower case;
- a name that starts with a digit gets a ``c_`` prefix (tables: ``t_``); an empty one becomes
  ``column_<n>``;
- nested JSON keys are joined with ``__`` (``customer.id`` -> ``customer__id``);
- collisions get ``_2``, ``_3``... in order of appearance.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_OTHER = re.compile(r"[^0-9a-zA-Z]+")
_SPECIAL = {"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE", "ł": "l",
            "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "%": " pct ", "#": " num ", "€": " eur ",
            "$": " usd ", "£": " gbp "}
# Date-like and numeric tokens stripped from file names to find a dataset's base name
# ("sales_2024_01" -> "sales", "export-march" -> "export").
_MONTHS = ("jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|"
           "july|august|september|october|november|december")
_VOLATILE = re.compile(rf"(^|_)(\d+|q[1-4]|h[12]|{_MONTHS}|part\d*|v\d+)(?=_|$)")


def _fold(name: object) -> str:
    text = "".join(_SPECIAL.get(ch, ch) for ch in str(name))
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = _CAMEL.sub("_", text)
    return _OTHER.sub("_", text).strip("_").lower()


def snake(name: object, *, fallback: str = "column") -> str:
    """``'Customer ID'`` -> ``'customer_id'``; never empty, never starting with a digit."""
    out = _fold(name)
    if not out:
        return fallback
    return f"c_{out}" if out[0].isdigit() else out


def snake_path(parts: Sequence[object]) -> str:
    """Nested keys joined with ``__``: ``('Customer', 'ID')`` -> ``'customer__id'``."""
    return "__".join(snake(p) for p in parts)


def unique(names: Iterable[str], taken: Iterable[str] = ()) -> list[str]:
    """Resolve collisions by appending ``_2``, ``_3``... (also avoiding ``taken``)."""
    seen = set(taken)
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


def column_names(originals: Sequence[object], nested: Sequence[Sequence[object]] | None = None) -> list[str]:
    """snake_case, unique column names for a header (``nested``: key paths of flattened JSON)."""
    base = []
    for i, original in enumerate(originals):
        if nested is not None and len(nested[i]) > 1:
            base.append(snake_path(nested[i]))
        elif original is None or str(original).strip() == "":
            base.append(f"column_{i + 1}")
        else:
            base.append(snake(original, fallback=f"column_{i + 1}"))
    return unique(base, taken=("_source_file", "_row_number"))


def table_name(stem: str) -> str:
    """A table name from a file stem or a user's name; ``__`` (child tables) is kept."""
    parts = [snake(p, fallback="") for p in str(stem).split("__")]
    out = "__".join(p for p in parts if p) or "table"
    return f"t_{out[2:]}" if out.startswith("c_") else out


def dataset_base(stem: str) -> str:
    """A file stem without date-like and numeric parts: monthly exports share their base."""
    parts = []
    for part in str(stem).split("__"):
        name, previous = _fold(part), None
        while previous != name:
            previous, name = name, _VOLATILE.sub("", name).strip("_")
        if name:
            parts.append(re.sub(r"_+", "_", name))
    return "__".join(parts)
