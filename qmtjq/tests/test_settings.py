"""Settings come from the environment with safe defaults; .env.example documents them all."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def load_settings(**env) -> subprocess.CompletedProcess:
    """Import the real settings module in a fresh interpreter with only `env` set."""
    code = (
        "import json, qmtjq.settings as s; "
        "print(json.dumps({'DEBUG': s.DEBUG, 'DB': s.DATABASES['default'], 'TZ': s.TIME_ZONE, "
        "'LANG': s.LANGUAGE_CODE, 'LANGUAGE_FROM_BROWSER': getattr(s, 'LANGUAGE_FROM_BROWSER', None), 'TRADING': s.TRADING_ENABLED, 'HOSTS': s.ALLOWED_HOSTS}, default=str))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME", "SYSTEMROOT")}
    # Explicit empty values win over a developer's .env (environ never overrides set variables).
    base = {"SECRET_KEY": "", "DEBUG": "", "DATABASE_URL": f"sqlite:///{BASE_DIR / 'db.sqlite3'}"}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **base, **env},
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
    )


def test_secret_key_required_when_debug_off():
    result = load_settings()
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_debug_allows_a_local_key_and_defaults_are_safe():
    result = load_settings(DEBUG="true")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["TZ"] == "Asia/Shanghai" and values["LANG"] == "zh-hans"
    assert values["DB"]["ENGINE"] == "django.db.backends.sqlite3"


def test_debug_is_off_by_default():
    result = load_settings(SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["DEBUG"] is False
    assert values["TRADING"] is True
    assert "*" not in values["HOSTS"]


def test_mysql_url_uses_utf8mb4_and_read_committed():
    result = load_settings(SECRET_KEY="x" * 50, DATABASE_URL="mysql://u:p@127.0.0.1:3306/qmtjq")
    assert result.returncode == 0, result.stderr
    db = json.loads(result.stdout)["DB"]
    assert db["ENGINE"] == "django.db.backends.mysql"
    assert db["OPTIONS"]["charset"] == "utf8mb4"
    assert db["OPTIONS"]["isolation_level"] == "read committed"


def test_env_example_lists_every_variable():
    """Every variable the code reads appears in .env.example (commented or not)."""
    example = (BASE_DIR / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    used = set()
    for path in BASE_DIR.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"\benv\.\w+\(\s*\"([A-Z][A-Z0-9_]+)\"", text))
        used |= set(re.findall(r"os\.environ\.get\(\s*\"((?:QMTJQ|Q)_[A-Z0-9_]+)\"", text))
    assert used, "found no environment variables at all"
    missing = used - documented
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_favicon_is_served(client, superuser):
    """Browsers ask for /favicon.ico on every page; it answers with an icon, not a 404 in the log."""
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    body = b"".join(response) if response.streaming else response.content
    assert body[:4] == b"\x00\x00\x01\x00"  # the ICO header
    client.force_login(superuser)
    assert b'rel="icon"' in client.get("/").content
