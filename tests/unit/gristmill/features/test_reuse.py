"""Feature views shared across projects, removal that leaves other projects alone, and corrections
written later (created timestamps) winning in training sets."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gristmill import pipeline
from gristmill.errors import DataError, GristmillError
from gristmill.spec import parse_spec

FEAST = Path(sys.executable).parent / "feast"


def _spec(project: str, features: list[dict], key: str = "customer_id") -> object:
    return parse_spec({"project": project, "sources": [{"path": "unused"}],
                       "entity": {"name": "customer", "key": key}, "features": features,
                       "label": {"table": "labels", "target": "y", "timestamp": "as_of"}}, f"{project}.yaml")


@pytest.fixture(scope="module")
def shop_and_crm(tmp_path_factory, add_tables):
    """``crm`` owns ``customers``; ``shop`` reuses it beside its own ``orders``. One workspace for
    the module (feast apply is slow); the test that removes definitions comes last."""
    from gristmill.workspace import Workspace

    root = tmp_path_factory.mktemp("reuse")
    with pytest.MonkeyPatch.context() as mp:
        for name, sub in (("WORKSPACE", "ws"), ("FEATURE_REPO", "feature_repo"), ("BENTOS", "bentos")):
            mp.setenv(f"GRISTMILL_{name}", str(root / sub))
        workspace = Workspace.resolve().ensure()
        yield workspace, *_build(workspace, add_tables)


def _build(workspace, add_tables):
    ts = pd.to_datetime
    labels = pd.DataFrame({"customer_id": ["c1", "c2"], "y": [1, 0], "as_of": ts(["2024-02-01"] * 2)})
    add_tables(workspace, "crm", {
        "customers": pd.DataFrame({"customer_id": ["c1", "c2"], "segment": ["gold", "basic"],
                                   "updated": ts(["2024-01-01", "2024-01-01"])}),
        "labels": labels})
    add_tables(workspace, "shop", {
        "orders": pd.DataFrame({"customer_id": ["c1", "c1", "c2"], "total": [5.0, 7.0, 1.0],
                                "ts": ts(["2024-01-05", "2024-01-20", "2024-01-07"])}),
        "labels": labels})
    crm = _spec("crm", [{"table": "customers", "timestamp": "updated"}])
    shop = _spec("shop", [{"table": "customers", "project": "crm"},
                          {"table": "orders", "timestamp": "ts", "kind": "events"}])
    pipeline.features_apply(workspace, crm)
    pipeline.features_apply(workspace, shop)
    return crm, shop


def test_a_project_reuses_another_projects_view(shop_and_crm):
    workspace, _, shop = shop_and_crm
    _, path = pipeline.features_dataset(workspace, shop)
    frame = pd.read_parquet(path).set_index("customer_id")
    assert frame.loc["c1", "customers__segment"] == "gold"
    assert frame.loc["c1", "orders__total_sum"] == 12.0
    source = (workspace.feature_repo / "projects" / "shop.py").read_text()
    assert "from projects.crm import customers_view as crm__customers_view" in source
    assert "name='shop__customers'" not in source  # not defined twice

    out = subprocess.run([sys.executable, "-m", "gristmill", "features", "list", "--json"],
                         capture_output=True, text=True)
    views = {v["view"]: v for v in json.loads(out.stdout)["feature_views"]}
    assert views["crm__customers"]["project"] == "crm"
    assert views["crm__customers"]["used_by"] == ["crm", "shop"]
    assert views["shop__orders"]["used_by"] == ["shop"]


def test_reuse_mistakes_name_the_key(shop_and_crm):
    workspace = shop_and_crm[0]
    other = _spec("billing", [{"table": "invoices", "project": "crm"}])
    with pytest.raises(DataError, match=r"features\[0\]\.table: project 'crm' owns no feature table "
                                        r"'invoices' \(it owns: customers\)"):
        pipeline.features_apply(workspace, other)
    keyed = _spec("billing", [{"table": "customers", "project": "crm"}], key="client")
    with pytest.raises(DataError, match="the entity keys must match"):
        pipeline.features_apply(workspace, keyed)
    with pytest.raises(Exception, match="takes only `table` and `project`"):
        _spec("billing", [{"table": "customers", "project": "crm", "timestamp": "x"}])


def test_a_later_written_correction_wins(workspace, add_tables):
    ts = pd.to_datetime
    add_tables(workspace, "fix", {
        # the same score for c1 at the same time, written twice: the 2nd write corrects the 1st
        "scores": pd.DataFrame({"customer_id": ["c1", "c1", "c2"], "score": [10.0, 99.0, 5.0],
                                "at": ts(["2024-01-01"] * 3),
                                "written": ts(["2024-01-02", "2024-01-03", "2024-01-02"])}),
        "labels": pd.DataFrame({"customer_id": ["c1", "c2"], "y": [1, 0],
                                "as_of": ts(["2024-02-01", "2024-02-01"])})})
    spec = _spec("fix", [{"table": "scores", "timestamp": "at", "created": "written"}])
    pipeline.features_apply(workspace, spec)
    _, path = pipeline.features_dataset(workspace, spec)
    frame = pd.read_parquet(path).set_index("customer_id")
    assert frame.loc["c1", "scores__score"] == 99.0 and frame.loc["c2", "scores__score"] == 5.0
    assert "scores__written" not in frame.columns


def test_removing_the_user_leaves_the_owner_and_removing_the_owner_is_refused(shop_and_crm):
    from gristmill.features.store import remove_definitions

    workspace = shop_and_crm[0]
    with pytest.raises(GristmillError, match="shop reuse"):
        remove_definitions(workspace, "crm")
    assert (workspace.feature_repo / "projects" / "crm.py").is_file()

    crm_source = (workspace.feature_repo / "projects" / "crm.py").read_text()
    assert remove_definitions(workspace, "shop") == ["shop__orders"]
    listed = subprocess.run([str(FEAST), "feature-views", "list"], cwd=workspace.feature_repo,
                            capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert "crm__customers" in listed.stdout and "shop__orders" not in listed.stdout
    assert (workspace.feature_repo / "projects" / "crm.py").read_text() == crm_source
