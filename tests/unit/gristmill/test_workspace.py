import pytest

from gristmill.errors import InvalidName, ProjectNotFound
from gristmill.workspace import Workspace, check_project_name


def test_paths_are_scoped_by_project(workspace):
    a, b = workspace.lake("alpha"), workspace.lake("beta")
    assert a != b and a.parent == b.parent
    assert workspace.optuna_journal("alpha").name == "alpha.journal"
    assert workspace.root in workspace.reports("alpha").parents


@pytest.mark.parametrize("name", ["../etc", "a/b", "A", "a b", "a__b", ""])
def test_names_that_could_escape_are_refused(workspace, name):
    with pytest.raises(InvalidName):
        workspace.lake(name)


def test_unknown_project_lists_known_ones(workspace):
    (workspace.project_dir("known")).mkdir(parents=True)
    workspace.spec_path("known").write_text("project: known\n")
    with pytest.raises(ProjectNotFound, match="known projects: known"):
        workspace.require_project("missing")


def test_env_var_moves_the_workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("GRISTMILL_WORKSPACE", str(tmp_path / "elsewhere"))
    assert Workspace.resolve().root == (tmp_path / "elsewhere").resolve()
    assert check_project_name("ok_1") == "ok_1"
