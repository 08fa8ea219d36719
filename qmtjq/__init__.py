"""qmtjq: a real brokerage account following JoinQuant strategies and convertible-bond rotations."""

# The one place the version is written; `serve`'s banner and the admin footer read it.
__version__ = "0.10.0"
