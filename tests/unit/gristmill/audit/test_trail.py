"""The audit trail's hash chain: an edited, removed, reordered or truncated record is named."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa


@pytest.fixture
def md(workspace):
    from gristmill.audit import trail
    from gristmill.config import metadata

    md = metadata(workspace)
    for i in range(5):
        trail.append(md, f"user{i}", "models.promote", "shop", {"before": i, "after": i + 1})
    return md


def _rows(md):
    from gristmill.metadata.db import audit

    with md.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(audit).order_by(audit.c.seq))]


def test_an_intact_chain_verifies(md):
    from gristmill.audit import trail

    assert trail.verify(md) == {"ok": True, "records": 5, "problem": None}


@pytest.mark.parametrize("column,value", [("actor", "mallory"), ("detail", json.dumps({"after": 99})),
                                          ("result", "ok "), ("at", "2020-01-01T00:00:00")])
def test_an_edited_record_is_named(md, column, value):
    from gristmill.audit import trail
    from gristmill.metadata.db import audit

    with md.engine.begin() as conn:
        conn.execute(audit.update().where(audit.c.seq == 3).values(**{column: value}))
    found = trail.verify(md)
    assert not found["ok"] and found["problem"]["seq"] == 3 and "edited" in found["problem"]["reason"]


def test_a_removed_record_is_named(md):
    from gristmill.audit import trail
    from gristmill.metadata.db import audit

    with md.engine.begin() as conn:
        conn.execute(audit.delete().where(audit.c.seq == 2))
    found = trail.verify(md)
    assert not found["ok"] and found["problem"]["seq"] == 2 and "missing" in found["problem"]["reason"]


def test_a_removed_last_record_is_found_by_the_head(md):
    from gristmill.audit import trail
    from gristmill.metadata.db import audit

    with md.engine.begin() as conn:
        conn.execute(audit.delete().where(audit.c.seq == 5))
    found = trail.verify(md)
    assert not found["ok"] and found["problem"]["seq"] == 5 and "removed" in found["problem"]["reason"]


def test_swapped_records_are_named(md):
    """Swap the contents of records 2 and 4 (each keeps its own hash): both no longer chain."""
    from gristmill.audit import trail
    from gristmill.metadata.db import audit

    rows = {r["seq"]: r for r in _rows(md)}
    with md.engine.begin() as conn:
        for seq, other in ((2, 4), (4, 2)):
            values = {k: v for k, v in rows[other].items() if k != "seq"}
            conn.execute(audit.update().where(audit.c.seq == seq).values(**values))
    found = trail.verify(md)
    assert not found["ok"] and found["problem"]["seq"] == 2 and "reordered" in found["problem"]["reason"]


def test_a_rewritten_record_with_a_fresh_hash_breaks_the_next_link(md):
    """An editor who recomputes the edited record's hash still breaks its successor's link."""
    from gristmill.audit import trail
    from gristmill.metadata.db import audit

    row = _rows(md)[2]
    row["actor"] = "mallory"
    row["hash"] = trail._digest(row)
    with md.engine.begin() as conn:
        conn.execute(audit.update().where(audit.c.seq == 3).values(actor="mallory", hash=row["hash"]))
    found = trail.verify(md)
    assert not found["ok"] and found["problem"]["seq"] == 4


def test_the_cli_verify_fails_in_one_line_naming_the_record(md, workspace):
    from typer.testing import CliRunner

    from gristmill.cli import app
    from gristmill.metadata.db import audit

    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "5 records" in ok.output
    with md.engine.begin() as conn:
        conn.execute(audit.update().where(audit.c.seq == 4).values(actor="mallory"))
    from gristmill.cli import main  # noqa: F401  (main prints the one line; CliRunner sees the error)

    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code != 0 and "record 4" in str(broken.exception)
