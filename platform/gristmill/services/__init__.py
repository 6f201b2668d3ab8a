"""The service layer: every action Gristmill offers, written once.

Each action is an :class:`~gristmill.services.registry.Operation` (a function with a name, an HTTP
method and path, and the :class:`~gristmill.identity.Action` it needs). The CLI calls them directly
(as the local OS user) or through the server (as the logged-in user), the HTTP API is generated from
them, and :func:`~gristmill.services.registry.invoke` wraps every call in the one policy check and
the audit trail. No rule, check or query lives in the CLI or the API.
"""

from gristmill.services.context import Context
from gristmill.services.registry import OPERATIONS, Operation, invoke, load_all

__all__ = ["OPERATIONS", "Context", "Operation", "invoke", "load_all"]
