"""Admin of the execution app, one module per topic (registration happens on import)."""

from . import accounts, calendar, orders, paper, state  # noqa: F401
