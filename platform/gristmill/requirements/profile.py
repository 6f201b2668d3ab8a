"""What the understanding sees of the ingested tables: names, types, counts and a few values."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gristmill.sql import ident, qualified

TEMPORAL = ("DATE", "TIMESTAMP")
NUMERIC = ("DOUBLE", "FLOAT", "DECIMAL", "BIGINT", "INTEGER", "HUGEINT", "SMALLINT", "TINYINT", "UBIGINT",
           "UINTEGER")
KEYISH = ("VARCHAR", "BIGINT", "INTEGER", "HUGEINT", "UBIGINT", "UINTEGER", "SMALLINT")
SAMPLE_VALUES = 8
HIDDEN = ("_source_file", "_row_number")


@dataclass
class ColumnProfile:
    table: str
    name: str
    type: str
    rows: int
    distinct: int
    nulls: int
    values: list[str] = field(default_factory=list)  #: the most frequent values (at most 8)

    @property
    def temporal(self) -> bool:
        return self.type.startswith(TEMPORAL)

    @property
    def numeric(self) -> bool:
        return self.type.startswith(NUMERIC)

    @property
    def binary(self) -> bool:
        return self.type == "BOOLEAN" or self.distinct == 2

    @property
    def words(self) -> list[str]:
        return words_of(self.name)

    def describe(self) -> str:
        """A phrase for the sentence encoder: 'churned (yes/no) in churn labels: Yes, No'."""
        kind = "yes/no" if self.binary else "date" if self.temporal else "number" if self.numeric else "text"
        shown = ", ".join(self.values[:4])
        return f"{' '.join(self.words)} ({kind}) in {' '.join(words_of(self.table))}: {shown}"


@dataclass
class TableProfile:
    name: str
    rows: int
    columns: list[ColumnProfile]

    def column(self, name: str) -> ColumnProfile:
        return next(c for c in self.columns if c.name == name)


def words_of(name: str) -> list[str]:
    """``customer__id`` -> ['customer', 'id']; ``LastActivityAt`` -> ['last', 'activity', 'at']."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def profile(ws, project: str) -> list[TableProfile]:
    """Every ingested table of ``project`` (not the ``_`` views), with its columns' profiles."""
    from gristmill.catalog import lake_reader

    con = lake_reader(ws, project)
    try:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY 1", [project]).fetchall()]
        return [_table(con, project, name) for name in names]
    finally:
        con.close()


def _table(con, project: str, name: str) -> TableProfile:
    source = qualified(project, name)
    rows = con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0]
    columns = []
    for col, dtype, *_ in con.execute(f"DESCRIBE {source}").fetchall():
        if col in HIDDEN:
            continue
        distinct, nulls = con.execute(f"SELECT count(DISTINCT {ident(col)}), count(*) - count({ident(col)}) "
                                      f"FROM {source}").fetchall()[0]
        values = [str(r[0]) for r in con.execute(
            f"SELECT {ident(col)} AS v, count(*) AS n FROM {source} WHERE {ident(col)} IS NOT NULL "
            f"GROUP BY 1 ORDER BY n DESC, 1 LIMIT {SAMPLE_VALUES}").fetchall()]
        columns.append(ColumnProfile(name, col, str(dtype), rows, distinct, nulls, values))
    return TableProfile(name, rows, columns)


def overlap(ws, project: str, a: tuple[str, str], b: tuple[str, str]) -> float:
    """Share of the distinct values of column ``a`` (table, column) found in column ``b``."""
    from gristmill.catalog import lake_reader

    con = lake_reader(ws, project)
    try:
        left = f"SELECT DISTINCT CAST({ident(a[1])} AS VARCHAR) AS v FROM {qualified(project, a[0])}"
        right = f"SELECT DISTINCT CAST({ident(b[1])} AS VARCHAR) AS v FROM {qualified(project, b[0])}"
        total, known = con.execute(f"SELECT count(*), count(*) FILTER (WHERE v IN ({right})) FROM ({left}) "
                                   "WHERE v IS NOT NULL").fetchall()[0]
        return known / total if total else 0.0
    finally:
        con.close()
