"""``python -m gristmill`` runs the CLI."""

from gristmill.cli import main

main()
