"""Lineage recorded as it happens: source file -> table version -> training set -> model version ->
deployment -> monitoring run. Nodes are ``kind:id`` strings, e.g. ``file:<sha256>``,
``table:orders@v0002``, ``dataset:<id>``, ``model:3``, ``deployment:shop``, ``monitor:<run>``.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timezone

import sqlalchemy as sa

from gristmill.metadata import Metadata
from gristmill.metadata.db import lineage

KINDS = ("file", "table", "dataset", "model", "deployment", "monitor")


def record(md: Metadata, project: str, edges: list[tuple[str, str]], actor: str) -> int:
    """Add edges ``(src, dst)`` (an edge already known is kept once); returns how many were new."""
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    added = 0
    with md.write() as conn:
        for src, dst in dict.fromkeys(edges):
            known = conn.execute(sa.select(lineage.c.id).where(
                lineage.c.project == project, lineage.c.src == src, lineage.c.dst == dst)).first()
            if not known:
                conn.execute(lineage.insert().values(project=project, src=src, dst=dst, at=at, actor=actor))
                added += 1
    return added


def edges(md: Metadata, project: str) -> list[dict]:
    with md.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            sa.select(lineage.c.src, lineage.c.dst, lineage.c.at, lineage.c.actor)
            .where(lineage.c.project == project).order_by(lineage.c.id))]


def graph(md: Metadata, project: str, node: str | None = None) -> dict:
    """The project's lineage; with ``node``, what made it (``upstream``) and what it fed
    (``downstream``), each as the edges reached walking that way."""
    every = edges(md, project)
    if node is None:
        return {"project": project, "node": None, "edges": every}
    known = {e["src"] for e in every} | {e["dst"] for e in every}
    return {"project": project, "node": node, "known": node in known,
            "upstream": _walk(every, node, "dst", "src"), "downstream": _walk(every, node, "src", "dst")}


def _walk(every: list[dict], start: str, near: str, far: str) -> list[dict]:
    seen, out, todo = {start}, [], deque([start])
    while todo:
        here = todo.popleft()
        for edge in every:
            if edge[near] == here:
                out.append(edge)
                if edge[far] not in seen:
                    seen.add(edge[far])
                    todo.append(edge[far])
    return out
