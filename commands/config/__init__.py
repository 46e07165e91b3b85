"""Parsers for xl.cfg domain configs, disk specs and snapshot configs (data only, never eval)."""
