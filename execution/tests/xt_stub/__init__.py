"""Test stand-in for xtquant's native parts, so the genuine xttrader.py runs on Linux.

`genuine_xtquant()` makes `import xtquant.xttrader` load the installed, unmodified
xttrader.py, xttype.py and xtconstant.py, with `xtquant.xtpythonclient` (a Windows
.pyd) replaced by the plain-Python `xtpythonclient` here, backed by `FakeMiniQmt`.

The installed `xtquant/__init__.py` is never executed: it asks pypi.org for the
latest version (10 s timeout). An empty package module whose `__path__` points
at the installed xtquant folder stands in for it, so submodules still load from
the real files and no test touches the network.
"""

import contextlib
import importlib.machinery
import socket
import sys
import types

from . import xtpythonclient
from .miniqmt import FakeMiniQmt, terminals_reset

__all__ = ["FakeMiniQmt", "genuine_xtquant", "refuse_network", "xtpythonclient"]

PIP_REQUIREMENT = "xtquant==250807.1.2"


def _is_xtquant(name):
    return name == "xtquant" or name.startswith("xtquant.")


@contextlib.contextmanager
def genuine_xtquant():
    """Within the block, `xtquant.*` imports load the installed files over the stand-in; undone on exit."""
    # PathFinder locates the installed package without executing its __init__.
    spec = importlib.machinery.PathFinder.find_spec("xtquant")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"xtquant is not installed; the xtquant tests need it: pip install {PIP_REQUIREMENT}"
        )
    saved = {name: module for name, module in sys.modules.items() if _is_xtquant(name)}
    for name in saved:
        del sys.modules[name]
    package = types.ModuleType("xtquant", "xtquant without its network version check (see xt_stub)")
    package.__path__ = list(spec.submodule_search_locations)
    package.__package__ = "xtquant"
    package.xtpythonclient = xtpythonclient
    sys.modules["xtquant"] = package
    sys.modules["xtquant.xtpythonclient"] = xtpythonclient
    terminals_reset()
    try:
        yield package
    finally:
        terminals_reset()
        for name in [name for name in sys.modules if _is_xtquant(name)]:
            del sys.modules[name]
        sys.modules.update(saved)


def refuse_network(monkeypatch):
    """Fail any test that tries to open a connection (xtquant's real __init__ would call pypi.org)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a test tried to open a network connection: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
