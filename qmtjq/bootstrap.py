"""First-start helpers that must run before Django settings are loaded."""

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_file_has(path: Path, name: str) -> bool:
    if not path.is_file():
        return False
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() == name and value.strip():
            return True
    return False


def ensure_secret_key(env_file: Path | None = None) -> bool:
    """Write a random SECRET_KEY to `.env` when neither it nor the environment has one.

    Returns True when a key was written. A generated key is unique to this
    installation (not a shared default); it is appended so the rest of the
    user's `.env` stays as it was.
    """
    env_file = env_file or BASE_DIR / ".env"
    if os.environ.get("SECRET_KEY") or _env_file_has(env_file, "SECRET_KEY"):
        return False
    key = secrets.token_urlsafe(50)
    lines = env_file.read_text(encoding="utf-8").splitlines() if env_file.is_file() else []
    # An empty `SECRET_KEY=` line (as copied from .env.example) is replaced,
    # not shadowed: the first assignment in the file is the one that counts.
    lines = [line for line in lines if line.strip().replace(" ", "") != "SECRET_KEY="]
    lines.append(f"SECRET_KEY={key}")
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        env_file.chmod(0o600)
    except OSError:  # pragma: no cover - e.g. some Windows filesystems
        pass
    print(f"Generated a random SECRET_KEY in {env_file} (keep this file private).")
    return True
