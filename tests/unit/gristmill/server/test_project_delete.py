"""Deleting a project: owners and admins only, confirmed by name, everything of it gone, every
other project untouched, the audit trail keeping the record."""

from __future__ import annotations

import pytest

from gristmill.errors import Forbidden, GristmillError, NoAccess


def ctx_of(team, who):
    from gristmill.config import metadata
    from gristmill.identity.store import authenticate
    from gristmill.services import Context

    return Context(team.ws, authenticate(metadata(team.ws), team.tokens[who]))


def test_only_the_owner_deletes_and_only_when_confirmed(team):
    from gristmill.services import invoke

    with pytest.raises(Forbidden):
        invoke(ctx_of(team, "ed"), "projects.delete", project="shop", confirm="shop")
    with pytest.raises(NoAccess):
        invoke(ctx_of(team, "mo"), "projects.delete", project="shop", confirm="shop")
    with pytest.raises(GristmillError, match="repeat its name"):
        invoke(ctx_of(team, "olga"), "projects.delete", project="shop", confirm="shops")
    assert team.ws.lake("shop").is_dir()


def test_a_deleted_project_is_gone_and_the_others_stay(team):
    from gristmill.audit import trail
    from gristmill.config import metadata
    from gristmill.services import invoke

    olga, mo = ctx_of(team, "olga"), ctx_of(team, "mo")
    done = invoke(olga, "projects.delete", project="shop", confirm="shop")
    assert "DuckDB schema shop" in done["removed"] and "audit trail" in done["kept"]
    assert not team.ws.lake("shop").exists() and not team.ws.spec_path("shop").exists()
    assert "shop" not in [p["project"] for p in invoke(olga, "projects.list")["projects"]]
    with pytest.raises(NoAccess):
        invoke(ctx_of(team, "vi"), "projects.members", project="shop")
    seen = invoke(mo, "data.sql", project="other", query="select salary from secrets")
    assert seen["rows"] == [[99.0]]
    last = trail.records(metadata(team.ws), project="shop")[-1]
    assert (last["actor"], last["action"], last["result"]) == ("olga", "projects.delete", "ok")
    assert trail.verify(metadata(team.ws))["ok"]


def test_a_project_made_before_owners_were_kept_is_not_taken_by_the_first_caller(workspace, add_tables):
    """A project already in the workspace with no owner record (made by an older Gristmill) is the
    admins' and the OS user's: a user's ingest or spec change cannot claim it."""
    import pandas as pd

    from gristmill.config import metadata
    from gristmill.identity.store import authenticate
    from gristmill.services import Context, invoke

    add_tables(workspace, "legacy", {"t": pd.DataFrame({"a": [1]})})
    (workspace.lake("legacy") / "_catalog.json").write_text('{"tables": {}, "sources": {}}')
    token = invoke(Context.local(workspace), "users.add", name="bob")["token"]
    bob = Context(workspace, authenticate(metadata(workspace), token))
    with pytest.raises(NoAccess):
        invoke(bob, "projects.register", project="legacy", spec="project: legacy\n")
    invoke(Context.local(workspace), "projects.share", project="legacy", user="bob", role="viewer")
    assert invoke(bob, "projects.list")["projects"][0]["role"] == "viewer"
