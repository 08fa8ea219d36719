"""Settings for the test suite: the real settings plus a throwaway key.

DATABASE_URL still decides the database, so CI runs the same suite on
SQLite and on MariaDB.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
# A throwaway Fernet key for tests only (production reads FIELD_ENCRYPTION_KEY from the environment).
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "dGVzdC1vbmx5LWZpZWxkLWtleS0zMi1ieXRlcyEhISE=")

from qmtjq.settings import *  # noqa: E402,F403

# Hashing admin passwords fast keeps the suite quick; API keys are not
# passwords and use their own SHA-256 digests regardless.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    import tempfile
    from pathlib import Path

    # A file, not :memory:, so server threads in tests get their own
    # connections (as in production) instead of sharing one.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(Path(tempfile.gettempdir()) / f"qmtjq-test-{os.getpid()}.sqlite3")
    }

# Tests do not run collectstatic; let WhiteNoise find files through the finders
# instead of warning on every request that STATIC_ROOT does not exist yet.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True

# Send notifications inline so tests can assert deliveries; one test covers the background sender.
NOTIFICATION_SEND_ASYNC = False

# Page tests ask for English with Accept-Language whatever the developer's LANGUAGE_CODE is;
# qmtjq/tests/test_language.py sets this per test to check both ways.
LANGUAGE_FROM_BROWSER = True

# Tests clear the cache around each test, also tests without database access:
# a process-local cache keeps that possible. The production default, the shared
# database cache, is what qmtjq/tests/test_web_processes.py runs its two real
# web processes with (rate limit and credential changes across processes).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "qmtjq-tests"}}
