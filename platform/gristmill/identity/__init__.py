"""Who is asking, and what they may do: users, API tokens, roles per project, one policy check.

- :mod:`.roles`: the roles (viewer < editor < owner) and the actions each one allows.
- :mod:`.principal`: the authenticated caller.
- :mod:`.store`: users, tokens, project owners and grants in the metadata database.
- :mod:`.policy`: :func:`~gristmill.identity.policy.authorize`, the one function that decides every
  access (API routes, CLI commands, bentos, the gateway, ``gristmill sql``).
"""

from gristmill.identity.policy import authorize, visible_projects
from gristmill.identity.principal import Principal
from gristmill.identity.roles import Action, Role

__all__ = ["Action", "Principal", "Role", "authorize", "visible_projects"]
