"""The web dashboard served by ``gristmill server`` under ``/ui``.

Every page reads its data by invoking operations (``services.invoke``) as the signed-in user, so the
one policy check and the audit trail apply exactly as for the CLI and the API. The session cookie
(signed with a server secret kept owner-only in the workspace) carries a real API token made at
sign-in and revoked at sign-out.
"""

from gristmill.dashboard.web import create_dashboard, mount

__all__ = ["create_dashboard", "mount"]
