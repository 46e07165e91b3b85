"""Read models projected from the ledger: snapshot trees, history, renderings.

Projections read the event log and never run a side effect.
"""
