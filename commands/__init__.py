"""Command side of xlsnap: commands, their handlers, drivers for side effects, the CLI."""
