"""Handlers: one module per operation, each a function of a command and its dependencies."""
