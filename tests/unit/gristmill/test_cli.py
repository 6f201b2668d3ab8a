"""The CLI through its real entry point: one-line errors, exit codes, lazy imports."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

DEMO_SPEC = Path(__file__).resolve().parents[3] / "platform" / "gristmill" / "demo" / "churn_demo.yaml"


def gristmill(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "gristmill", *args], capture_output=True, text=True,
                          cwd=cwd, env=env)


def test_help_imports_no_heavy_library():
    code = ("import sys; from gristmill.cli import app; import typer.testing as t; "
            "r = t.CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
            "heavy = [m for m in ('feast', 'mlflow', 'bentoml', 'evidently', 'lightgbm', 'optuna', "
            "'pandas', 'duckdb', 'polars', 'torch') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_spec_with_unknown_key_fails_in_one_line(tmp_path, workspace):
    data = yaml.safe_load(DEMO_SPEC.read_text())
    data["label"]["targt"] = data["label"].pop("target")
    spec = tmp_path / "churn.yaml"
    spec.write_text(yaml.safe_dump(data))
    out = gristmill("run", str(spec))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: churn.yaml: label.")
    assert "label.targt: unknown key" in lines[0]
    assert "label.target: field required" in lines[0]
    assert "Traceback" not in out.stderr


def test_unknown_project_is_one_line(workspace):
    out = gristmill("train", "nosuch")
    assert out.returncode == 1
    assert out.stderr.strip() == "error: project 'nosuch' is not in this workspace (no project has run yet)"


def test_init_writes_a_spec_that_validates(tmp_path, workspace):
    out = gristmill("init", "shop", "--dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    from gristmill.spec import load_spec

    assert load_spec(tmp_path / "shop.yaml").project == "shop"
    again = gristmill("init", "shop", "--dir", str(tmp_path))
    assert again.returncode == 1 and "--force" in again.stderr


def test_projects_json(workspace):
    out = gristmill("projects", "--json")
    assert out.returncode == 0
    assert json.loads(out.stdout)["projects"] == []


@pytest.mark.parametrize("args,says", [
    (["frobnicate"], "No such command 'frobnicate'"),
    (["train", "shop", "--budgett", "3"], "No such option: --budgett"),
    (["train"], "Missing argument 'project'"),
    (["train", "shop", "--budget", "2"], "Invalid value for '--budget'"),
    (["tokens", "create", "--expires"], "requires an argument"),
    (["projects", "share", "shop", "--user", "bob"], "Missing option '--role'"),
])
def test_usage_mistakes_are_one_line_and_exit_2_through_the_real_entry_point(args, says, workspace):
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([str(Path(sys.executable).parent / "gristmill"), *args], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def _small_project(tmp_path):
    """A spec with an event table and a label table (a few pending labels) as CSV files."""
    data = tmp_path / "data"
    data.mkdir()
    events = ["user_id,ts,amount"] + [f"u{i % 40},2024-01-{1 + i % 28:02d},{i * 1.5}" for i in range(300)]
    labels = ["user_id,as_of,y"] + [f"u{i},2024-01-20,{'' if i % 10 == 0 else i % 2}" for i in range(40)]
    (data / "events.csv").write_text("\n".join(events) + "\n")
    (data / "labels.csv").write_text("\n".join(labels) + "\n")
    spec = tmp_path / "nb.yaml"
    spec.write_text(yaml.safe_dump({
        "project": "nb", "sources": [{"path": str(data)}], "entity": {"name": "user", "key": "user_id"},
        "features": [{"table": "events", "timestamp": "ts", "kind": "events", "columns": ["amount"]}],
        "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
        "training": {"budget_seconds": 5}}))
    return spec


def test_feast_commands_end_without_nanobind_leak_reports(tmp_path, workspace):
    """Issue 16: Feast's DuckDB offline store kept ibis's default DuckDB connection alive at exit and
    DuckDB's nanobind module printed ~40 "leaked instances" lines after `features dataset`."""
    exe = str(Path(sys.executable).parent / "gristmill")
    spec = _small_project(tmp_path)
    for args in (["ingest", str(spec)], ["features", "apply", "nb"]):
        out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
    for args in (["features", "dataset", "nb"], ["features", "dataset", "nb", "--json"],
                 ["features", "materialize", "nb", "--json"]):
        out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert "nanobind" not in out.stdout + out.stderr, (args, out.stderr[:500])
        if args[1] == "dataset":  # (materialize shows Feast's own progress on stderr)
            said = [ln for ln in out.stderr.splitlines() if ln.strip()]
            assert said == ([] if "--json" in args else
                            ["4 labels have no target yet (pending): not in the training set"]), said


def test_pending_labels_are_counted_in_train_output_and_json(tmp_path, workspace):
    """Issue 16: labels with an empty target were dropped from training without a word."""
    exe = str(Path(sys.executable).parent / "gristmill")
    spec = _small_project(tmp_path)
    for args in (["ingest", str(spec)], ["features", "apply", "nb"], ["features", "dataset", "nb"]):
        out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
    out = subprocess.run([exe, "train", "nb", "--budget", "5", "--json"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["labels_left_out"] == {"pending": 4, "no_key": 0, "no_timestamp": 0}
    shown = subprocess.run([exe, "train", "nb", "--budget", "5"], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert "4 labels have no target yet (pending): left out of training" in shown.stderr
    assert "nanobind" not in shown.stdout + shown.stderr
