"""``python -m commands.service`` runs xlsnapd."""

from commands.service.daemon import entry_point

entry_point()
