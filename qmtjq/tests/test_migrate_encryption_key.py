"""`manage.py migrate` and FIELD_ENCRYPTION_KEY: migration qmtjq/0003 encrypts webhook URLs stored in plain
text by earlier versions. Without the key and with such rows, migrate stops before changing anything with
one message saying what to set; without such rows it needs no key.

Each test runs the real `manage.py migrate` in a subprocess on a scratch database of the suite's kind (a
SQLite file, or a scratch database on the MariaDB server when the suite runs there: MariaDB cannot roll
back schema changes, so that is where "nothing half-migrated" is really at stake).
"""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

BASE = Path(settings.BASE_DIR)
BEFORE = "0002_pause_and_names"
ENCRYPTING = "0003_notificationchannel_encrypted_webhook"
BOT_KEY = "693axxx6-7aoc-4bc4-97a0-0ec2sifa5aaa"

# Run inside the scratch database's own process: add channels the way version 0002 stored them, or
# describe what the database holds now (columns, applied migrations, channel rows).
INSERT_OLD_ROWS = """
import django, json, sys
django.setup()
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
apps = MigrationExecutor(connection).loader.project_state(("qmtjq", sys.argv[1])).apps
Channel = apps.get_model("qmtjq", "NotificationChannel")
for name, kind, target in json.loads(sys.argv[2]):
    Channel.objects.create(name=name, kind=kind, target=target)
"""
DESCRIBE = """
import django, json
django.setup()
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
with connection.cursor() as cursor:
    columns = [c.name for c in connection.introspection.get_table_description(cursor, "qmtjq_notificationchannel")]
    cursor.execute("SELECT name, target FROM qmtjq_notificationchannel ORDER BY name")
    rows = [list(row) for row in cursor.fetchall()]
applied = sorted(name for app, name in MigrationRecorder(connection).applied_migrations() if app == "qmtjq")
print(json.dumps({"columns": columns, "rows": rows, "applied": applied}))
"""


@pytest.fixture
def scratch_db(tmp_path):
    """DATABASE_URL of an empty database of the suite's kind, dropped afterwards."""
    if connection.vendor == "sqlite":
        yield f"sqlite:///{tmp_path / 'upgrade.sqlite3'}"
        return
    params = connection.settings_dict
    name = f"test_qmtjq_upgrade_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    port = params.get("PORT") or 3306
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    try:
        yield f"mysql://{params['USER']}{password}@{params.get('HOST') or '127.0.0.1'}:{port}/{name}"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


def _run(database_url: str, *args: str, key: str = "") -> subprocess.CompletedProcess:
    """A command in a process with production settings, as an operator upgrading would run it."""
    env = {
        **{
            k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "FIELD_ENCRYPTION_KEY")
        },
        "DATABASE_URL": database_url,
        "SECRET_KEY": "upgrade-test-secret-key-" + "x" * 40,
        # Set even when empty: a developer's .env must not supply a key behind the test's back.
        "FIELD_ENCRYPTION_KEY": key,
        "DJANGO_SETTINGS_MODULE": "qmtjq.settings",
    }
    return subprocess.run(
        [sys.executable, *args], cwd=BASE, env=env, capture_output=True, text=True, timeout=300
    )


def _migrate(database_url: str, *targets: str, key: str = "") -> subprocess.CompletedProcess:
    return _run(database_url, "manage.py", "migrate", *targets, "--no-input", "-v", "0", key=key)


def _describe(database_url: str) -> dict:
    result = _run(database_url, "-c", DESCRIBE)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_missing_key_with_webhook_rows_stops_before_any_change(scratch_db):
    """Old webhook rows and no key: one clear message, exit 1, no traceback, schema and rows as before;
    with the key set the same command then finishes and stores the URL encrypted."""
    assert _migrate(scratch_db, "qmtjq", BEFORE).returncode == 0
    url = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={BOT_KEY}"
    rows = [["mail", "email", "ops@example.com"], ["wecom", "wecom", url]]
    inserted = _run(scratch_db, "-c", INSERT_OLD_ROWS, BEFORE, json.dumps(rows))
    assert inserted.returncode == 0, inserted.stderr
    before = _describe(scratch_db)

    refused = _migrate(scratch_db)

    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    # Start-up noise before it (log lines, MariaDB's system-check warnings) is not ours; the message
    # is the last thing written, once.
    assert refused.stderr.count("CommandError: ") == 1, refused.stderr
    message = refused.stderr[refused.stderr.index("CommandError: ") :].strip()
    for words in (
        "FIELD_ENCRYPTION_KEY",
        "1 webhook notification channel",
        "nothing was changed",
        "Fernet.generate_key()",
        "migrate again",
    ):
        assert words in message, message
    assert BOT_KEY not in message
    assert _describe(scratch_db) == before  # no new column, 0003 not recorded, URL untouched

    key = "cW10anEtdXBncmFkZS10ZXN0LWtleS0zMi1ieXRlcyE="
    done = _migrate(scratch_db, "qmtjq", key=key)
    assert done.returncode == 0, done.stderr
    after = _describe(scratch_db)
    assert ENCRYPTING in after["applied"] and "url_encrypted" in after["columns"]
    assert dict(map(tuple, after["rows"])) == {
        "mail": "ops@example.com",
        "wecom": "https://qyapi.weixin.qq.com/…",
    }


def test_an_invalid_key_is_refused_the_same_way(scratch_db):
    """A malformed key is not silently used: the same stop, naming the key as invalid (never echoing it)."""
    assert _migrate(scratch_db, "qmtjq", BEFORE).returncode == 0
    rows = [["ding", "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=abc"]]
    assert _run(scratch_db, "-c", INSERT_OLD_ROWS, BEFORE, json.dumps(rows)).returncode == 0

    refused = _migrate(scratch_db, key="not-a-fernet-key")

    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "not a valid Fernet key" in refused.stderr and "not-a-fernet-key" not in refused.stderr
    assert ENCRYPTING not in _describe(scratch_db)["applied"]


def test_without_webhook_rows_migrate_needs_no_key(scratch_db):
    """A fresh install, or one with e-mail channels only, migrates with FIELD_ENCRYPTION_KEY unset."""
    assert _migrate(scratch_db, "qmtjq", BEFORE).returncode == 0
    rows = [["mail", "email", "ops@example.com"], ["empty", "wecom", "  "]]
    assert _run(scratch_db, "-c", INSERT_OLD_ROWS, BEFORE, json.dumps(rows)).returncode == 0

    done = _migrate(scratch_db, "qmtjq")

    assert done.returncode == 0, done.stderr
    assert ENCRYPTING in _describe(scratch_db)["applied"]


def test_undoing_the_migration_without_the_key_stops_before_decrypting(settings):
    """Reversing 0003 decrypts the URLs back: without the key it refuses before touching a row."""
    import importlib

    from django.apps import apps as django_apps
    from django.core.management.base import CommandError

    from qmtjq.channels import channel_create
    from qmtjq.models import NotificationChannel

    channel = channel_create(name="w", kind="wecom", target=f"https://qyapi.weixin.qq.com/send?key={BOT_KEY}")
    stored = NotificationChannel.objects.values("target", "url_encrypted").get(pk=channel.pk)
    migration = importlib.import_module(f"qmtjq.migrations.{ENCRYPTING}")
    settings.FIELD_ENCRYPTION_KEY = ""
    with pytest.raises(CommandError, match="undoing qmtjq.0003.*nothing was changed"):
        migration.webhook_urls_decrypt(django_apps, None)
    assert NotificationChannel.objects.values("target", "url_encrypted").get(pk=channel.pk) == stored
