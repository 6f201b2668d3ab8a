"""Two users' projects through the CLI in server mode: nothing of one is readable or changeable by
the other, by any command; each command's refusal is one line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gristmill.cli import app


@pytest.fixture
def two_users(workspace, live_server, tmp_path, monkeypatch):
    from gristmill.services import Context, invoke

    local = Context.local(workspace)
    tokens = {name: invoke(local, "users.add", name=name)["token"] for name in ("bob", "carol")}
    for name, rows in (("bob", "a,1\nb,2\n"), ("carol", "x,99\ny,98\n")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "accounts.csv").write_text("customer_id,salary\n" + rows)
    monkeypatch.setenv("GRISTMILL_URL", live_server)
    return tokens


def cli(token: str, *args: str):
    result = CliRunner().invoke(app, list(args), env={"GRISTMILL_TOKEN": token})
    return result


def test_each_user_ingests_and_queries_their_own_project(two_users, tmp_path):
    bob = two_users["bob"]
    made = cli(bob, "ingest", "bobshop", str(tmp_path / "bob"), "--json")
    assert made.exit_code == 0, made.output
    seen = cli(bob, "sql", "bobshop", "select sum(salary) as total from accounts")
    assert seen.exit_code == 0 and "total" in seen.output and "3" in seen.output, seen.output
    listed = cli(bob, "projects")
    assert "bobshop" in listed.output


def test_nothing_of_one_user_reaches_the_other(two_users, tmp_path, workspace):
    bob, carol = two_users["bob"], two_users["carol"]
    assert cli(bob, "ingest", "bobshop", str(tmp_path / "bob")).exit_code == 0
    assert cli(carol, "ingest", "carolhr", str(tmp_path / "carol")).exit_code == 0
    carol_file = next((workspace.lake("carolhr")).rglob("*.parquet"))
    attempts = [
        ("sql", "carolhr", "select * from accounts"),
        ("sql", "bobshop", "select * from carolhr.accounts"),
        ("sql", "bobshop", f"select * from read_parquet('{carol_file}')"),
        ("sql", "bobshop", "select * from read_csv('/etc/passwd')"),
        ("sql", "bobshop", "copy (select 1) to '/tmp/gristmill-leak.csv'"),
        ("ingest", "carolhr", str(tmp_path / "bob")),
        ("models", "list", "carolhr"),
        ("models", "history", "carolhr"),
        ("models", "rollback", "carolhr"),
        ("features", "apply", "carolhr"),
        ("features", "dataset", "carolhr"),
        ("train", "carolhr", "--budget", "5"),
        ("deploy", "carolhr"),
        ("monitor", "run", "carolhr"),
        ("monitor", "history", "carolhr"),
        ("projects", "share", "carolhr", "--user", "bob", "--role", "owner"),
        ("projects", "members", "carolhr"),
        ("tokens", "create", "--project", "carolhr", "--role", "viewer"),
        ("audit", "--project", "carolhr"),
        ("lineage", "carolhr"),
        ("users", "add", "eve", "--admin"),
        ("audit", "verify"),
    ]
    for args in attempts:
        result = cli(bob, *args)
        assert result.exit_code != 0, f"{args} worked for bob: {result.output}"
        message = str(result.exception)
        assert "\n" not in message.strip(), f"{args}: {message}"
        assert "salary" not in result.output and "99" not in result.output, args
    for args in (("projects",), ("features", "list"), ("audit",), ("whoami",)):
        shown = cli(bob, *args)
        assert shown.exit_code == 0 and "carolhr" not in shown.output, (args, shown.output)
    # and carol's project is as she left it
    mine = cli(carol, "sql", "carolhr", "select sum(salary) as total from accounts")
    assert mine.exit_code == 0 and "197" in mine.output, mine.output


def test_every_change_is_attributed_to_the_authenticated_user_not_the_environment(two_users, tmp_path,
                                                                                  workspace, monkeypatch):
    from gristmill.audit import trail
    from gristmill.config import metadata

    monkeypatch.setenv("USER", "anyone")
    assert cli(two_users["bob"], "ingest", "bobshop", str(tmp_path / "bob")).exit_code == 0
    records = trail.records(metadata(workspace), project="bobshop")
    # the ingest is queued by the server, then run by the worker as bob: two records of it
    assert [(r["action"], r["result"]) for r in records] == [
        ("project.create", "ok"), ("data.upload", "ok"), ("data.ingest", "queued"), ("data.ingest", "ok")]
    assert {r["actor"] for r in records} == {"bob"}
    assert trail.verify(metadata(workspace))["ok"]


def test_a_refused_command_prints_one_line_and_exits_1(two_users, live_server, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "GRISTMILL_URL": live_server, "GRISTMILL_TOKEN": two_users["bob"]}
    done = subprocess.run([str(Path(sys.executable).parent / "gristmill"), "models", "list", "carolhr"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "not one of yours" in done.stderr


def test_promotion_history_names_the_principal_never_user_env(workspace, monkeypatch):
    from gristmill.identity.principal import ACTING, Principal
    from gristmill.training import registry

    monkeypatch.setenv("USER", "anyone")
    local = registry._append(workspace, "shop", {"action": "test"})
    assert local["by"] == Principal.local().actor and "anyone" not in local["by"]
    token = ACTING.set(Principal(name="bob"))
    try:
        assert registry._append(workspace, "shop", {"action": "test"})["by"] == "bob"
    finally:
        ACTING.reset(token)
