"""Drivers for side effects: argv lists, no shell, timeouts, stderr kept, typed errors."""
