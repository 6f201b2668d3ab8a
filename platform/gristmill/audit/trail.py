"""The audit trail: one record per action that changes something, hash-chained.

Each record holds who (the authenticated user, ``local:<os user>`` without a server), when, what
(action and parameters), the project, before and after, and the result. Its ``hash`` is the
SHA-256 of its own fields and of the previous record's hash, and a one-row head holds the last
record's number and hash: :func:`verify` finds an edited record (its hash no longer matches), a
removed one (a gap in the numbers, or a head that points past the end) and a reordered one (a
record's previous hash is not its predecessor's).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from gristmill.metadata import Metadata
from gristmill.metadata.db import audit, audit_head

GENESIS = "0" * 64
FIELDS = ("seq", "at", "actor", "action", "project", "detail", "result", "prev_hash")


def _digest(record: dict) -> str:
    canonical = json.dumps({k: record[k] for k in FIELDS}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def append(md: Metadata, actor: str, action: str, project: str | None, detail: dict[str, Any],
           result: str = "ok") -> dict:
    """Append one record (serialized with every other writer, on SQLite and PostgreSQL alike)."""
    with md.write() as conn:
        md.begin_serialized(conn)
        head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).first()
        seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS)
        record = {"seq": seq, "at": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                  "actor": actor, "action": action, "project": project,
                  "detail": json.dumps(detail, sort_keys=True, default=str), "result": result,
                  "prev_hash": prev}
        record["hash"] = _digest(record)
        conn.execute(audit.insert().values(**record))
        if head:
            conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=seq, hash=record["hash"]))
        else:
            conn.execute(audit_head.insert().values(id=1, seq=seq, hash=record["hash"]))
    return _public(record)


def _public(record) -> dict:
    row = dict(record._mapping) if hasattr(record, "_mapping") else dict(record)
    row["detail"] = json.loads(row["detail"])
    return row


def records(md: Metadata, project: str | None = None, projects: list[str] | None = None,
            actor: str | None = None, action: str | None = None, limit: int = 1000) -> list[dict]:
    """Records newest last; ``projects`` limits them to those projects (a caller's view)."""
    query = sa.select(audit)
    if project is not None:
        query = query.where(audit.c.project == project)
    if projects is not None:
        query = query.where(audit.c.project.in_(projects))
    if actor:
        query = query.where(audit.c.actor == actor)
    if action:
        query = query.where(audit.c.action == action)
    query = query.order_by(audit.c.seq.desc()).limit(limit)
    with md.engine.connect() as conn:
        return [_public(r) for r in reversed(list(conn.execute(query)))]


def verify(md: Metadata) -> dict:
    """Walk the whole chain: ``{"ok": bool, "records": n, "problem": {...} | None}``."""
    expected_seq, prev = 1, GENESIS
    with md.engine.connect() as conn:
        head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).first()
        count = 0
        for row in conn.execute(sa.select(audit).order_by(audit.c.seq)):
            record = dict(row._mapping)
            count += 1
            if record["seq"] != expected_seq:
                return _broken(count - 1, expected_seq, f"record {expected_seq} is missing "
                               f"(the next one is {record['seq']}): removed")
            if record["prev_hash"] != prev:
                return _broken(count - 1, record["seq"], f"record {record['seq']} does not follow "
                               f"record {record['seq'] - 1}: reordered or its predecessor was changed")
            if _digest(record) != record["hash"]:
                return _broken(count - 1, record["seq"], f"record {record['seq']} was edited "
                               "(its contents no longer match its hash)")
            expected_seq, prev = record["seq"] + 1, record["hash"]
    if head is None and count:
        return _broken(count, count, "the chain head is missing")
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev):
        return _broken(count, head.seq, f"the chain should end at record {head.seq}, but ends at "
                       f"{expected_seq - 1}: records were removed from the end")
    return {"ok": True, "records": count, "problem": None}


def _broken(good: int, seq: int, reason: str) -> dict:
    return {"ok": False, "records": good, "problem": {"seq": seq, "reason": reason}}
