"""Roles per project and the actions they allow: plain data, read by the one policy check."""

from __future__ import annotations

from enum import Enum


class Role(str, Enum):
    """A user's role on one project; each includes the ones below it."""

    viewer = "viewer"
    editor = "editor"
    owner = "owner"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.viewer: 1, Role.editor: 2, Role.owner: 3}


class Action(str, Enum):
    """What a caller asks to do. Project actions need a role on the project; the rest are global."""

    # reads (viewer)
    read = "read"                # tables, specs, models, history, audit of the project, lineage
    query = "query"              # gristmill sql on the project's schema
    predict = "predict"          # the project's bento and its gateway route
    # changes (editor)
    ingest = "ingest"
    features = "features"        # feature apply, training sets, materialize
    train = "train"
    deploy = "deploy"
    promote = "promote"          # promote, challenge, rollback
    monitor = "monitor"
    spec = "spec"                # register or change the project spec
    # ownership (owner)
    share = "share"
    delete = "delete"
    manage_jobs = "manage_jobs"  # cancel another member's job
    # global
    create_project = "create_project"   # any authenticated user
    manage_users = "manage_users"       # admins
    read_audit_all = "read_audit_all"   # admins: the whole trail
    probe_jobs = "probe_jobs"           # admins: no-op jobs that check and measure the queue


PROJECT_ACTIONS: dict[Action, Role] = {
    Action.read: Role.viewer, Action.query: Role.viewer, Action.predict: Role.viewer,
    Action.ingest: Role.editor, Action.features: Role.editor, Action.train: Role.editor,
    Action.deploy: Role.editor, Action.promote: Role.editor, Action.monitor: Role.editor,
    Action.spec: Role.editor,
    Action.share: Role.owner, Action.delete: Role.owner, Action.manage_jobs: Role.owner,
}
