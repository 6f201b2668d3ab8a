"""Who may call a served model: a real `bentoml serve` of a project's bento and of the gateway,
asked by every kind of caller, every answer declared in one table.

Two small projects (alpha owned by olga, beta owned by bert) are trained with a 5 s budget; users,
shares and tokens are made through the service layer, as the CLI makes them.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
SHARED = "alpha-shared-secret-of-the-old-kind"

# principal: statuses of (bento /predict_entity, /model, /metrics, /readyz; gateway /predict_entity,
# /model, /metrics, /readyz, /projects, /predict_entity naming beta), every request about alpha
# but the last. Probes are open; no role on a project is a 404 like an unknown project.
COLUMNS = ("predict", "model", "metrics", "readyz",
           "gw predict", "gw model", "gw metrics", "gw readyz", "gw projects", "gw other")
DENIED = (401, 401, 401, 200, 401, 401, 401, 200, 401, 401)
EXPECTED = {
    "no token":          DENIED,
    "malformed token":   DENIED,
    "unknown token":     DENIED,
    "expired token":     DENIED,
    "revoked token":     DENIED,
    "beta viewer only":  (404, 404, 404, 200, 404, 404, 200, 200, 200, 200),
    "viewer":            (200, 200, 200, 200, 200, 200, 200, 200, 200, 404),
    "editor":            (200, 200, 200, 200, 200, 200, 200, 200, 200, 404),
    "owner":             (200, 200, 200, 200, 200, 200, 200, 200, 200, 404),
    "admin":             (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "alpha viewer token": (200, 200, 200, 200, 200, 200, 200, 200, 200, 404),
    "beta viewer token": (404, 404, 404, 200, 404, 404, 200, 200, 200, 200),
    "shared secret":     (200, 200, 200, 200, 401, 401, 401, 200, 401, 401),  # alpha's bento only
}
SEES = {"beta viewer only": ["beta"], "viewer": ["alpha"], "editor": ["alpha"], "owner": ["alpha"],
        "admin": ["alpha", "beta"], "alpha viewer token": ["alpha"], "beta viewer token": ["beta"]}


def _spec(project: str) -> dict:
    spec = {"project": project, "sources": [{"path": "/nonexistent/unused.csv"}],
            "entity": {"name": "user", "key": "user_id"},
            "features": [{"table": "profile", "timestamp": "updated"}],
            "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
            "training": {"budget_seconds": 5, "trainers": ["lightgbm"]}}
    if project == "alpha":
        spec["serving"] = {"api_token_env": "ALPHA_SHARED_TOKEN"}
    return spec


def _tables(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = 300
    ids = [f"u{i}" for i in range(n)]
    score = rng.normal(size=n)
    return {"profile": pd.DataFrame({"user_id": ids, "score": score, "plan": rng.choice(["a", "b"], n),
                                     "updated": pd.Timestamp("2024-01-01")}),
            "labels": pd.DataFrame({"user_id": ids, "y": (score + rng.normal(scale=0.5, size=n) > 0).astype(int),
                                    "as_of": pd.Timestamp("2024-02-01")})}


def _build(ws, add_tables) -> dict:
    """Users, two trained and deployed projects, and a token of every kind; returns the tokens."""
    import yaml

    from gristmill import pipeline
    from gristmill.config import metadata
    from gristmill.identity import store
    from gristmill.services import Context, invoke
    from gristmill.spec import parse_spec

    local, md = Context.local(ws), metadata(ws)
    first = {name: invoke(local, "users.add", name=name, admin=name == "ada")["token"]
             for name in ("olga", "bert", "vic", "ed", "sam", "ada")}
    as_user = {name: Context(ws, store.authenticate(md, token)) for name, token in first.items()}
    for seed, (project, owner) in enumerate((("alpha", "olga"), ("beta", "bert"))):
        invoke(as_user[owner], "projects.register", project=project, spec=yaml.safe_dump(_spec(project)))
        add_tables(ws, project, _tables(seed))
        spec = parse_spec(_spec(project), f"{project}.yaml")
        pipeline.features_apply(ws, spec)
        dataset, _ = pipeline.features_dataset(ws, spec)
        pipeline.features_materialize(ws, spec)
        pipeline.train(ws, spec, budget=5, dataset_id=dataset)
        pipeline.deploy(ws, spec)
    invoke(as_user["olga"], "projects.share", project="alpha", user="vic", role="viewer")
    invoke(as_user["olga"], "projects.share", project="alpha", user="ed", role="editor")
    invoke(as_user["bert"], "projects.share", project="beta", user="sam", role="viewer")

    revoked = invoke(as_user["vic"], "tokens.create", label="to revoke")
    invoke(as_user["vic"], "tokens.revoke", token_id=revoked["id"])
    expired = invoke(as_user["vic"], "tokens.create", label="to expire")
    with md.engine.begin() as conn:
        conn.execute(store.tokens.update().where(store.tokens.c.id == expired["id"])
                     .values(expires_at="2001-01-01T00:00:00+00:00"))
    project_token = {p: invoke(as_user[o], "tokens.create", project=p, role="viewer", label="e2e")["token"]
                     for p, o in (("alpha", "olga"), ("beta", "bert"))}
    return {"no token": None, "malformed token": "gm_nonsense", "unknown token": "gm_0123456789abcdef_" + "x" * 43,
            "expired token": expired["token"], "revoked token": revoked["token"],
            "beta viewer only": first["sam"], "viewer": first["vic"], "editor": first["ed"],
            "owner": first["olga"], "admin": first["ada"], "alpha viewer token": project_token["alpha"],
            "beta viewer token": project_token["beta"], "shared secret": SHARED}


@pytest.fixture(scope="module")
def world(tmp_path_factory, add_tables, start_server):
    root = tmp_path_factory.mktemp("access")
    env = {**os.environ, "GRISTMILL_WORKSPACE": str(root / "ws"), "GRISTMILL_FEATURE_REPO": str(root / "feature_repo"),
           "GRISTMILL_BENTOS": str(root / "bentos"), "ALPHA_SHARED_TOKEN": SHARED}
    with pytest.MonkeyPatch.context() as mp:
        for key in ("GRISTMILL_WORKSPACE", "GRISTMILL_FEATURE_REPO", "GRISTMILL_BENTOS"):
            mp.setenv(key, env[key])
        from gristmill.workspace import Workspace

        ws = Workspace.resolve().ensure()
        tokens = _build(ws, add_tables)
    with start_server([str(BIN / "bentoml"), "serve", "service:Alpha"], root / "bentos" / "alpha", env,
                      root / "alpha.log") as bento, \
            start_server([str(BIN / "gristmill"), "serve", "--all"], None, env, root / "gateway.log") as gateway:
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        for project in ("alpha", "beta"):  # both projects loaded and counted on the gateway
            reply = httpx.post(f"{gateway}/predict_entity", json={"project": project, "id": "u1"},
                               headers=admin, timeout=120)
            assert reply.status_code == 200, reply.text
        yield {"bento": bento, "gateway": gateway, "tokens": tokens, "ws": ws}


def _ask(world, column: str, token: str | None) -> httpx.Response:
    base = world["gateway"] if column.startswith("gw ") else world["bento"]
    what = column.removeprefix("gw ")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"user_id": "u1"} if base == world["bento"] else {"project": "alpha", "id": "u1"}
    if what == "predict":
        return httpx.post(f"{base}/predict_entity", json=body, headers=headers, timeout=60)
    if what == "other":
        return httpx.post(f"{base}/predict_entity", json={"project": "beta", "id": "u1"}, headers=headers,
                          timeout=60)
    if what == "model":
        return httpx.post(f"{base}/model", json={} if base == world["bento"] else {"project": "alpha"},
                          headers=headers, timeout=60)
    if what == "projects":
        return httpx.post(f"{base}/projects", json={}, headers=headers, timeout=60)
    return httpx.get(f"{base}/{what}", headers=headers, timeout=60)  # metrics, readyz


def test_every_caller_gets_the_declared_answer_from_every_endpoint(world):
    assert set(EXPECTED) == set(world["tokens"])
    got, wrong = {}, []
    for who, statuses in EXPECTED.items():
        for column, status in zip(COLUMNS, statuses):
            reply = _ask(world, column, world["tokens"][who])
            got[who, column] = reply.status_code
            if reply.status_code != status:
                wrong.append(f"{who} {column}: {reply.status_code} (expected {status}) {reply.text[:200]}")
            if reply.status_code == 401:
                assert reply.headers.get("www-authenticate") == "Bearer", (who, column)
    assert not wrong, "\n".join(wrong)


def test_the_gateway_lists_only_what_the_caller_may_see(world):
    for who, projects in SEES.items():
        headers = {"Authorization": f"Bearer {world['tokens'][who]}"}
        state = httpx.post(f"{world['gateway']}/projects", json={}, headers=headers, timeout=60).json()
        assert state["projects"] == projects, who
        assert {e["project"] for e in state["loaded"]} == set(projects), who  # both are loaded


def test_gateway_metrics_hold_no_line_of_a_project_the_caller_cannot_see(world):
    labelled = re.compile(r'project="([^"]*)"')
    viewer = {"Authorization": f"Bearer {world['tokens']['viewer']}"}
    assert httpx.post(f"{world['bento']}/predict_entity", json={"user_id": "u1"}, headers=viewer,
                      timeout=60).status_code == 200
    for who, projects in SEES.items():
        headers = {"Authorization": f"Bearer {world['tokens'][who]}"}
        text = httpx.get(f"{world['gateway']}/metrics", headers=headers, timeout=60).text
        assert set(labelled.findall(text)) == set(projects), who  # both projects served a prediction
        assert "bentoml_" in text and "gristmill_predictions_total" in text
    bento = httpx.get(f"{world['bento']}/metrics", headers=viewer, timeout=60).text
    assert 'gristmill_predictions_total{endpoint="predict_entity",model_version="1",project="alpha"}' in bento


def test_an_unshared_project_looks_like_an_unknown_one(world):
    headers = {"Authorization": f"Bearer {world['tokens']['viewer']}"}
    replies = {p: httpx.post(f"{world['gateway']}/predict_entity", json={"project": p, "id": "u1"},
                             headers=headers, timeout=60) for p in ("beta", "nope")}
    assert replies["beta"].status_code == replies["nope"].status_code == 404
    assert replies["beta"].text.replace("beta", "X") == replies["nope"].text.replace("nope", "X")
    assert "alpha" not in replies["nope"].text and "beta" not in replies["nope"].text


def test_a_revoked_token_stops_working_within_the_cache_time(world):
    from gristmill.config import metadata
    from gristmill.identity import store
    from gristmill.serving.guard import CACHE_SECONDS

    md = metadata(world["ws"])
    made = store.create_token(md, "vic", label="revoke while serving")
    headers = {"Authorization": f"Bearer {made['token']}"}
    for base, body in ((world["bento"], {"user_id": "u1"}), (world["gateway"], {"project": "alpha", "id": "u1"})):
        assert httpx.post(f"{base}/predict_entity", json=body, headers=headers, timeout=60).status_code == 200
    store.revoke_token(md, made["id"])
    time.sleep(CACHE_SECONDS + 0.5)
    for base, body in ((world["bento"], {"user_id": "u1"}), (world["gateway"], {"project": "alpha", "id": "u1"})):
        assert httpx.post(f"{base}/predict_entity", json=body, headers=headers, timeout=60).status_code == 401


def test_the_gateway_refuses_one_shared_token_for_every_project(world):
    import subprocess

    env = {**os.environ, "GRISTMILL_WORKSPACE": str(world["ws"].root), "SOME_TOKEN": "x"}
    out = subprocess.run([str(BIN / "gristmill"), "deploy", "--all", "--token-env", "SOME_TOKEN"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "no shared token" in out.stderr and "Traceback" not in out.stderr
