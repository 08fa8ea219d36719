"""First-start helpers: the generated SECRET_KEY and the first admin user."""

import os
import stat

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.test import RequestFactory

from qmtjq.bootstrap import ensure_secret_key
from qmtjq.services import admin_user_ensure

# --- ensure_secret_key (runs before settings; no database) -----------------


def _login_request():
    """django-axes needs the request to count a login attempt (per user and per address)."""
    return RequestFactory().post("/admin/login/")


@pytest.fixture
def no_env_key(monkeypatch):
    # settings_test puts a SECRET_KEY into os.environ; these tests need none.
    monkeypatch.delenv("SECRET_KEY", raising=False)


def _keys(path):
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("SECRET_KEY=")]


def test_secret_key_written_once_to_new_file(tmp_path, no_env_key):
    env_file = tmp_path / ".env"
    assert ensure_secret_key(env_file) is True
    (line,) = _keys(env_file)
    key = line.partition("=")[2]
    assert len(key) >= 50
    assert ensure_secret_key(env_file) is False
    assert _keys(env_file) == [line]


def test_secret_key_keeps_other_lines(tmp_path, no_env_key):
    env_file = tmp_path / ".env"
    env_file.write_text("# my settings\nDEBUG=False\nDATABASE_URL=sqlite:///x.db", encoding="utf-8")
    assert ensure_secret_key(env_file) is True
    lines = env_file.read_text(encoding="utf-8").splitlines()
    assert lines[:3] == ["# my settings", "DEBUG=False", "DATABASE_URL=sqlite:///x.db"]
    assert lines[3].startswith("SECRET_KEY=") and len(lines) == 4


def test_secret_key_never_overwrites_existing_key(tmp_path, no_env_key):
    env_file = tmp_path / ".env"
    original = "A=1\n SECRET_KEY = keep-me \nB=2\n"
    env_file.write_text(original, encoding="utf-8")
    assert ensure_secret_key(env_file) is False
    assert env_file.read_text(encoding="utf-8") == original


def test_secret_key_empty_value_gets_a_key(tmp_path, no_env_key):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=\n", encoding="utf-8")
    assert ensure_secret_key(env_file) is True
    assert any(line.partition("=")[2] for line in _keys(env_file))


def test_secret_key_from_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    env_file = tmp_path / ".env"
    assert ensure_secret_key(env_file) is False
    assert not env_file.exists()


def test_secret_keys_are_random(tmp_path, no_env_key):
    a, b = tmp_path / "a.env", tmp_path / "b.env"
    ensure_secret_key(a)
    ensure_secret_key(b)
    assert _keys(a) != _keys(b)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_secret_key_file_is_private(tmp_path, no_env_key):
    env_file = tmp_path / ".env"
    ensure_secret_key(env_file)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


# --- admin_user_ensure --------------------------------------------------------


@pytest.fixture
def admin_env(monkeypatch):
    monkeypatch.delenv("QMTJQ_ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("QMTJQ_ADMIN_PASSWORD", raising=False)
    return monkeypatch


@pytest.mark.django_db
def test_admin_created_with_random_password(admin_env):
    user, password = admin_user_ensure()
    assert user is not None and user.is_superuser and user.is_staff
    assert user.get_username() == "admin"
    assert password and len(password) >= 16
    assert authenticate(_login_request(), username="admin", password=password) == user
    assert get_user_model().objects.filter(is_superuser=True).count() == 1

    # Not fixed: another installation gets another password.
    get_user_model().objects.all().delete()
    _, second = admin_user_ensure()
    assert second and second != password


@pytest.mark.django_db
def test_admin_uses_configured_name_and_password(admin_env):
    admin_env.setenv("QMTJQ_ADMIN_USERNAME", "boss")
    admin_env.setenv("QMTJQ_ADMIN_PASSWORD", "a-long-configured-pass")
    user, generated = admin_user_ensure()
    assert generated is None
    assert user.get_username() == "boss"
    assert authenticate(_login_request(), username="boss", password="a-long-configured-pass") == user


@pytest.mark.django_db
def test_admin_not_touched_when_a_superuser_exists(admin_env):
    User = get_user_model()
    User.objects.create_superuser(username="owner", email="", password="pw-owner-1")
    admin_env.setenv("QMTJQ_ADMIN_PASSWORD", "other-password")
    assert admin_user_ensure() == (None, None)
    assert list(User.objects.values_list("username", flat=True)) == ["owner"]
    assert authenticate(_login_request(), username="owner", password="pw-owner-1") is not None


@pytest.mark.django_db
def test_admin_existing_plain_user_is_not_promoted(admin_env):
    User = get_user_model()
    User.objects.create_user(username="admin", password="plain-user-pw")
    assert admin_user_ensure() == (None, None)
    user = User.objects.get(username="admin")
    assert not user.is_superuser
    assert user.check_password("plain-user-pw")


# --- commands that sign nothing run without a SECRET_KEY ---------------------


@pytest.mark.slow
def test_makemigrations_check_runs_without_a_secret_key(tmp_path):
    """`makemigrations --check` (CI, the before-stop hook) needs no SECRET_KEY: it signs nothing."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    if (root / ".env").exists():
        pytest.skip("a developer .env is present; this proves the clean-clone case")
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DJANGO_SETTINGS_MODULE"}}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    done = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert not (root / ".env").exists(), "the throwaway key must not be written anywhere"


@pytest.mark.slow
def test_serving_commands_still_demand_a_secret_key(tmp_path):
    """A command that signs (runserver, check --deploy) still fails loudly without a SECRET_KEY."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    if (root / ".env").exists():
        pytest.skip("a developer .env is present; this proves the clean-clone case")
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DJANGO_SETTINGS_MODULE", "DEBUG"}}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "SECRET_KEY is required" in done.stderr
