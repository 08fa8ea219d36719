"""Rotation admin, one module per topic (registration happens on import).

- accounts: Factor Cat accounts (write-only password, "Log in now"); browse: their
  strategies and backtest records, from which a rotation strategy is created.
- rotations: rotation strategies, "Run now" and "Dry run" behind confirmation pages.
- selections: the CSV upload of a day's selection; selections, runs and
  take-profit/stop-loss events as read-only records.
"""

from . import accounts, browse, rotations, selections  # noqa: F401
