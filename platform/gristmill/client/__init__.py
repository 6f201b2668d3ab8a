"""How the CLI reaches the service layer: directly (as the local OS user) or through a server.

With ``GRISTMILL_URL`` set, or after ``gristmill login``, every command that acts on a project goes
through the API as the logged-in user; with neither it runs locally on the workspace.
"""

from gristmill.client.dispatch import call, server_target

__all__ = ["call", "server_target"]
