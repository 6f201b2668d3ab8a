"""Each file typed with its own dialect, then the typed columns unioned into one table.

Files of one dataset may be written in different dialects: one ISO CSV, one with ``$1,234``
amounts, one ``;``-separated with decimal commas and ``dd.mm.yyyy``, one Parquet. Typing the union
of their raw text would find no reading that fits every file and leave the columns as text. So:

1. every part (file, sheet, table) is typed on its own, with its own dialect
   (:func:`ingestion.infer.plan_columns`); typed sources keep their types;
2. per column, the parts' types are joined: equal types stay; integers and decimals give
   decimals (``DOUBLE``); dates and naive timestamps give timestamps; a part whose column holds no
   value takes any type;
3. a part whose column stayed text because too few of its values parsed, while the other parts
   agree on a type, is read with that type when the values of all parts together reach the
   threshold (:data:`ingestion.infer.MIN_SHARE`): its odd values are quarantined with file and line;
4. parts that still disagree (a number in one file, words in another) make the column text, every
   value as the file wrote it, and the schema record says which file read how.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gristmill.sql import ident, literal
from ingestion.infer import MIN_SHARE, Plan, plan_columns, prepare, release, settled_plans
from ingestion.readers import RawPart

INTERNAL = ("_source_file", "_row_number")
_NUMERIC = {"integer", "decimal"}
_TEMPORAL = {"date", "timestamp"}


@dataclass
class TypedPart:
    """A part with its plans; ``source`` is the relation the plans' SQL refers to."""

    part: RawPart
    source: str
    columns: list[str]
    plans: dict[str, Plan]
    empty: set[str] = field(default_factory=set)  # columns with no value in this part
    view: str = ""
    prepared: str = ""
    undecided: list[str] = field(default_factory=list)  # columns inference typed (in ``prepared``)

    def fails(self) -> dict[str, str]:
        return {c: f"({p.clean} IS NOT NULL AND {p.expr} IS NULL)" for c, p in self.plans.items() if p.failed}


def type_part(con, part: RawPart, tag: str, forced: dict[str, str]) -> TypedPart:
    """Stage ``part`` as a view with ``_source_file``/``_row_number`` and plan its columns."""
    view, prepared = f"{tag}_v", f"{tag}_c"
    number = "" if part.numbered else ", rowid + 1 AS _row_number"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {ident(view)} AS SELECT *, {literal(part.display)} AS "
                f"_source_file{number} FROM {ident(part.table)}")
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {ident(view)}").fetchall()}
    columns = [c for c in types if c not in INTERNAL]
    plans = settled_plans(types, columns, {} if forced else part.decided)
    undecided = [c for c in columns if c not in plans]
    typed = TypedPart(part, ident(view), columns, plans, view=view)
    if undecided:
        prepare(con, view, prepared, undecided)
        typed.source, typed.prepared = ident(prepared), prepared
        typed.plans |= plan_columns(con, prepared, undecided, part.european, forced)
        typed.undecided = undecided
    return typed


def _family(kind: str) -> str:
    return "number" if kind in _NUMERIC else "time" if kind in _TEMPORAL else kind


def _joined(dtypes: list[str]) -> str | None:
    """The type holding every value of ``dtypes`` as it is, or None when they disagree."""
    kinds = set(dtypes)
    if len(kinds) == 1:
        return dtypes[0]
    ints = {"BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT"}
    if kinds <= ints:
        return "BIGINT"
    if kinds <= ints | {"DOUBLE", "FLOAT", "REAL"} or all(k in ints or k in ("DOUBLE", "FLOAT", "REAL")
                                                          or k.startswith("DECIMAL") for k in kinds):
        return "DOUBLE"
    if kinds <= {"DATE", "TIMESTAMP"}:
        return "TIMESTAMP"
    return None


def find_empty(con, typed: list[TypedPart]) -> None:
    """Count the values of the columns inference did not count: a column with none takes any type
    in the union; a typed source's values all count as parsed when values are pooled."""
    for t in typed:
        unknown = [c for c, p in t.plans.items() if p.nonnull < 0]
        if unknown:
            row = con.execute("SELECT " + ", ".join(f"count({t.plans[c].expr})" for c in unknown)
                              + f" FROM {t.source}").fetchall()[0]
            for col, n in zip(unknown, row):
                plan = t.plans[col]
                plan.nonnull = n
                if plan.kind != "text":
                    plan.ok = n
        t.empty |= {c for c, p in t.plans.items() if p.nonnull == 0}


def reconcile(con, typed: list[TypedPart], forced: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Per column: the union's type and its interpretation. Parts are re-planned in place where a
    column stayed text in them but the pooled values reach the threshold (module docstring, 3)."""
    columns: list[str] = []
    for t in typed:
        columns += [c for c in t.columns if c not in columns]
    if len(typed) > 1:
        find_empty(con, typed)
    out: dict[str, tuple[str, str]] = {}
    for col in columns:
        holders = [t for t in typed if col in t.plans and col not in t.empty]
        if not holders:
            out[col] = ("VARCHAR", "no values")
            continue
        _pool(con, col, holders, forced)
        target = _joined([t.plans[col].dtype for t in holders])
        labels = sorted({t.plans[col].interpretation for t in holders})
        if target is None:
            for t in holders:  # the files disagree: every value as written
                _as_text(t, col)
            said = "; ".join(f"{t.part.display}: {t.plans[col].interpretation}" for t in holders[:5])
            out[col] = ("VARCHAR", f"text (the files read differently: {said})")
        else:
            out[col] = (target, labels[0] if len(labels) == 1 else "per file: " + "; ".join(
                f"{t.part.display}: {t.plans[col].interpretation}" for t in holders[:5]))
    return out


def _pool(con, col: str, holders: list[TypedPart], forced: dict[str, str]) -> None:
    typed_kinds = {_family(t.plans[col].kind) for t in holders if t.plans[col].kind != "text"}
    if len(typed_kinds) != 1 or col in forced:
        return
    lagging = [t for t in holders if t.plans[col].kind == "text" and t.plans[col].best_kind
               and _family(t.plans[col].best_kind) in typed_kinds and t.plans[col].nonnull > 0]
    if not lagging:
        return
    counted = [t.plans[col] for t in holders if t.plans[col].nonnull > 0 and t.plans[col].ok >= 0]
    nonnull = sum(p.nonnull for p in counted)
    ok = sum(p.ok for p in counted)
    if not nonnull or ok / nonnull < MIN_SHARE:
        return
    kind = typed_kinds.pop()
    for t in lagging:
        replanned = plan_columns(con, t.prepared, t.undecided, t.part.european,
                                 {col: "decimal" if kind == "number" else "timestamp"})
        plan = replanned[col]
        plan.interpretation += " (read like the other files: their values together reach the threshold)"
        t.plans[col] = plan


def _as_text(t: TypedPart, col: str) -> None:
    plan = t.plans[col]
    if plan.kind == "text":
        return
    expr = plan.clean if plan.clean else f"CAST({ident(col)} AS VARCHAR)"
    t.plans[col] = Plan(col, "VARCHAR", "text", expr, plan.interpretation, clean=plan.clean)


def select(t: TypedPart, columns: list[str], targets: dict[str, tuple[str, str]]) -> str:
    """The part's rows as the union's columns and types, failing rows left out."""
    items = []
    for col in columns:
        dtype = targets[col][0]
        if col in t.plans and col not in t.empty:
            expr = t.plans[col].expr
            items.append(f"CAST({expr} AS {dtype}) AS {ident(col)}" if t.plans[col].dtype != dtype
                         else f"{expr} AS {ident(col)}")
        else:
            items.append(f"CAST(NULL AS {dtype}) AS {ident(col)}")
    fails = " OR ".join(t.fails().values()) or "false"
    return (f"SELECT {', '.join([*items, *map(ident, INTERNAL)])} FROM {t.source} WHERE NOT ({fails})")


def drop(con, typed: list[TypedPart]) -> None:
    for t in typed:
        if t.prepared:
            release(con, t.prepared)
        con.execute(f"DROP VIEW IF EXISTS {ident(t.view)}")
