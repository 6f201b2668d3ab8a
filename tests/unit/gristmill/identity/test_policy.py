"""The one policy check: roles, project tokens, admins, the local OS user, default deny."""

from __future__ import annotations

import pytest

from gristmill.errors import Forbidden, NoAccess, Unauthenticated
from gristmill.identity import Action, Role, authorize
from gristmill.identity.roles import PROJECT_ACTIONS


@pytest.fixture
def md(workspace):
    from gristmill.config import metadata
    from gristmill.identity import store

    md = metadata(workspace)
    for name in ("olga", "vi", "ed", "mo"):
        store.add_user(md, name)
    store.add_user(md, "ada", admin=True)
    store.claim_project(md, "shop", "olga")
    store.claim_project(md, "other", "mo")
    store.share(md, "shop", "vi", Role.viewer, "olga")
    store.share(md, "shop", "ed", Role.editor, "olga")
    return md


def who(md, name, **scope):
    from gristmill.identity import store

    if scope:
        made = store.create_token(md, name, scope["project"], Role(scope["role"]))
    else:
        made = store.create_token(md, name)
    return store.authenticate(md, made["token"])


@pytest.mark.parametrize("action", sorted(PROJECT_ACTIONS, key=lambda a: a.value))
def test_each_project_action_needs_its_role(md, action):
    needed = PROJECT_ACTIONS[action]
    for name, role in (("vi", Role.viewer), ("ed", Role.editor), ("olga", Role.owner)):
        principal = who(md, name)
        if role.rank >= needed.rank:
            assert authorize(md, principal, action, "shop") == role
        else:
            with pytest.raises(Forbidden):
                authorize(md, principal, action, "shop")
    with pytest.raises(NoAccess):
        authorize(md, who(md, "mo"), action, "shop")
    assert authorize(md, who(md, "ada"), action, "shop") == Role.owner


def test_a_project_token_holds_its_scope_and_never_more_than_its_user(md):
    from gristmill.identity import store

    token = who(md, "ed", project="shop", role="viewer")
    assert authorize(md, token, Action.read, "shop") == Role.viewer
    with pytest.raises(Forbidden):
        authorize(md, token, Action.train, "shop")
    with pytest.raises(NoAccess):
        authorize(md, token, Action.read, "other")
    with pytest.raises(Forbidden):
        authorize(md, token, Action.create_project)
    editor_token = who(md, "ed", project="shop", role="editor")
    store.share(md, "shop", "ed", Role.viewer, "olga")   # the user is demoted: so is the token
    with pytest.raises(Forbidden):
        authorize(md, editor_token, Action.train, "shop")
    store.share(md, "shop", "ed", None, "olga")          # and removed
    with pytest.raises(NoAccess):
        authorize(md, editor_token, Action.read, "shop")


def test_admin_actions_are_for_admins_and_the_local_owner(md):
    from gristmill.identity.principal import Principal

    for name in ("olga", "vi", "mo"):
        with pytest.raises(Forbidden):
            authorize(md, who(md, name), Action.manage_users)
    authorize(md, who(md, "ada"), Action.manage_users)
    authorize(md, Principal.local(), Action.manage_users)


def test_tokens_expire_and_revoke_and_disabled_users_stop(md):
    from gristmill.identity import store
    from gristmill.metadata.db import tokens

    made = store.create_token(md, "vi", expires="1h")
    assert store.authenticate(md, made["token"]).name == "vi"
    with md.engine.begin() as conn:
        conn.execute(tokens.update().where(tokens.c.id == made["id"]).values(expires_at="2020-01-01T00:00:00+00:00"))
    with pytest.raises(Unauthenticated, match="expired"):
        store.authenticate(md, made["token"])
    other = store.create_token(md, "vi")
    store.revoke_token(md, other["id"])
    with pytest.raises(Unauthenticated, match="revoked"):
        store.authenticate(md, other["token"])
    third = store.create_token(md, "vi")
    store.set_disabled(md, "vi", True)
    with pytest.raises(Unauthenticated, match="disabled"):
        store.authenticate(md, third["token"])
    forged = third["token"][:-4] + "AAAA"
    with pytest.raises(Unauthenticated):
        store.authenticate(md, forged)


def test_tokens_are_stored_only_as_hashes(md):
    import sqlalchemy as sa

    from gristmill.identity import store
    from gristmill.metadata.db import tokens

    made = store.create_token(md, "vi")
    secret = made["token"].split("_", 2)[2]
    with md.engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(sa.select(tokens))]
    assert not any(secret in str(value) for row in stored for value in row)


def test_passwords_are_argon2_hashes(md):
    from gristmill.identity import store

    store.set_password(md, "vi", "correct horse")
    assert store.get_user(md, "vi").password_hash.startswith("$argon2id$")
    assert store.login(md, "vi", "correct horse")["user_name"] == "vi"
    with pytest.raises(Unauthenticated):
        store.login(md, "vi", "wrong")


def test_the_local_principal_is_the_os_user_by_uid_not_the_environment(monkeypatch):
    import os
    import pwd

    from gristmill.identity.principal import Principal

    monkeypatch.setenv("USER", "anyone")
    monkeypatch.setenv("LOGNAME", "anyone")
    assert Principal.local().name == pwd.getpwuid(os.getuid()).pw_name
    assert Principal.local().actor == f"local:{pwd.getpwuid(os.getuid()).pw_name}"
