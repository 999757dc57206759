"""Operator commands: replay, status, verify and trace (docs/operations.md).

Each command module reads the pipeline's state through small adapters in this package and
never writes anything but what it names (replay: the indexer group's committed offsets).
"""
