"""Admin of the execution app, one module per topic (registration happens on import)."""

from . import accounts, calendar, orders, paper, remote, state  # noqa: F401
