"""The dashboard in Debian's Chromium (Playwright) against one real `gristmill server` process for
the module: sign in with a password and with a token, every page of a project with its values
checked against the API and its charts drawn by Plotly, promote + roll back from the Models page
(alias moves, audit record appears), a viewer sees no buttons and the API refuses them, a user of
another project gets 404, CSRF refusal, sign out (the old cookie no longer works).
Screenshots go to $GRISTMILL_ARTIFACTS (default: the module's tmp folder)."""

from __future__ import annotations

import os
import struct
import sys
import zlib
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.slow]
BIN = Path(sys.executable).parent
PAGES = ("data", "features", "training", "models", "deployments", "monitoring", "jobs", "audit")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _png(width: int = 40, height: int = 30) -> bytes:
    """A tiny real PNG (a grey gradient), standing in for a training's matplotlib plot."""
    raw = b"".join(b"\x00" + bytes((x * 6) % 256 for x in range(width)) for _ in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _two_versions(ws, project: str, tmp: Path) -> None:
    """Two registered versions of ``project``'s model in the workspace's MLflow (real runs, tiny), each
    training run with a nested trial and a holdout plot artifact. Only explicit-URI clients: nothing
    is left in MLflow's process-wide state."""
    from gristmill.config import mlflow_client
    from gristmill.training.train import configure_mlflow

    exp = configure_mlflow(ws, project)   # the experiment as training makes it
    client = mlflow_client(ws)
    client.create_registered_model(project)
    (tmp / "plots").mkdir(exist_ok=True)
    (tmp / "plots" / "roc.png").write_bytes(_png())
    for score in (0.71, 0.74):
        run = client.create_run(exp, run_name="train tiny")
        client.log_metric(run.info.run_id, "holdout_roc_auc", score)
        client.log_artifact(run.info.run_id, str(tmp / "plots" / "roc.png"), "plots")
        trial = client.create_run(exp, run_name="trial 0 lightgbm",
                                  tags={"mlflow.parentRunId": run.info.run_id, "trainer": "lightgbm"})
        client.log_metric(trial.info.run_id, "cv_roc_auc", score - 0.01)
        for r in (trial, run):
            client.set_terminated(r.info.run_id)
        mv = client.create_model_version(project, f"runs:/{run.info.run_id}/model", run.info.run_id)
        client.set_model_version_tag(project, mv.version, "holdout_roc_auc", str(score))
    client.set_registered_model_alias(project, "champion", "1")


def _ingest(ws, project: str, tmp: Path) -> None:
    """A real ingestion of a tiny CSV with one bad line (quarantined), and lineage on to a model."""
    from gristmill.audit import lineage
    from gristmill.services import Context, invoke

    (tmp / "src").mkdir()
    (tmp / "src" / "orders.csv").write_text("customer_id,amount,ts\n" + "".join(
        f"{c},{i + 1.5},2026-01-0{i + 1}\n" for i, c in enumerate("abcde")) + "f,6,2026-01-06,extra\n")
    local = Context.local(ws)
    done = invoke(local, "data.ingest", project=project, path=str(tmp / "src"))
    assert done["quarantined_rows"] == 1
    table = f"table:orders@{done['tables'][0]['version']}"
    lineage.record(local.md, project, [(table, "training_set:tiny"), ("training_set:tiny", "model:1"),
                                       ("model:1", f"deployment:{project}")], "olga")


@pytest.fixture(scope="module")
def site(tmp_path_factory, add_tables, team_maker, start_server):
    """(team, base URL): a team's workspace with two model versions of `shop`, one server."""
    from gristmill.workspace import Workspace

    root = tmp_path_factory.mktemp("dashboard")
    env = {"GRISTMILL_WORKSPACE": str(root / "ws"), "GRISTMILL_FEATURE_REPO": str(root / "feature_repo"),
           "GRISTMILL_BENTOS": str(root / "bentos")}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        ws = Workspace.resolve().ensure()
        team = team_maker(ws, add_tables)
        _ingest(ws, "shop", root)
        _two_versions(ws, "shop", root)
    with start_server([str(BIN / "gristmill"), "server"], root, {**os.environ, **env}, root / "server.log") as base:
        yield team, base


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    out = Path(os.environ.get("GRISTMILL_ARTIFACTS") or tmp_path_factory.mktemp("screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def _watch(page) -> list[str]:
    """Console errors, page errors and CSP violations of ``page`` (none are expected)."""
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return problems


def sign_in(browser, base: str, name: str, token: str | None = None):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    # generous waits: a page's first operation may import feast or MLflow on a loaded machine (no
    # timed assertions: this only bounds a hang)
    page.set_default_navigation_timeout(180_000)
    page.set_default_timeout(60_000)
    page.problems = _watch(page)
    page.goto(f"{base}/")
    assert page.url.endswith("/ui/login")
    if token:
        page.fill("input[name=token]", token)
    else:
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", f"{name}-password")
    page.click("button[type=submit]")
    assert page.url == f"{base}/ui/", page.content()[:500]
    assert page.locator("[data-testid=who]").inner_text().startswith(name)
    return page


def _api(team, base: str, who: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers=team.headers(who), timeout=30)


def _aliases(api) -> dict[str, list[str]]:
    return {v["version"]: v["aliases"] for v in api.get("/projects/shop/models").json()["versions"]}


def test_password_sign_in_sets_a_safe_cookie_and_lists_the_users_projects(site, browser, shots):
    team, base = site
    page = sign_in(browser, base, "olga")
    cookie = next(c for c in page.context.cookies() if c["name"] == "gm_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    listed = {p["project"] for p in _api(team, base, "olga").get("/projects").json()["projects"]}
    shown = set(page.locator("tr[data-project]").evaluate_all("rows => rows.map(r => r.dataset.project)"))
    assert shown == listed and "shop" in shown and "other" not in shown
    assert page.locator("tr[data-project=shop] td.champion").inner_text() == "v1"
    page.screenshot(path=str(shots / "projects.png"), full_page=True)
    assert page.problems == []


def test_every_page_shows_what_the_api_answers_and_draws_its_charts(site, browser, shots):
    team, base = site
    api = _api(team, base, "olga")
    page = sign_in(browser, base, "olga")
    for name in PAGES:
        answer = page.goto(f"{base}/ui/p/shop/{name}")
        assert answer.status == 200 and page.locator("main h1").inner_text().lower() == name
        if name == "data":
            rows = api.get("/projects/shop/tables").json()["tables"]
            assert rows and page.locator("section[data-table]").count() == len(rows)
            for t in rows:
                section = page.locator(f"section[data-table='{t['table']}']")
                assert int(section.locator(".rows").inner_text()) == t["rows"] == 5
                assert section.locator("table.quarantine tr").count() - 1 == t["quarantined_rows"] == 1
                assert "too many columns" in section.locator("table.quarantine").inner_text()
            edges = api.get("/projects/shop/lineage").json()["edges"]
            assert len(edges) == 4 and f"{len(edges)} edges" in page.locator("main").inner_text()
            page.wait_for_selector("#lineage[data-drawn='1'] .main-svg", timeout=60000)
        if name == "training":
            for chart in ("score-time", "score-trainer"):
                page.wait_for_selector(f"#{chart}[data-drawn='1'] .main-svg", timeout=60000)   # Plotly drew it
            runs = api.get("/projects/shop/runs").json()["runs"]
            assert len(runs) == 4 and page.locator("[data-testid=runs] tr").count() - 1 == len(runs)
            assert page.locator("[data-testid=leaderboard] tr").count() - 1 == 2
            plots = api.get("/projects/shop/plots").json()
            assert [p["name"] for p in plots["plots"]] == ["roc"]
            assert page.locator("[data-plot=roc] img").evaluate("i => i.naturalWidth") == 40
        if name == "models":
            versions = api.get("/projects/shop/models").json()["versions"]
            assert page.locator("[data-testid=versions] tr[data-version]").count() == len(versions) == 2
        if name == "deployments":
            live = api.get("/projects/shop/serving").json()
            assert live["reachable"] is False   # nothing serves shop in this test
            assert page.locator("[data-testid=live]").get_attribute("data-reachable") == "0"
            assert live["url"] in page.locator("[data-testid=live]").inner_text()
        if name == "audit":
            records = api.get("/audit", params={"project": "shop"}).json()["records"]
            assert page.locator("[data-testid=audit] tr").count() - 1 == min(len(records), 100)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    assert page.problems == []


def test_promote_and_roll_back_from_the_models_page(site, browser, shots):
    team, base = site
    api = _api(team, base, "olga")
    page = sign_in(browser, base, "olga")
    page.goto(f"{base}/ui/p/shop/models")
    page.click("tr[data-version='2'] button[data-action=promote]")
    assert "champion" in page.locator("tr[data-version='2'] td.aliases").inner_text()
    assert "champion" in _aliases(api)["2"]
    assert page.locator("[data-testid=moves] tr").count() >= 2
    page.screenshot(path=str(shots / "models-promoted.png"), full_page=True)
    page.click("button[data-action=rollback]")
    assert "champion" in page.locator("tr[data-version='1'] td.aliases").inner_text()
    assert "champion" in _aliases(api)["1"]
    page.goto(f"{base}/ui/p/shop/audit?action=models.promote")
    assert page.locator("[data-testid=audit] td.actor", has_text="olga").count() >= 1
    page.goto(f"{base}/ui/p/shop/audit?action=models.rollback")
    assert page.locator("[data-testid=audit] td.action", has_text="models.rollback").count() >= 1
    actions = [r["action"] for r in api.get("/audit", params={"project": "shop"}).json()["records"]]
    assert "models.promote" in actions and "models.rollback" in actions
    assert page.problems == []


def test_a_form_post_without_or_with_a_wrong_csrf_token_is_refused(site, browser):
    team, base = site
    api = _api(team, base, "olga")
    page = sign_in(browser, base, "olga")
    page.goto(f"{base}/ui/p/shop/models")
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(i => i.value = 'forged')")
    page.click("tr[data-version='2'] button[data-action=promote]")
    assert "CSRF" in page.locator("[data-testid=error]").inner_text()
    missing = page.request.post(f"{base}/ui/p/shop/models/promote", form={"version": "2"}, max_redirects=0)
    assert missing.status == 403 and "CSRF" in missing.text()
    # the sign-in form: its double-submit token is checked too
    stranger = httpx.post(f"{base}/ui/login", data={"name": "olga", "password": "olga-password", "csrf": "x"},
                          cookies={"gm_login_csrf": "y"})
    assert stranger.status_code == 403 and "gm_session" not in stranger.cookies
    assert "champion" in _aliases(api)["1"]   # nothing moved


def test_a_viewer_sees_no_buttons_and_the_api_refuses_them(site, browser, shots):
    team, base = site
    viewer = sign_in(browser, base, "vi")
    viewer.goto(f"{base}/ui/p/shop/models")
    assert viewer.locator("tr[data-version]").count() == 2
    assert viewer.locator("button[data-action]").count() == 0
    viewer.screenshot(path=str(shots / "models-viewer.png"), full_page=True)
    csrf = viewer.locator("header input[name=csrf]").input_value()
    forced = viewer.request.post(f"{base}/ui/p/shop/models/promote", form={"csrf": csrf, "version": "2"},
                                 max_redirects=0)
    assert forced.status == 403
    assert _api(team, base, "vi").post("/projects/shop/models/promote", json={"version": "2"}).status_code == 403
    assert "champion" in _aliases(_api(team, base, "olga"))["1"]


def test_a_user_of_another_project_gets_404(site, browser):
    team, base = site
    stranger = sign_in(browser, base, "mo")
    assert stranger.locator("tr[data-project=shop]").count() == 0
    csrf = stranger.locator("header input[name=csrf]").input_value()
    for name in ("data", "models", "training"):
        assert stranger.goto(f"{base}/ui/p/shop/{name}").status == 404
    assert stranger.request.post(f"{base}/ui/p/shop/models/rollback",
                                 form={"csrf": csrf},
                                 max_redirects=0).status == 404


def test_token_sign_in_and_sign_out(site, browser):
    team, base = site
    page = sign_in(browser, base, "ed", token=team.tokens["ed"])
    assert page.goto(f"{base}/ui/p/shop/models").status == 200
    assert page.locator("button[data-action=promote]").count() >= 1   # an editor
    cookie = next(c for c in page.context.cookies() if c["name"] == "gm_session")
    page.click("header button[type=submit]")   # sign out
    assert page.url.endswith("/ui/login")
    page.goto(f"{base}/ui/")
    assert page.url.endswith("/ui/login")
    # a token the user brought stays theirs; a password sign-in's own token is revoked at sign-out
    assert _api(team, base, "ed").get("/whoami").status_code == 200
    olga = sign_in(browser, base, "olga")
    kept = next(c for c in olga.context.cookies() if c["name"] == "gm_session")
    olga.click("header button[type=submit]")
    replay = browser.new_context()
    replay.add_cookies([kept])
    again = replay.new_page()
    again.goto(f"{base}/ui/")
    assert again.url.endswith("/ui/login")   # the old cookie no longer signs anyone in
    assert cookie["value"] != kept["value"]
