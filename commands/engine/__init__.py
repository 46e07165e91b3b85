"""The step engine: an operation's plan run step by step, recorded, undone on failure."""
