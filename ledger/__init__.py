"""The event ledger: the domain aggregate, its events, the msgpack transcoder and the application.

Free of side effects on hypervisors and disks; imports neither ``commands`` nor ``projections``.
"""
