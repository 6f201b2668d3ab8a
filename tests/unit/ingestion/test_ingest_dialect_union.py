"""Files of one schema in different dialects: each typed with its own dialect, typed columns unioned."""

from __future__ import annotations

import gzip
import io
import itertools
from datetime import datetime

import pytest

# the truth every dialect writes: (id, when, amount)
ROWS = [(i, datetime(2024, 3, 13 + i % 15, 9 + i % 8, 30), round(1234.5 * i + 0.25, 2)) for i in range(1, 21)]


def _iso(rows):
    return "id,ts,amount\n" + "".join(f"{i},{t:%Y-%m-%dT%H:%M:%S},{a}\n" for i, t, a in rows)


def _us_money(rows):  # month-first dates, $ amounts with thousands separators, quoted
    return "id,ts,amount\n" + "".join(f'{i},{t:%m/%d/%Y %H:%M},"${a:,.2f}"\n' for i, t, a in rows)


def _european(rows):  # ';' with decimal commas, thousands dots and dd.mm.yyyy
    def num(a):
        return f"{a:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
    return "id;ts;amount\n" + "".join(f"{i};{t:%d.%m.%Y %H:%M};{num(a)}\n" for i, t, a in rows)


def _tab_slashes(rows):
    return "id\tts\tamount\n" + "".join(f"{i}\t{t:%Y/%m/%d %H:%M}\t{a:.2f}\n" for i, t, a in rows)


def _parquet(rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"id": [r[0] for r in rows], "ts": pa.array([r[1] for r in rows], pa.timestamp("us")),
                             "amount": [r[2] for r in rows]}), buf)
    return buf.getvalue()


DIALECTS = {"iso.csv": _iso, "money.csv.gz": lambda r: gzip.compress(_us_money(r).encode()),
            "euro.csv": _european, "tabs.tsv": _tab_slashes, "typed.parquet": _parquet}


def _files(names):
    """Monthly files of one dataset, one dialect each: sales_2024_01.csv, sales_2024_02.csv.gz..."""
    return {_name(k, n): DIALECTS[n](ROWS) for k, n in enumerate(names, start=1)}


def _name(k, dialect):
    return f"sales_2024_{k:02d}." + dialect.split(".", 1)[1]


def _check_union(report, sql, names):
    assert len(report.tables) == 1, [t.name for t in report.tables]
    table = report.tables[0]
    assert table.columns == {"id": "BIGINT", "ts": "TIMESTAMP", "amount": "DOUBLE"}
    assert (table.rows, table.quarantined_rows) == (len(ROWS) * len(names), 0)
    got = sql(f"SELECT _source_file, id, ts, amount FROM p.{table.name} ORDER BY 1, 2")
    want = sorted((_name(k, n), i, t, a) for k, n in enumerate(names, start=1) for i, t, a in ROWS)
    assert got == want


def test_four_dialects_union_into_typed_columns(make_files, ingest_run, sql):
    """Regression (issue 16): ISO CSV + gzipped $-amounts + ';' decimal commas + Parquet."""
    names = ["iso.csv", "money.csv.gz", "euro.csv", "typed.parquet"]
    report = ingest_run(make_files(_files(names)))
    _check_union(report, sql, names)


@pytest.mark.parametrize("pair", list(itertools.combinations(sorted(DIALECTS), 2)), ids="+".join)
def test_every_pair_of_dialects_unions_typed(pair, make_files, ingest_run, sql):
    report = ingest_run(make_files(_files(pair)))
    _check_union(report, sql, list(pair))


def test_a_value_one_file_cannot_convert_is_quarantined_with_its_file(make_files, ingest_run, sql, schema):
    euro = _european(ROWS).splitlines()
    euro[5] = "5;17.03.2024 10:30;oops"  # record 5 of euro.csv
    # alone, 19 of 20 (95%) keep the file's column text; with its siblings, 59 of 60 parse
    report = ingest_run(make_files({"sales_2024_01.csv": _iso(ROWS), "sales_2024_02.csv": "\n".join(euro) + "\n",
                                    "sales_2024_03.parquet": _parquet(ROWS)}))
    table = report.tables[0]
    assert table.columns == {"id": "BIGINT", "ts": "TIMESTAMP", "amount": "DOUBLE"}
    assert (table.rows, table.quarantined_rows) == (59, 1)
    (file, line, row, reason), = sql("SELECT file, line, row_number, reason FROM p._quarantine")
    assert (file, line, row) == ("sales_2024_02.csv", 6, 5) and reason.startswith('amount: "oops" is not a number')
    assert "decimal comma" in schema(report, table.name)["cols"]["amount"]["interpretation"]


def test_a_file_with_a_few_odd_values_is_read_like_the_others(make_files, ingest_run, sql):
    """Alone, 1 odd value of 20 keeps a file's column text; pooled with its siblings it is 1 of
    60, so the file is read like them and the odd value quarantined."""
    odd = _iso(ROWS).splitlines()
    odd[3] = "3,2024-03-16T11:30:00,n.v."
    files = {"sales_1.csv": _iso(ROWS), "sales_2.csv": _iso(ROWS), "sales_3.csv": "\n".join(odd) + "\n"}
    report = ingest_run(make_files(files))
    assert report.tables[0].columns["amount"] == "DOUBLE"
    assert sql("SELECT file, row_number FROM p._quarantine ORDER BY 2") == [("sales_3.csv", 3)]


def test_files_that_disagree_keep_every_value_as_written(make_files, ingest_run, sql, schema):
    words = "id,ts,amount\n" + "".join(f"{i},2024-03-01,word {i}\n" for i in range(1, 21))
    report = ingest_run(make_files({"sales_2024_01.csv": _iso(ROWS), "sales_2024_02.csv": words}))
    table = report.tables[0]
    assert table.columns["amount"] == "VARCHAR" and table.quarantined_rows == 0
    assert sql("SELECT amount FROM p.sales WHERE _source_file = 'sales_2024_01.csv' AND id = 1") == [(str(ROWS[0][2]),)]
    assert "the files read differently" in schema(report, "sales")["cols"]["amount"]["interpretation"]


@pytest.mark.parametrize("title_rows, line", [(0, 5), (2, 7)])
def test_a_value_that_does_not_convert_names_its_physical_line(title_rows, line, make_files, ingest_run, sql):
    rows = [f"{i},{i}.5" for i in range(1, 60)]
    rows[3] = "4,oops"  # record 4
    text = "".join(f"Report {k}\n" for k in range(title_rows)) + "id,amount\n" + "\n".join(rows) + "\n"
    ingest_run(make_files({"amounts.csv": text}))
    assert sql("SELECT line, row_number FROM p._quarantine") == [(line, 4)]


def test_with_quoted_fields_the_line_is_left_unknown_rather_than_guessed(make_files, ingest_run, sql):
    rows = [f'{i},"note {i}",{i}.5' for i in range(1, 60)]
    rows[0] = '1,"two\nlines",1.5'
    rows[3] = '4,"x",oops'
    ingest_run(make_files({"notes.csv": "id,note,amount\n" + "\n".join(rows) + "\n"}))
    assert sql("SELECT line, row_number FROM p._quarantine") == [(None, 4)]
