"""Modules split by topic stay small, and every name callers import from the old place still works."""

import importlib
from pathlib import Path

import pytest
from django.conf import settings

BASE = Path(settings.BASE_DIR)
MAX_LINES = 400  # HELPERS/STYLE: modules stay under ~400 lines, split by topic

# Names importable from `positions.services` before the split (callers, tests, benchmarks use them).
POSITIONS_SERVICES_NAMES = [
    "IngestResult",
    "positions_hash",
    "strategy_get",
    "strategy_get_or_create",
    "snapshot_ingest",
    "target_write",
    "INGEST_ATTEMPTS",
    "api_client_create",
    "api_client_key_issue",
    "api_client_rotate_key",
    "api_client_revoke_keys",
    "api_client_auth_failed",
    "api_client_set_enabled",
    "CLIENT_FILE",
    "client_file_render",
]
SERVE_NAMES = [
    "Command",
    "IS_WINDOWS",
    "JOBS_CLUSTER",
    "JOBS_INPROCESS",
    "JOBS_OFF",
    "CLUSTER_STOP_TIMEOUT",
    "JOB_LOGGERS",
    "WEB_GRANIAN",
    "WEB_WAITRESS",
]


@pytest.mark.parametrize(
    "path",
    [
        "qmtjq/management/commands/serve.py",
        "qmtjq/serve_cluster_child.py",
        "qmtjq/serve_console.py",
        "positions/services.py",
        "positions/services_clients.py",
        "positions/services_strategies.py",
    ],
)
def test_split_modules_stay_under_the_limit(path):
    """Each module of the split exists and is below the size the style guide allows."""
    lines = (BASE / path).read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{path}: {lines} lines"


@pytest.mark.parametrize(
    ("module", "names"),
    [("positions.services", POSITIONS_SERVICES_NAMES), ("qmtjq.management.commands.serve", SERVE_NAMES)],
)
def test_old_import_paths_keep_working(module, names):
    """`from positions.services import api_client_create` (and the rest) still works after the split."""
    imported = importlib.import_module(module)
    assert [name for name in names if not hasattr(imported, name)] == []


def test_moved_names_are_the_same_objects():
    """Re-exports are the moved functions themselves, not copies that could drift apart."""
    from positions import services, services_clients, services_strategies

    assert services.api_client_create is services_clients.api_client_create
    assert services.client_file_render is services_clients.client_file_render
    assert services.strategy_get_or_create is services_strategies.strategy_get_or_create
