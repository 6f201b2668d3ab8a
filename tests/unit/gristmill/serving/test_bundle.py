"""What a bento carries and what it reads from the environment (gristmill.serving.bundle)."""

from __future__ import annotations

import pytest

from gristmill.serving import bundle


def test_model_tags_name_the_project_version_and_run():
    assert bundle.model_tag("churn_demo", "3", "DF4ADCE3F51F77aa") == "gristmill-churn-demo:v3-df4adce3f51f"
    # two workspaces' version 3 of a project of one name are two models
    assert bundle.model_tag("shop", "3", "aaaa1111") != bundle.model_tag("shop", "3", "bbbb2222")


def test_a_service_names_the_missing_stores_in_one_line(monkeypatch, tmp_path):
    monkeypatch.delenv("GRISTMILL_WORKSPACE", raising=False)
    monkeypatch.setenv("GRISTMILL_FEATURE_REPO", str(tmp_path))
    with pytest.raises(SystemExit, match=r"^error: set GRISTMILL_WORKSPACE before serving 'shop'"):
        bundle.require_environment("shop")
    monkeypatch.setenv("GRISTMILL_WORKSPACE", str(tmp_path / "nope"))
    with pytest.raises(SystemExit, match="is not a folder"):
        bundle.require_environment("shop")
    monkeypatch.setenv("GRISTMILL_WORKSPACE", str(tmp_path))
    bundle.require_environment("shop")


def test_a_built_bento_is_told_from_its_source_folder(tmp_path):
    source = tmp_path / "bentos" / "shop" / "service.py"
    source.parent.mkdir(parents=True)
    source.write_text("")
    built = tmp_path / "store" / "shop" / "v1" / "src" / "service.py"
    built.parent.mkdir(parents=True)
    built.write_text("")
    (built.parent.parent / "bento.yaml").write_text("service: service:Shop\n")
    assert not bundle.built(str(source)) and bundle.built(str(built))


def test_the_generated_service_names_no_path_of_this_machine(workspace):
    from gristmill.serving.bento import write_bento, write_gateway

    folder = write_bento(workspace, "shop", "customer", "customer_id", 3000,
                         models={"champion": "gristmill-shop:v1-abc"})
    text = (folder / "service.py").read_text()
    compile(text, "service.py", "exec")
    assert "BentoModel('gristmill-shop:v1-abc')" in text and '"challenger": None' in text
    gateway = (write_gateway(workspace, 3000) / "service.py").read_text()
    for written in (text, gateway, (folder / "bentofile.yaml").read_text()):
        assert str(workspace.root) not in written and str(workspace.feature_repo) not in written
