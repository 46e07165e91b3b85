"""xlsnapd: the per-host service the ``xlsnap`` client hands its command to (light: the client imports it)."""
