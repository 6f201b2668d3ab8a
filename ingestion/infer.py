"""Type inference for text columns, decided from the whole column, and the SQL that applies it.

For every text column:

1. Values are trimmed; empty strings and null tokens (``NA``, ``N/A``, ``null``, ``-``, ``?``...)
   read as missing.
2. A sample of values proposes candidate interpretations: boolean words, integers, decimals with a
   dot or with a comma (``1.234,56``), currency and percent strings, ISO dates and timestamps,
   day-first dotted dates, slashed dates either way round, month names, epoch seconds or millis
   (only in columns whose name says time).
3. One scan of the whole column counts how many values each candidate parses. The candidate that
   parses the most wins; ties go to the narrower type, and between day-first and month-first (or
   decimal comma and dot) to the file's dialect (a ``;``-separated file is European), else to
   month-first and dot, and the interpretation says the column was ambiguous.
4. A type is chosen only when at least :data:`MIN_SHARE` of the values parse; the rows whose value
   does not parse are quarantined with the column, the value and the reason. Otherwise the column
   stays text. Integers with leading zeros (ids, postal codes) stay text.

Percent strings are divided by 100; ``(12.50)`` is read as -12.50; currency symbols and codes are
dropped (the interpretation names them). Timestamps with an offset or ``Z`` become UTC
``TIMESTAMPTZ``; naive ones stay ``TIMESTAMP``; timestamps that are all midnight become ``DATE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gristmill.sql import ident, literal

MIN_SHARE = 0.98
SAMPLE = 2000
# Expressions over at most this many columns go in one statement; wider tables are worked through
# in batches (DuckDB's time and memory for one statement grow faster than its width).
BATCH = 100
NULL_TOKENS = ("", "na", "n/a", "nan", "null", "none", "nil", "-", "--", "?", "#n/a", "(null)",
               "missing", "n.a.", "k.a.", "#null!", "#value!")
TRUE_WORDS = ("true", "yes", "y", "t", "ja", "j", "oui", "si", "on", "wahr")
FALSE_WORDS = ("false", "no", "n", "f", "nein", "non", "off", "falsch")
_TIME_NAME = re.compile(r"(time|date|_at$|^at_|_ts$|^ts_|^ts$|epoch|created|updated|modified|"
                        r"timestamp|_on$|datum|zeit)", re.I)

_CUR = r"(?:[€$£¥₹]|EUR|USD|GBP|CHF|JPY|CAD|AUD|SEK|NOK|DKK|PLN)"
_INT_PART = r"(0|[1-9][0-9]{{0,2}}({t}[0-9]{{3}})+|[1-9][0-9]*)"
_DOT_NUM = r"[+-]?(" + _INT_PART.format(t="[,'\u00a0\u202f ]") + r"(\.[0-9]+)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
_COMMA_NUM = r"[+-]?(" + _INT_PART.format(t="[.'\u00a0\u202f ]") + r"(,[0-9]+)?|,[0-9]+)"
_INT = r"[+-]?(0|[1-9][0-9]*)"

_PY = {
    "boolean": re.compile(r"^(" + "|".join(TRUE_WORDS + FALSE_WORDS + ("1", "0")) + r")$", re.I),
    "integer": re.compile(r"^[+-]?\d+$"),
    "number": re.compile(r"^\(?[+-]?\s*" + _CUR + r"?\s*[+-]?[\d.,'\u00a0\u202f ]*\d[\d.,'\u00a0\u202f ]*"
                         r"([eE][+-]?\d+)?\s*(" + _CUR + r"|%)?\)?$"),
    "iso": re.compile(r"^\d{4}-\d{1,2}-\d{1,2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?|UTC)?$"),
    "dots": re.compile(r"^\d{1,2}\.\d{1,2}\.\d{2,4}(\s+\d{1,2}:\d{2}(:\d{2})?)?$"),
    "slashes": re.compile(r"^\d{1,2}/\d{1,2}/\d{2,4}(\s+\d{1,2}:\d{2}(:\d{2})?(\s*[AaPp][Mm])?)?$"),
    "ymd_slashes": re.compile(r"^\d{4}/\d{1,2}/\d{1,2}(\s+\d{1,2}:\d{2}(:\d{2})?)?$"),
    "dashes": re.compile(r"^\d{1,2}-\d{1,2}-\d{4}(\s+\d{1,2}:\d{2}(:\d{2})?)?$"),
    "month_names": re.compile(r"^(\w{3},\s*)?(\d{1,2}[ -][A-Za-z]{3,9}[ -]\d{2,4}|[A-Za-z]{3,9}\.? \d{1,2},? \d{4})"
                              r"(\s+\d{1,2}:\d{2}(:\d{2})?)?$"),
    "epoch": re.compile(r"^\d{9,10}$|^\d{12,13}$"),
    "compact_date": re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$"),
}
_TZ = re.compile(r"\d:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?|UTC)$")
_TIMES = ["", " %H:%M", " %H:%M:%S", " %H:%M:%S.%f"]


@dataclass
class Candidate:
    """One way to read a column: ``sql`` turns the cleaned value ``{v}`` into a typed value."""

    kind: str  # text, integer, decimal, boolean, date, timestamp
    sql: str
    rank: int
    label: str
    dtype: str = ""
    extra: dict = field(default_factory=dict)

    def expr(self, value: str) -> str:
        return self.sql.replace("{v}", value)


@dataclass
class Plan:
    """How one column is written: its DuckDB type and the SQL producing it from the raw text."""

    column: str
    dtype: str
    kind: str
    expr: str
    interpretation: str = ""
    failed: int = 0  # values that do not parse: their rows are quarantined
    clean: str = ""
    share: float = 1.0
    nonnull: int = -1  # values counted (-1: not counted, e.g. typed in the source)
    ok: int = -1  # of them, values the best reading parses (also when the column stayed text)
    best_kind: str = ""  # the best reading's kind, also when below the threshold


def cleaned(column: str) -> str:
    """SQL: the trimmed value of ``column``, NULL for empty strings and null tokens."""
    col = ident(column)
    tokens = ", ".join(literal(t) for t in NULL_TOKENS)
    # guards keep the common case (a short or untrimmed-free value) off the slow string functions:
    # a value whose first character is ASCII, no space (the only ASCII character trim() removes)
    # and no token's first letter, and whose last is no space, is kept as it is (13 M short values:
    # 1.7 s -> 0.5 s)
    firsts = sorted({ord(c) for t in NULL_TOKENS if t for c in (t[0].lower(), t[0].upper())} | {32})
    return (f"(CASE WHEN ascii({col}) BETWEEN 1 AND 127 AND ascii({col}) NOT IN "
            f"({', '.join(map(str, firsts))}) AND NOT ends_with({col}, ' ') THEN {col} "
            f"WHEN strlen({col}) <= 12 AND lower(trim({col})) IN ({tokens}) THEN NULL "
            f"WHEN starts_with({col}, ' ') OR ends_with({col}, ' ') THEN trim({col}) ELSE {col} END)")


def _strptime(formats: list[str]) -> str:
    return "try_strptime({v}, [" + ", ".join(literal(f) for f in formats) + "])"


def _number_sql(decimal: str) -> str:
    """SQL reading a number with decimal ``decimal`` ('.' or ','), currency, percent, (negatives).

    Plain numbers (``-12``, ``3.5``) take a fast path: one simple pattern and a cast; only the
    others go through the currency, percent and thousands handling."""
    simple = r"[+-]?(0|[1-9][0-9]*)(" + re.escape(decimal) + r"[0-9]+)?"
    fast = "TRY_CAST({v} AS DOUBLE)" if decimal == "." else "TRY_CAST(replace({v}, ',', '.') AS DOUBLE)"
    return (f"(CASE WHEN regexp_full_match({{v}}, {literal(simple)}) THEN {fast} "
            f"ELSE {_number_slow_sql(decimal)} END)")


_PARTS = (r"^(\()?\s*([+-]?)\s*" + _CUR + r"?\s*(.*?)\s*" + _CUR + r"?\s*(%)?\s*(\))?$")


def _number_slow_sql(decimal: str) -> str:
    """One regex splits ``(``, the sign, currency, the number, ``%`` and ``)``; a lambda binds its
    result (under a name no snake_case column can have) so that it runs once per value. The number
    must then match the convention's pattern."""
    pattern = _DOT_NUM if decimal == "." else _COMMA_NUM
    thousands = ",'\u00a0\u202f " if decimal == "." else ".'\u00a0\u202f "
    digits = f"translate(__gm.num, {literal(thousands)}, '')"
    if decimal == ",":
        digits = f"replace({digits}, ',', '.')"
    body = (f"CASE WHEN __gm.open = (CASE WHEN __gm.close = ')' THEN '(' ELSE '' END) "
            f"AND regexp_full_match(__gm.num, {literal(pattern)}) THEN TRY_CAST({digits} AS DOUBLE) "
            "* (CASE WHEN __gm.sign = '-' OR __gm.open = '(' THEN -1 ELSE 1 END) "
            "* (CASE WHEN __gm.pct = '%' THEN 0.01 ELSE 1 END) END")
    parts = f"regexp_extract({{v}}, {literal(_PARTS)}, ['open', 'sign', 'num', 'pct', 'close'])"
    return f"list_transform([{parts}], lambda __gm: {body})[1]"


def _fraction_sql(decimal: str) -> str:
    """SQL: the value may have a fractional part (a decimal mark, a percent sign, an exponent)."""
    marks = f"contains({{v}}, {literal(decimal)}) OR contains({{v}}, '%')"
    return marks + (" OR contains(lower({v}), 'e')" if decimal == "." else "")


def candidates(name: str, sample: list[str], european: bool) -> list[Candidate]:
    """Interpretations worth counting over the whole column, from a sample of its values."""
    if not sample:
        return []
    share = {k: sum(1 for v in sample if rx.match(v)) / len(sample) for k, rx in _PY.items()}
    dates = sum(1 for v in sample if _PY["dots"].match(v) or _PY["slashes"].match(v)) / len(sample)
    share["number"] = max(0.0, share["number"] - dates)  # 01.02.2024 is a date, not a number
    out: list[Candidate] = []
    if share["boolean"] >= 0.5 and any(v.lower() in TRUE_WORDS + FALSE_WORDS for v in sample):
        truthy = ", ".join(literal(w) for w in TRUE_WORDS + ("1",))
        falsy = ", ".join(literal(w) for w in FALSE_WORDS + ("0",))
        out.append(Candidate("boolean", f"(CASE WHEN lower({{v}}) IN ({truthy}) THEN true "
                                        f"WHEN lower({{v}}) IN ({falsy}) THEN false END)", 0,
                             "yes/no words read as booleans", "BOOLEAN"))
    if share["integer"] >= 0.5:
        out.append(Candidate("integer", f"(CASE WHEN regexp_full_match({{v}}, {literal(_INT)}) "
                                        "THEN TRY_CAST({v} AS BIGINT) END)", 1, "integers", "BIGINT"))
    if share["number"] >= 0.5:
        dot_rank, comma_rank = (3, 2) if european else (2, 3)
        out.append(Candidate("decimal", _number_sql("."), dot_rank, "numbers with a decimal point",
                             "DOUBLE", {"fraction": _fraction_sql(".")}))
        if any("," in v for v in sample):
            out.append(Candidate("decimal", _number_sql(","), comma_rank,
                                 "numbers with a decimal comma (1.234,56)", "DOUBLE",
                                 {"fraction": _fraction_sql(",")}))
    if share["iso"] >= 0.5:
        tz = any(_TZ.search(v) for v in sample if _PY["iso"].match(v))
        cast = "TIMESTAMPTZ" if tz else "TIMESTAMP"
        out.append(Candidate("timestamp", f"TRY_CAST({{v}} AS {cast})", 4,
                             "ISO 8601 timestamps" + (" with offsets, stored in UTC" if tz else ""),
                             cast))
    if share["dots"] >= 0.5:
        formats = [f"%d.%m.%Y{t}" for t in _TIMES] + ["%d.%m.%y", "%d.%m.%y %H:%M"]
        out.append(Candidate("timestamp", _strptime(formats), 4, "day-first dates (dd.mm.yyyy)",
                             "TIMESTAMP"))
    if share["slashes"] >= 0.5:
        times = _TIMES + [" %I:%M %p", " %I:%M:%S %p"]
        day = [f"%d/%m/%Y{t}" for t in times] + ["%d/%m/%y"]
        month = [f"%m/%d/%Y{t}" for t in times] + ["%m/%d/%y"]
        day_rank, month_rank = (4, 5) if european else (5, 4)
        out.append(Candidate("timestamp", _strptime(day), day_rank, "day-first dates (dd/mm/yyyy)",
                             "TIMESTAMP"))
        out.append(Candidate("timestamp", _strptime(month), month_rank,
                             "month-first dates (mm/dd/yyyy)", "TIMESTAMP"))
    if share["ymd_slashes"] >= 0.5:
        out.append(Candidate("timestamp", _strptime([f"%Y/%m/%d{t}" for t in _TIMES]), 4,
                             "dates as yyyy/mm/dd", "TIMESTAMP"))
    if share["dashes"] >= 0.5:
        day_rank, month_rank = (4, 5) if european else (5, 4)
        out.append(Candidate("timestamp", _strptime([f"%d-%m-%Y{t}" for t in _TIMES]), day_rank,
                             "day-first dates (dd-mm-yyyy)", "TIMESTAMP"))
        out.append(Candidate("timestamp", _strptime([f"%m-%d-%Y{t}" for t in _TIMES]), month_rank,
                             "month-first dates (mm-dd-yyyy)", "TIMESTAMP"))
    if share["month_names"] >= 0.5:
        formats = ["%d %b %Y", "%d-%b-%Y", "%d %B %Y", "%d-%B-%Y", "%b %d, %Y", "%B %d, %Y", "%b %d %Y",
                   "%B %d %Y", "%d-%b-%y", "%a, %d %b %Y %H:%M:%S", "%d %b %Y %H:%M", "%d %b %Y %H:%M:%S"]
        out.append(Candidate("timestamp", _strptime(formats), 4, "dates with month names",
                             "TIMESTAMP"))
    if _TIME_NAME.search(name) and share["epoch"] >= 0.5:
        seconds = ("(CASE WHEN regexp_full_match({v}, '[0-9]{9,10}') AND TRY_CAST({v} AS BIGINT) "
                   "BETWEEN 631152000 AND 4102444800 THEN make_timestamp(TRY_CAST({v} AS BIGINT) * 1000000) END)")
        millis = ("(CASE WHEN regexp_full_match({v}, '[0-9]{12,13}') AND TRY_CAST({v} AS BIGINT) "
                  "BETWEEN 631152000000 AND 4102444800000 THEN make_timestamp(TRY_CAST({v} AS BIGINT) * 1000) END)")
        out.append(Candidate("timestamp", seconds, 0, "epoch seconds (UTC)", "TIMESTAMP"))
        out.append(Candidate("timestamp", millis, 0, "epoch milliseconds (UTC)", "TIMESTAMP"))
    if _TIME_NAME.search(name) and share["compact_date"] >= 0.5:
        out.append(Candidate("timestamp", _strptime(["%Y%m%d"]), 0, "dates as yyyymmdd", "TIMESTAMP"))
    return out


FORCED = {"integer": {"integer", "decimal"}, "decimal": {"decimal", "integer"}, "boolean": {"boolean"},
          "date": {"timestamp"}, "timestamp": {"timestamp"}}


def value_alias(index: int) -> str:
    """Name of the cleaned value of the ``index``-th column in a :func:`prepare` d table."""
    return ident(f"__v{index}")


def prepare(con, relation: str, target: str, columns: list[str]) -> None:
    """Materialize ``relation`` as temp table ``target`` with the cleaned value of every text
    column beside it (``__v<i>``): cleaning once is cheaper than in every later scan."""
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {ident(relation)}").fetchall()}
    extra = [f"{cleaned(c)} AS {value_alias(i)}" for i, c in enumerate(columns) if types[c] == "VARCHAR"]
    if len(extra) <= BATCH:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(target)} AS "
                    f"SELECT *{', ' if extra else ''}{', '.join(extra)} FROM {ident(relation)}")
        return
    # wide: the cleaned values BATCH columns at a time, each batch a table in the relation's order,
    # and ``target`` a view putting them beside it by position. One statement over every column
    # grows super-linearly, and one table of them all needs a storage block per column and thread
    # (2,000 columns of 1,000 rows ran out of memory).
    pieces = [f"{target}__b{n}" for n in range(0, len(extra), BATCH)]
    for n, piece in zip(range(0, len(extra), BATCH), pieces):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(piece)} AS "
                    f"SELECT {', '.join(extra[n:n + BATCH])} FROM {ident(relation)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {ident(target)} AS SELECT * FROM {ident(relation)} "
                + " ".join(f"POSITIONAL JOIN {ident(p)}" for p in pieces))


def release(con, target: str) -> None:
    """Drop what :func:`prepare` made as ``target`` (a table, or a view and its batches)."""
    made = con.execute("SELECT view_name, 'VIEW' FROM duckdb_views() WHERE view_name = ? UNION ALL "
                       "SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE table_name = ? "
                       "OR starts_with(table_name, ?) ORDER BY 2 DESC",
                       [target, target, target + "__b"]).fetchall()
    for name, kind in made:
        con.execute(f"DROP {kind} IF EXISTS {ident(name)}")


def batches(items: list, size: int | None = None) -> list[list]:
    """``items`` in runs of at most ``size`` (:data:`BATCH`): statements of bounded width."""
    size = size or BATCH
    return [items[n:n + size] for n in range(0, len(items), size)]


def settled_plans(types: dict[str, str], columns: list[str], decided: dict[str, str]) -> dict[str, Plan]:
    """Plans of the columns that need no inference: typed ones, and text ones already known to be
    text (``decided``: column -> interpretation). Other text columns are left out."""
    plans = {}
    for col in columns:
        dtype = types[col]
        if dtype == "VARCHAR" and col not in decided:
            continue
        if dtype == "VARCHAR":
            plans[col] = Plan(col, "VARCHAR", "text", cleaned(col), decided[col] or "text")
        elif dtype == '"NULL"':
            plans[col] = Plan(col, "VARCHAR", "text", f"CAST({ident(col)} AS VARCHAR)", "no values")
        else:
            plans[col] = Plan(col, dtype, _kind_of(dtype), ident(col), decided.get(col, "typed in the source"))
    return plans


def decide_on_sample(con, table: str, columns: list[str], rows: int = 20_000) -> dict[str, str]:
    """Text columns of ``table`` whose first ``rows`` values read as text, with the reason.

    Used for large typed sources: a text column stays text (nothing is lost), so only the columns
    whose sample reads as numbers or dates go through whole-column inference."""
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {ident(table)}").fetchall()}
    text = [c for c in columns if types.get(c) == "VARCHAR"]
    if not text:
        return {}
    sample, clean = f"{table}_sample", f"{table}_sample_clean"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(sample)} AS SELECT "
                f"{', '.join(ident(c) for c in text)} FROM {ident(table)} LIMIT {rows}")
    try:
        prepare(con, sample, clean, text)
        plans = plan_columns(con, clean, text, False)
    finally:
        release(con, clean)
        con.execute(f"DROP TABLE IF EXISTS {ident(sample)}")
    return {c: p.interpretation for c, p in plans.items() if p.kind == "text"}


def plan_columns(con, table: str, columns: list[str], european: bool,
                 forced: dict[str, str] | None = None) -> dict[str, Plan]:
    """Choose a type for every column of ``table``, made by :func:`prepare` (typed columns keep
    their type). A plan's ``expr`` and ``clean`` refer to the columns of that table."""
    forced = forced or {}
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {ident(table)}").fetchall()}
    source = ident(table)
    plans: dict[str, Plan] = {}
    counted: dict[str, list[Candidate]] = {}
    samples = _samples(con, source, {value_alias(i): c for i, c in enumerate(columns)
                                     if types[c] == "VARCHAR" and forced.get(c) != "text"})
    for index, col in enumerate(columns):
        dtype = types[col]
        if dtype == '"NULL"':
            plans[col] = Plan(col, "VARCHAR", "text", f"CAST({ident(col)} AS VARCHAR)", "no values")
            continue
        if dtype != "VARCHAR":
            plans[col] = Plan(col, dtype, _kind_of(dtype), ident(col), "typed in the source")
            continue
        clean = value_alias(index)
        text = Plan(col, "VARCHAR", "text", clean, "text", clean=clean)
        plans[col] = text
        if forced.get(col) == "text":
            text.interpretation = "text (forced by the source's types)"
            continue
        sample = samples[clean]
        found = candidates(col, sample, european)
        if col in forced:
            found = [c for c in found if c.kind in FORCED[forced[col]]] or _fallback(forced[col])
        elif len(found) > 1:
            found = _promising(con, found, sample)
        if found:
            counted[col] = found
    if not counted:
        return plans
    selects = []
    for col, found in counted.items():
        v = plans[col].clean
        selects.append(f"count({v})")
        for cand in found:
            selects.append(f"count({cand.expr(v)})")
            if cand.kind == "decimal":
                # values that keep the column from being whole numbers: a fraction, or beyond BIGINT
                selects.append(f"count(*) FILTER (WHERE {cand.expr(v)} IS NOT NULL AND "
                               f"({cand.extra['fraction'].replace('{v}', v)}))")
                selects.append(f"count(*) FILTER (WHERE abs({cand.expr(v)}) >= 9.2e18)")
            elif cand.kind == "timestamp":
                selects.append(f"count(*) FILTER (WHERE CAST(CAST({cand.expr(v)} AS TIMESTAMP) AS TIME) "
                               "<> TIME '00:00:00')")
    row = ()
    for batch in batches(selects, 4 * BATCH):
        row += con.execute(f"SELECT {', '.join(batch)} FROM {source}").fetchall()[0]
    pos = 0
    for col, found in counted.items():
        nonnull = row[pos]
        pos += 1
        scored = []
        for cand in found:
            width = {"decimal": 3, "timestamp": 2}.get(cand.kind, 1)
            ok, extra = row[pos], row[pos + 1: pos + width]
            pos += width
            scored.append((ok, -cand.rank, cand, extra))
        plans[col].nonnull = nonnull
        if not nonnull:
            continue
        scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
        ok, _, best, extra = scored[0]
        plans[col].ok, plans[col].best_kind = ok, best.kind
        if ok / nonnull < MIN_SHARE and col not in forced:
            shown = f"{ok / nonnull:.1%}"
            plans[col].interpretation = (f"text ({best.label} fit only {shown} of the values; "
                                         f"{MIN_SHARE:.0%} needed)")
            continue
        ties = [s for s in scored[1:] if s[0] == ok and s[2].kind == best.kind and s[2].label != best.label]
        plans[col] = _plan(col, best, extra, plans[col].clean, ok / nonnull, ties)
        plans[col].nonnull, plans[col].ok, plans[col].best_kind = nonnull, ok, best.kind
        if plans[col].kind != "text":
            plans[col].failed = nonnull - ok
    return plans


def _samples(con, source: str, cleans: dict[str, str]) -> dict[str, list[str]]:
    """The first :data:`SAMPLE` values (not NULL) of each cleaned column in ``cleans``.

    Read :data:`BATCH` columns at a time from the first :data:`SAMPLE` rows (a query per column
    costs time in proportion to the table's width: quadratic over a wide table); only a column
    with missing values there, in a longer table, is read on its own further down."""
    if not cleans:
        return {}
    total = con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0]
    out: dict[str, list[str]] = {}
    for batch in batches(list(cleans)):
        rows = con.execute(f"SELECT {', '.join(batch)} FROM {source} LIMIT {SAMPLE}").fetchall()
        for j, clean in enumerate(batch):
            values = [r[j] for r in rows if r[j] is not None]
            if len(values) < SAMPLE and total > len(rows):
                values = [r[0] for r in con.execute(
                    f"SELECT {clean} FROM {source} WHERE {clean} IS NOT NULL LIMIT {SAMPLE}").fetchall()]
            out[clean] = values
    return out


def _promising(con, found: list[Candidate], sample: list[str]) -> list[Candidate]:
    """The candidates worth a whole-column count: those reading at least half the sample (the
    best one at least, so the schema record can say how far it got)."""
    counts = con.execute("SELECT " + ", ".join(f"count({c.expr('v')})" for c in found)
                         + " FROM (SELECT unnest(?::VARCHAR[]) AS v)", [sample]).fetchall()[0]
    kept = [c for c, n in zip(found, counts) if n >= len(sample) / 2]
    return kept or [found[counts.index(max(counts))]]


def _fallback(kind: str) -> list[Candidate]:
    if kind in ("integer", "decimal"):
        return [Candidate("decimal", _number_sql("."), 2, "numbers with a decimal point", "DOUBLE",
                          {"fraction": _fraction_sql(".")})]
    if kind == "boolean":
        return candidates("", ["yes"], False)
    return [Candidate("timestamp", "TRY_CAST({v} AS TIMESTAMP)", 4, "ISO 8601 timestamps", "TIMESTAMP")]


def _plan(col: str, best: Candidate, extra: tuple, clean: str, share: float, ties: list) -> Plan:
    expr = best.expr(clean)
    dtype, kind, label = best.dtype, best.kind, best.label
    if kind == "decimal" and extra[0] == 0:
        if extra[1]:  # whole numbers beyond 64 bits: ids or codes; a double would round them
            return Plan(col, "VARCHAR", "text", clean, "text (whole numbers too large for 64-bit "
                        "integers, kept exactly as written)", clean=clean)
        expr, dtype, kind = f"CAST({expr} AS BIGINT)", "BIGINT", "integer"
        label += " (all whole: stored as integers)"
    if kind == "timestamp" and extra[0] == 0 and dtype == "TIMESTAMP":
        expr, dtype, kind = f"CAST({expr} AS DATE)", "DATE", "date"
    if ties:
        label += f"; ambiguous: every value also reads as {ties[0][2].label}"
    return Plan(col, dtype, kind, expr, label, clean=clean, share=share)


def _kind_of(dtype: str) -> str:
    if dtype in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT",
                 "UTINYINT"):
        return "integer"
    if dtype in ("DOUBLE", "FLOAT", "REAL") or dtype.startswith("DECIMAL"):
        return "decimal"
    if dtype == "BOOLEAN":
        return "boolean"
    if dtype == "DATE":
        return "date"
    if dtype.startswith("TIMESTAMP"):
        return "timestamp"
    return "text" if dtype == "VARCHAR" else dtype.lower()
