"""``python -m commands`` runs the xlsnap CLI (through xlsnapd when it listens)."""

from commands.service.client import entry_point

entry_point()
