"""Gristmill's own metadata: users, tokens, project ownership and grants, the audit trail, lineage.

One SQL database holds it: SQLite in the workspace (``<workspace>/gristmill.db``) by default, or
PostgreSQL in team mode (``server.metadata`` in ``<workspace>/gristmill.yaml`` or
``GRISTMILL_METADATA_URL``), shared by every server process, bento and CLI of the team.
"""

from gristmill.metadata.db import Metadata, open_metadata

__all__ = ["Metadata", "open_metadata"]
