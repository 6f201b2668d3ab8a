"""Type inference from whole columns: numbers, currency, percent, booleans, dates, epochs, nulls."""

from __future__ import annotations

import datetime as dt

import pytest

from ingestion import SourceSpec


def _csv(header: list[str], rows: list[list[str]], delim: str = ",") -> str:
    def cell(v: str) -> str:
        return f'"{v}"' if delim in v else v

    return "\n".join(delim.join(map(cell, r)) for r in [header, *rows]) + "\n"


def test_decimal_comma_with_thousands_and_euro(make_files, ingest_run, sql, schema):
    rows = [[str(i), f"Kunde {i}", f"1.234,5{i}", f"€ 12,5{i}"] for i in range(10)]
    report = ingest_run(make_files({"eu.csv": _csv(["id", "kunde", "betrag", "preis"], rows, ";")}))
    assert report.tables[0].columns == {"id": "BIGINT", "kunde": "VARCHAR", "betrag": "DOUBLE",
                                        "preis": "DOUBLE"}
    assert sql("SELECT betrag, preis FROM p.eu WHERE id = 6") == [(1234.56, 12.56)]
    assert "decimal comma" in schema(report, "eu")["cols"]["betrag"]["interpretation"]


def test_dot_decimals_currency_percent_and_accounting_negatives(make_files, ingest_run, sql):
    rows = [[str(i), f"1,234.5{i}", f"$1,200.0{i}", f"12.{i}%", "(12.50)" if i % 2 else f"{i}.25"]
            for i in range(10)]
    ingest_run(make_files({"us.csv": _csv(["id", "amount", "usd", "rate", "pnl"], rows)}))
    (amount, usd, rate, pnl), = sql("SELECT amount, usd, rate, pnl FROM p.us WHERE id = 5")
    assert (amount, usd, pnl) == (1234.55, 1200.05, -12.5)
    assert rate == pytest.approx(0.125)
    assert sql("SELECT typeof(amount), typeof(usd), typeof(rate), typeof(pnl) FROM p.us LIMIT 1") == [
        ("DOUBLE",) * 4]


def test_boolean_words(make_files, ingest_run, sql):
    rows = [[str(i), "Y" if i % 3 else "N", "Yes" if i % 3 else "No", "true" if i % 3 else "false"]
            for i in range(9)]
    report = ingest_run(make_files({"flags.csv": _csv(["id", "yn", "yes_no", "tf"], rows)}))
    assert report.tables[0].columns == {"id": "BIGINT", "yn": "BOOLEAN", "yes_no": "BOOLEAN", "tf": "BOOLEAN"}
    assert sql("SELECT count(*) FILTER (yn AND yes_no AND tf), count(*) FILTER (NOT (yn OR yes_no OR tf)) "
               "FROM p.flags") == [(6, 3)]


def test_integers_with_leading_zeros_stay_text(make_files, ingest_run, sql):
    rows = [[str(i), f"0{1000 + i}"] for i in range(10)]
    report = ingest_run(make_files({"codes.csv": _csv(["id", "plz"], rows)}))
    assert report.tables[0].columns["plz"] == "VARCHAR"
    assert sql("SELECT plz FROM p.codes WHERE id = 3") == [("01003",)]


def test_iso_dates_and_utc_timestamps(make_files, ingest_run, sql):
    rows = [[str(i), f"2024-01-{i + 10}", f"2024-03-{i + 10}T1{i}:30:00Z"] for i in range(9)]
    rows.append(["9", "2024-02-29", "2024-03-20T10:00:00+02:00"])
    report = ingest_run(make_files({"times.csv": _csv(["id", "day", "seen"], rows)}))
    assert report.tables[0].columns == {"id": "BIGINT", "day": "DATE", "seen": "TIMESTAMP WITH TIME ZONE"}
    assert sql("SELECT day, seen::VARCHAR FROM p.times WHERE id IN (3, 9) ORDER BY id") == [
        (dt.date(2024, 1, 13), "2024-03-13 13:30:00+00"), (dt.date(2024, 2, 29), "2024-03-20 08:00:00+00")]


def test_day_first_dotted_dates(make_files, ingest_run, sql):
    rows = [[str(i), f"{i + 1:02d}.0{i % 9 + 1}.2024"] for i in range(20)]
    report = ingest_run(make_files({"dots.csv": _csv(["id", "datum"], rows)}))
    assert report.tables[0].columns["datum"] == "DATE"
    assert sql("SELECT datum FROM p.dots WHERE id = 12") == [(dt.date(2024, 4, 13),)]


def test_slashed_dates_are_decided_from_the_whole_column(make_files, ingest_run, sql, schema):
    rows = []
    for i in range(1, 601):  # every value reads both ways, except row 500
        day, month = i % 12 + 1, i * 7 % 12 + 1
        dmy = "25/03/2024" if i == 500 else f"{day:02d}/{month:02d}/2024"
        mdy = "03/25/2024" if i == 500 else f"{month:02d}/{day:02d}/2024"
        rows.append([str(i), dmy, mdy])
    report = ingest_run(make_files({"slashes.csv": _csv(["id", "eu_date", "us_date"], rows)}))
    assert report.quarantined_rows == 0
    assert report.tables[0].columns == {"id": "BIGINT", "eu_date": "DATE", "us_date": "DATE"}
    cols = schema(report, "slashes")["cols"]
    assert "day-first" in cols["eu_date"]["interpretation"]
    assert "month-first" in cols["us_date"]["interpretation"]
    assert sql("SELECT eu_date, us_date FROM p.slashes WHERE id IN (1, 500) ORDER BY id") == [
        (dt.date(2024, 8, 2), dt.date(2024, 8, 2)), (dt.date(2024, 3, 25), dt.date(2024, 3, 25))]


def test_epoch_seconds_and_millis_in_time_named_columns(make_files, ingest_run, sql, schema):
    rows = [[str(1_700_000_000 + i), str(1_700_000_000 + i * 3600), str(1_700_000_000_000 + i)]
            for i in range(20)]
    report = ingest_run(make_files({"events.csv": _csv(["user_id", "created_at", "updated_at"], rows)}))
    assert report.tables[0].columns == {"user_id": "BIGINT", "created_at": "TIMESTAMP",
                                        "updated_at": "TIMESTAMP"}
    assert sql("SELECT created_at, updated_at FROM p.events WHERE user_id = 1700000001") == [
        (dt.datetime(2023, 11, 14, 23, 13, 20), dt.datetime(2023, 11, 14, 22, 13, 20, 1000))]
    cols = schema(report, "events")["cols"]
    assert "epoch seconds" in cols["created_at"]["interpretation"]
    assert "epoch milliseconds" in cols["updated_at"]["interpretation"]


def test_one_bad_number_among_100_is_quarantined_with_reason(make_files, ingest_run, sql, schema):
    rows = [[str(i), "12x" if i == 42 else f"{i}.5"] for i in range(100)]
    report = ingest_run(make_files({"m.csv": _csv(["id", "amount"], rows)}))
    t = report.tables[0]
    assert (t.columns["amount"], t.rows, t.quarantined_rows, report.input_rows) == ("DOUBLE", 99, 1, 100)
    (file, row_number, raw, reason), = sql("SELECT file, row_number, raw, reason FROM p._quarantine")
    assert (file, row_number) == ("m.csv", 43)
    assert reason.startswith('amount: "12x" is not a number')
    assert '"id":"42"' in raw
    col = schema(report, "m")["cols"]["amount"]
    assert (col["failed"], col["failed_examples"]) == (1, ["12x"])
    assert sql("SELECT count(*) FROM p.m WHERE id = 42") == [(0,)]


def test_half_non_numeric_column_stays_text(make_files, ingest_run, sql, schema):
    rows = [[str(i), "n/v" if i % 2 else str(i), "abc" if i % 2 else str(i)] for i in range(40)]
    report = ingest_run(make_files({"mixed.csv": _csv(["id", "a", "b"], rows)}))
    assert report.quarantined_rows == 0
    assert report.tables[0].columns["b"] == "VARCHAR"
    assert "fit only 50.0%" in schema(report, "mixed")["cols"]["b"]["interpretation"]
    assert sql("SELECT b FROM p.mixed WHERE id IN (1, 2) ORDER BY id") == [("abc",), ("2",)]


def test_null_tokens_become_null(make_files, ingest_run, sql, schema):
    tokens = ["NA", "N/A", "-", "", "null"]
    rows = [[str(i), tokens[i % 5] if i % 2 else str(i * 10), tokens[i % 5] if i % 2 else "x"]
            for i in range(20)]
    report = ingest_run(make_files({"nulls.csv": _csv(["id", "qty", "label"], rows)}))
    assert report.quarantined_rows == 0
    assert report.tables[0].columns["qty"] == "BIGINT"
    assert sql("SELECT count(qty), count(label), count(*) FROM p.nulls") == [(10, 10, 20)]
    assert schema(report, "nulls")["cols"]["qty"]["nulls"] == 10


def test_big_but_valid_integers_do_not_break_the_run(make_files, ingest_run, sql):
    """Guards against the bug below for values that still fit BIGINT."""
    rows = [[str(i), str(9_000_000_000_000_000_000 + i)] for i in range(20)]
    report = ingest_run(make_files({"ids.csv": _csv(["n", "account"], rows)}))
    assert report.tables[0].columns["account"] == "BIGINT"


def test_integers_beyond_bigint_do_not_crash_the_run(make_files, ingest_run, sql):
    rows = [[str(i), str(12345678901234567890 + i)] for i in range(20)]  # 20 digits > 2**63
    report = ingest_run(make_files({"iban.csv": _csv(["n", "account"], rows)}))
    assert report.tables[0].rows == 20
    assert sql("SELECT account::VARCHAR FROM p.iban WHERE n = 0") == [("12345678901234567890",)]


def test_forced_text_type_keeps_zip_codes(make_files, ingest_run, sql):
    rows = [[str(i), "01234" if i == 7 else str(10000 + i)] for i in range(100)]
    folder = make_files({"addr.csv": _csv(["id", "zip"], rows)})
    inferred = ingest_run(folder)  # 99 of 100 read as integers: the odd one is quarantined
    assert inferred.tables[0].columns["zip"] == "BIGINT" and inferred.quarantined_rows == 1
    report = ingest_run(SourceSpec(path=folder, types={"zip": "text"}))
    t = report.tables[0]
    assert (t.columns["zip"], t.rows, t.quarantined_rows, t.changed) == ("VARCHAR", 100, 0, True)
    assert sql("SELECT zip FROM p.addr WHERE id IN (7, 8) ORDER BY id") == [("01234",), ("10008",)]


def test_columns_named_like_sql_helpers_still_parse_currency(make_files, ingest_run, sql):
    """Regression: a column named ``m`` or ``v`` once shadowed a name used inside the SQL."""
    folder = make_files({"c.csv": "m;v\n" + "".join(f"€ {i},50;{i} %\n" for i in range(1, 21))})
    report = ingest_run(folder)
    assert report.tables[0].columns == {"m": "DOUBLE", "v": "DOUBLE"}
    assert sql("select m, v from p.c where m < 2") == [(1.5, 0.01)]
