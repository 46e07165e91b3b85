"""Fault injectors used by the tests at the driver boundary."""
