"""``python -m commands`` runs the xlsnap CLI."""

from commands.cli.main import entry_point

entry_point()
