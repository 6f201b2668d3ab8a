"""The scheduler on the real metadata database: slots, limits, fair order, lost workers."""

from __future__ import annotations

import time

import sqlalchemy as sa

from gristmill.config import metadata
from gristmill.jobs import store
from gristmill.jobs.scheduler import dispatch
from gristmill.metadata.db import jobs, workers


def _user(name: str) -> dict:
    return {"name": name, "kind": "user", "token_id": None, "scope_project": None, "scope_role": None}


def _submit(ws, user: str, project: str = "shop", slots: int = 1, kind: str = "models.train",
            max_attempts: int = 3) -> str:
    return store.submit(metadata(ws), kind, project, _user(user), {"project": project}, slots=slots,
                        max_attempts=max_attempts)["id"]


def _worker(ws, name: str, slots: int, seen_ago: float = 0.0) -> None:
    md = metadata(ws)
    store.heartbeat(md, name, "host", 1, slots, None)
    if seen_ago:
        with md.write() as conn:
            conn.execute(workers.update().where(workers.c.name == name).values(seen_at=time.time() - seen_ago))


def _state(ws, job_id: str):
    return store.row(metadata(ws), job_id)


def test_one_users_long_queue_does_not_starve_anothers_single_job(workspace):
    _worker(workspace, "w1", 2)
    many = [_submit(workspace, "alice") for _ in range(20)]
    one = _submit(workspace, "bob")
    sent = dispatch(workspace, send=False).sent
    assert {j for j, _, _ in sent} == {many[0], one}   # bob's one job goes before alice's second
    assert all(w == "w1" and attempt == 1 for _, attempt, w in sent)
    assert _state(workspace, many[1]).state == store.QUEUED


def test_slots_are_counted_per_worker_and_a_big_job_waits(workspace):
    _worker(workspace, "w1", 2)
    _worker(workspace, "w2", 1)
    big = _submit(workspace, "alice", slots=2)
    small = [_submit(workspace, "bob", project=f"p{i}") for i in range(3)]
    first = dispatch(workspace, send=False)
    where = {j: w for j, _, w in first.sent}
    assert where[big] == "w1" and len(first.sent) == 2   # w1 full with the big job, w2 takes one
    assert first.waiting[small[1]] == "waiting for 1 free slot(s)"
    huge = _submit(workspace, "carol", slots=3)
    assert dispatch(workspace, send=False).waiting[huge] == "it asks 3 slots; the largest live worker has 2"
    store.finish(metadata(workspace), big, 1, store.SUCCEEDED, result={})
    again = {j for j, _, _ in dispatch(workspace, send=False).sent}
    assert again == {small[1]} or again == {small[1], small[2]}


def test_per_user_and_per_project_limits_hold(workspace):
    (workspace.root / "gristmill.yaml").write_text("jobs: {per_user: 2, per_project: 3}\n")
    _worker(workspace, "w1", 10)
    for _ in range(4):
        _submit(workspace, "alice", project="a")
    for i in range(4):
        _submit(workspace, "bob", project="b")
    sent = dispatch(workspace, send=False)
    users = [_state(workspace, j).user_name for j, _, _ in sent.sent]
    assert users.count("alice") == 2 and users.count("bob") == 2
    reasons = set(sent.waiting.values())
    assert "alice already runs 2 jobs (jobs.per_user)" in reasons


def test_no_worker_says_how_to_start_one(workspace):
    job = _submit(workspace, "alice")
    assert dispatch(workspace, send=False).waiting[job] == "no worker is running: start one with `gristmill worker`"


def test_a_lost_workers_job_runs_again_then_fails_after_its_attempts(workspace):
    (workspace.root / "gristmill.yaml").write_text("jobs: {max_attempts: 2, retry_backoff_seconds: 0}\n")
    md = metadata(workspace)
    _worker(workspace, "w1", 1)
    job = _submit(workspace, "alice", max_attempts=2)
    assert dispatch(workspace, send=False).sent == [(job, 1, "w1")]
    assert store.claim(md, job, 1, "w1") is not None
    _worker(workspace, "w1", 1, seen_ago=60)        # w1 stops answering
    _worker(workspace, "w2", 1)
    result = dispatch(workspace, send=False)
    assert result.lost == [(job, 1, "models.train", "worker w1 was lost")]
    assert _state(workspace, job).state == store.QUEUED
    assert dispatch(workspace, send=False).sent == [(job, 2, "w2")]
    assert store.claim(md, job, 1, "w1") is None          # the lost attempt's message is dropped
    assert store.claim(md, job, 2, "w2") is not None
    _worker(workspace, "w2", 1, seen_ago=60)
    _worker(workspace, "w3", 1)
    dispatch(workspace, send=False)
    found = _state(workspace, job)
    assert found.state == store.FAILED and "gave up after 2 attempt(s)" in found.error
    lines = store.logs(md, job)["lines"]
    assert [line["message"] for line in lines][-1].startswith("worker w2 was lost")


def test_finish_only_counts_for_the_current_attempt(workspace):
    md = metadata(workspace)
    _worker(workspace, "w1", 1)
    job = _submit(workspace, "alice")
    dispatch(workspace, send=False)
    store.claim(md, job, 1, "w1")
    assert not store.finish(md, job, 7, store.SUCCEEDED, result={"x": 1})
    assert store.finish(md, job, 1, store.SUCCEEDED, result={"x": 1})
    assert store.get(md, job)["result"] == {"x": 1}


def test_cancel_a_queued_job_at_once_and_a_running_one_by_request(workspace):
    md = metadata(workspace)
    queued = _submit(workspace, "alice")
    assert store.request_cancel(md, queued)["state"] == store.CANCELLED
    _worker(workspace, "w1", 1)
    running = _submit(workspace, "alice")
    dispatch(workspace, send=False)
    store.claim(md, running, 1, "w1")
    assert store.request_cancel(md, running)["cancel_requested"]
    assert store.cancel_requested(md, [running, queued]) == {running, queued}
    import pytest

    from gristmill.errors import GristmillError

    with pytest.raises(GristmillError, match="already cancelled"):
        store.request_cancel(md, queued)


def test_a_job_sent_but_never_started_goes_back_to_the_queue(workspace):
    (workspace.root / "gristmill.yaml").write_text("jobs: {retry_backoff_seconds: 0}\n")
    md = metadata(workspace)
    _worker(workspace, "w1", 1)
    job = _submit(workspace, "alice")
    dispatch(workspace, send=False)
    with md.write() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job).values(dispatched_at=time.time() - 3600))
    assert dispatch(workspace, send=False).lost[0][3] == "worker w1 did not start it"
    dispatch(workspace, send=False)
    with md.engine.connect() as conn:
        assert conn.execute(sa.select(jobs.c.state, jobs.c.attempt).where(jobs.c.id == job)).one() == ("dispatched", 2)


def test_reading_a_queued_job_runs_no_pass_it_says_what_the_last_one_recorded(workspace):
    from gristmill.identity.principal import Principal
    from gristmill.services import Context, invoke

    job = _submit(workspace, "alice")
    local = Context(workspace, Principal.local())
    assert invoke(local, "jobs.show", job=job)["waiting_for"] == "not yet seen by the scheduler"
    dispatch(workspace, send=False)
    assert store.row(metadata(workspace), job).waiting_for.startswith("no worker is running")
    _worker(workspace, "w1", 1)            # a worker came: only a pass (not a read) sends the job
    shown = invoke(local, "jobs.show", job=job)
    assert shown["state"] == "queued" and shown["waiting_for"].startswith("no worker is running")
    assert [j for j, _, _ in dispatch(workspace, send=False).sent] == [job]
    assert invoke(local, "jobs.show", job=job)["waiting_for"] is None
    assert store.row(metadata(workspace), job).waiting_for is None


def test_an_older_jobs_table_gets_the_new_columns(tmp_path):
    import sqlalchemy as sa

    from gristmill.metadata.db import open_metadata

    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:   # gm_jobs as an older Gristmill made it: no request_id, waiting_for
        conn.execute(sa.text("CREATE TABLE gm_jobs (id VARCHAR(32) PRIMARY KEY, kind VARCHAR(64) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO gm_jobs (id, kind) VALUES ('j1', 'models.train')"))
    engine.dispose()
    md = open_metadata(None, path)
    columns = {c["name"] for c in sa.inspect(md.engine).get_columns("gm_jobs")}
    assert {"request_id", "waiting_for", "kind"} <= columns
    with md.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id, request_id FROM gm_jobs")).all() == [("j1", None)]
