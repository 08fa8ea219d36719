"""Run the public jq2qmt server (Flask) beside qmtjq under the same load (benchmarks/ingest.py --peer).

jq2qmt is not part of this repository: bring a checkout of it (its `src/app.py`
is the Flask app) and an interpreter that has its requirements (Flask,
Flask-SQLAlchemy) and waitress, e.g.

    python -m venv /tmp/jq2qmt-venv
    /tmp/jq2qmt-venv/bin/pip install Flask Flask-SQLAlchemy waitress cryptography
    python benchmarks/ingest.py --peer /tmp/jq2qmt --peer-python /tmp/jq2qmt-venv/bin/python

Its `config.py` is not in the repository (a template is); we write one into a
temp folder on its PYTHONPATH: SQLite file in that folder, simple API key
mode (`CRYPTO_AUTH_CONFIG["ENABLED"] = False`), which is the API-key mode of
qmtjq's benchmark. jq2qmt answers the same `POST /api/v1/positions/update`
body; it overwrites one JSON row per strategy and keeps no history.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

PEER_API_KEY = "peer-benchmark-key-0123456789"

CONFIG_PY = """
SQLALCHEMY_DATABASE_URI = {uri!r}
API_HOST = "127.0.0.1"
API_PORT = 5366
CRYPTO_AUTH_CONFIG = {{"ENABLED": False, "SIMPLE_API_KEY": {key!r}, "TOKEN_MAX_AGE": 300}}
"""


class PeerSetup:
    """A temp folder with jq2qmt's config.py and SQLite database; `env` and `argv` start it under waitress."""

    def __init__(self, checkout: Path, python: str, threads: int) -> None:
        self.checkout = checkout.resolve()
        src = self.checkout / "src"
        if not (src / "app.py").is_file():
            raise SystemExit(f"--peer {checkout}: no src/app.py (expected a jq2qmt checkout)")
        self.src = src
        self.tmp = Path(tempfile.mkdtemp(prefix="jq2qmt-bench-"))
        uri = f"sqlite:///{self.tmp / 'jq2qmt.sqlite3'}"
        (self.tmp / "config.py").write_text(CONFIG_PY.format(uri=uri, key=PEER_API_KEY), encoding="utf-8")
        self.python = python
        self.threads = threads

    def argv(self, port: int) -> list[str]:
        return [
            self.python,
            "-m",
            "waitress",
            f"--listen=127.0.0.1:{port}",
            f"--threads={self.threads}",
            "app:app",
        ]

    def env(self, base: dict[str, str]) -> dict[str, str]:
        env = dict(base)
        env["PYTHONPATH"] = f"{self.tmp}{_pathsep()}{self.src}"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def drop(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _pathsep() -> str:
    import os

    return os.pathsep
