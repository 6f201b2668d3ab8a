"""Users, API tokens, project owners and grants, in the metadata database."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from gristmill.errors import Conflict, GristmillError, InvalidName, Unauthenticated
from gristmill.identity import hashing
from gristmill.identity.principal import Principal
from gristmill.identity.roles import Role
from gristmill.metadata import Metadata
from gristmill.metadata.db import grants, projects, tokens, users

USER_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
USER_RULE = "use 1-63 lower-case letters, digits, '_', '.' or '-', starting with a letter"
DURATION = re.compile(r"^(\d+)([hdw])$")
DEFAULT_EXPIRY = "90d"


def now() -> datetime:
    return datetime.now(timezone.utc)


def stamp(moment: datetime | None = None) -> str:
    return (moment or now()).isoformat(timespec="seconds")


def check_user_name(name: str) -> str:
    if not USER_NAME.match(name or ""):
        raise InvalidName("user", name, USER_RULE)
    return name


def parse_expiry(text: str | None) -> datetime | None:
    """``90d``, ``12h``, ``2w`` from now; ``never`` for no expiry; None means the default (90d)."""
    text = (text or DEFAULT_EXPIRY).strip().lower()
    if text == "never":
        return None
    found = DURATION.match(text)
    if not found or int(found.group(1)) < 1:
        raise GristmillError(f"--expires takes a duration like 90d, 12h or 2w (or 'never'), not {text!r}")
    amount, unit = int(found.group(1)), found.group(2)
    return now() + {"h": timedelta(hours=amount), "d": timedelta(days=amount),
                    "w": timedelta(weeks=amount)}[unit]


# -- users ---------------------------------------------------------------------------------------
def add_user(md: Metadata, name: str, admin: bool = False, password: str | None = None) -> dict:
    check_user_name(name)
    row = {"name": name, "is_admin": admin, "created_at": stamp(), "disabled": False,
           "password_hash": hashing.hash_password(password) if password else None}
    with md.write() as conn:
        if conn.execute(sa.select(users.c.name).where(users.c.name == name)).first():
            raise Conflict(f"user {name!r} exists already")
        conn.execute(users.insert().values(**row))
    return public_user(row)


def ensure_user(md: Metadata, name: str, admin: bool = False) -> None:
    """Add user ``name`` unless it exists."""
    if get_user(md, name) is None:
        try:
            add_user(md, name, admin=admin)
        except Conflict:  # made at the same moment by another process
            pass


def public_user(row) -> dict:
    row = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    return {"name": row["name"], "is_admin": bool(row["is_admin"]), "created_at": row["created_at"],
            "disabled": bool(row["disabled"]), "has_password": bool(row.get("password_hash"))}


def get_user(md: Metadata, name: str):
    with md.engine.connect() as conn:
        return conn.execute(sa.select(users).where(users.c.name == name)).first()


def require_user(md: Metadata, name: str):
    row = get_user(md, name)
    if row is None:
        raise GristmillError(f"no user {name!r} (add one: gristmill users add {name})")
    return row


def list_users(md: Metadata) -> list[dict]:
    with md.engine.connect() as conn:
        return [public_user(r) for r in conn.execute(sa.select(users).order_by(users.c.name))]


def set_password(md: Metadata, name: str, password: str) -> None:
    require_user(md, name)
    with md.write() as conn:
        conn.execute(users.update().where(users.c.name == name)
                     .values(password_hash=hashing.hash_password(password)))


def set_disabled(md: Metadata, name: str, disabled: bool) -> dict:
    require_user(md, name)
    with md.write() as conn:
        conn.execute(users.update().where(users.c.name == name).values(disabled=disabled))
    return public_user(get_user(md, name))


def admin_count(md: Metadata) -> int:
    with md.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(users)
                            .where(users.c.is_admin.is_(True))).scalar_one()


# -- tokens --------------------------------------------------------------------------------------
def create_token(md: Metadata, user: str, project: str | None = None, role: Role | None = None,
                 expires: str | None = None, label: str = "") -> dict:
    """A new token for ``user``; the result holds the token itself, shown this once."""
    token, token_id, secret_hash = hashing.new_token()
    expires_at = parse_expiry(expires)
    row = {"id": token_id, "user_name": user, "secret_hash": secret_hash, "project": project,
           "role": role.value if role else None, "label": label[:128], "created_at": stamp(),
           "expires_at": stamp(expires_at) if expires_at else None, "revoked_at": None}
    with md.write() as conn:
        conn.execute(tokens.insert().values(**row))
    return public_token(row) | {"token": token}


def public_token(row) -> dict:
    row = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    return {k: row[k] for k in ("id", "user_name", "project", "role", "label", "created_at",
                                "expires_at", "revoked_at")}


def list_tokens(md: Metadata, user: str | None = None) -> list[dict]:
    query = sa.select(tokens).order_by(tokens.c.created_at, tokens.c.id)
    if user is not None:
        query = query.where(tokens.c.user_name == user)
    with md.engine.connect() as conn:
        return [public_token(r) for r in conn.execute(query)]


def get_token(md: Metadata, token_id: str):
    with md.engine.connect() as conn:
        return conn.execute(sa.select(tokens).where(tokens.c.id == token_id)).first()


def revoke_token(md: Metadata, token_id: str) -> dict:
    with md.write() as conn:
        conn.execute(tokens.update().where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                     .values(revoked_at=stamp()))
        return public_token(conn.execute(sa.select(tokens).where(tokens.c.id == token_id)).first())


def authenticate(md: Metadata, token: str | None) -> Principal:
    """The principal a bearer token stands for; :class:`Unauthenticated` for anything else."""
    if not token:
        raise Unauthenticated("give an API token: Authorization: Bearer <token> "
                              "(make one with `gristmill tokens create`)")
    parts = hashing.split_token(token.strip())
    if parts is None:
        raise Unauthenticated("the API token is malformed (tokens look like gm_<id>_<secret>)")
    token_id, secret = parts
    with md.engine.connect() as conn:
        row = conn.execute(
            sa.select(tokens, users.c.is_admin, users.c.disabled)
            .join(users, users.c.name == tokens.c.user_name).where(tokens.c.id == token_id)).first()
    if row is None or not hashing.secret_matches(secret, row.secret_hash):
        raise Unauthenticated("the API token is not known (revoked tokens are kept as revoked)")
    if row.revoked_at:
        raise Unauthenticated(f"the API token {token_id} was revoked at {row.revoked_at}")
    if row.expires_at and datetime.fromisoformat(row.expires_at) <= now():
        raise Unauthenticated(f"the API token {token_id} expired at {row.expires_at}: make a new one")
    if row.disabled:
        raise Unauthenticated(f"user {row.user_name!r} is disabled")
    if row.project:
        return Principal(name=row.user_name, kind="project-token", token_id=token_id,
                         scope_project=row.project, scope_role=Role(row.role))
    return Principal(name=row.user_name, kind="user", is_admin=bool(row.is_admin), token_id=token_id)


def authenticate_as(md: Metadata, name: str) -> Principal:
    """The principal of user ``name`` as their own user token would give it."""
    row = require_user(md, name)
    return Principal(name=name, kind="user", is_admin=bool(row.is_admin))


def login(md: Metadata, name: str, password: str, expires: str | None = None) -> dict:
    """A new user token for a correct user name and password."""
    row = get_user(md, name)
    if row is None or row.disabled or not hashing.password_matches(password, row.password_hash):
        raise Unauthenticated("wrong user name or password")
    return create_token(md, name, expires=expires, label="login")


# -- projects and grants ------------------------------------------------------------------------
def owner_of(md: Metadata, project: str) -> str | None:
    with md.engine.connect() as conn:
        return conn.execute(sa.select(projects.c.owner).where(projects.c.name == project)).scalar()


def claim_project(md: Metadata, project: str, owner: str) -> bool:
    """Record ``owner`` as the project's owner if it has none yet; True if this call made it."""
    with md.write() as conn:
        if conn.execute(sa.select(projects.c.name).where(projects.c.name == project)).first():
            return False
        conn.execute(projects.insert().values(name=project, owner=owner, created_at=stamp()))
    return True


def role_of(md: Metadata, user: str, project: str) -> Role | None:
    """The user's role on the project: owner, a granted role, or None (one query)."""
    query = (sa.select(projects.c.owner, grants.c.role)
             .select_from(projects.outerjoin(grants, sa.and_(grants.c.project == projects.c.name,
                                                             grants.c.user_name == user)))
             .where(projects.c.name == project))
    with md.engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    if row.owner == user:
        return Role.owner
    return Role(row.role) if row.role else None


def roles_of(md: Metadata, user: str) -> dict[str, Role]:
    """Every project the user has a role on."""
    with md.engine.connect() as conn:
        owned = conn.execute(sa.select(projects.c.name).where(projects.c.owner == user)).scalars()
        found = {name: Role.owner for name in owned}
        for project, role in conn.execute(sa.select(grants.c.project, grants.c.role)
                                          .where(grants.c.user_name == user)):
            found.setdefault(project, Role(role))
    return found


def all_projects(md: Metadata) -> list[str]:
    with md.engine.connect() as conn:
        return sorted(conn.execute(sa.select(projects.c.name)).scalars())


def share(md: Metadata, project: str, user: str, role: Role | None, by: str) -> dict:
    """Give ``user`` ``role`` on ``project`` (None takes it away); returns before and after."""
    require_user(md, user)
    with md.write() as conn:
        owner = conn.execute(sa.select(projects.c.owner).where(projects.c.name == project)).scalar()
        if owner == user:
            raise GristmillError(f"{user!r} owns {project!r}; an owner's role cannot be changed by sharing")
        before = conn.execute(sa.select(grants.c.role).where(
            grants.c.project == project, grants.c.user_name == user)).scalar()
        conn.execute(grants.delete().where(grants.c.project == project, grants.c.user_name == user))
        if role is not None:
            conn.execute(grants.insert().values(project=project, user_name=user, role=role.value,
                                                granted_by=by, granted_at=stamp()))
    return {"project": project, "user": user, "before": before, "after": role.value if role else None}


def members(md: Metadata, project: str) -> list[dict]:
    with md.engine.connect() as conn:
        owner = conn.execute(sa.select(projects.c.owner).where(projects.c.name == project)).scalar()
        rows = [{"user": owner, "role": "owner"}] if owner else []
        rows += [{"user": r.user_name, "role": r.role, "granted_by": r.granted_by}
                 for r in conn.execute(sa.select(grants).where(grants.c.project == project)
                                       .order_by(grants.c.user_name))]
    return rows


def forget_project(md: Metadata, project: str) -> None:
    with md.write() as conn:
        conn.execute(grants.delete().where(grants.c.project == project))
        conn.execute(projects.delete().where(projects.c.name == project))
