"""Writes for execution, one module per topic: state, orders, rounds, lease, accounts."""
