"""The ``xlsnap`` command line: a thin typer skin over the handlers and projections."""
