"""Project-level services used by `manage.py serve` on start."""

import logging
import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

logger = logging.getLogger(__name__)

ADMIN_USERNAME_ENV = "QMTJQ_ADMIN_USERNAME"
ADMIN_PASSWORD_ENV = "QMTJQ_ADMIN_PASSWORD"  # noqa: S105 - the variable's name, not a password
DEFAULT_ADMIN_USERNAME = "admin"


def admin_user_ensure(
    *, username: str | None = None, password: str | None = None
) -> tuple[AbstractBaseUser | None, str | None]:
    """Create the first superuser when the installation has none.

    `username` defaults to `$QMTJQ_ADMIN_USERNAME` (else "admin"), `password`
    to `$QMTJQ_ADMIN_PASSWORD`; without one a random password is generated —
    there is never a fixed default password.

    Returns `(user, generated_password)`: `(None, None)` when a superuser
    already exists (nothing is touched), `(user, None)` when the given or
    configured password was used, `(user, password)` only when this call
    generated the password (the caller must show it once: it is not stored
    in clear anywhere).
    """
    User = get_user_model()
    username = username or os.environ.get(ADMIN_USERNAME_ENV, "").strip() or DEFAULT_ADMIN_USERNAME
    password = password or os.environ.get(ADMIN_PASSWORD_ENV) or None

    with transaction.atomic():
        if User.objects.filter(is_superuser=True).exists():
            return None, None
        if User.objects.filter(**{User.USERNAME_FIELD: username}).exists():
            # Never silently promote (or re-password) an existing account.
            logger.warning(
                "No superuser exists, but user %r does and is not one; not creating an admin. "
                "Run `python manage.py createsuperuser` with another name, or set %s.",
                username,
                ADMIN_USERNAME_ENV,
            )
            return None, None
        generated = None
        if not password:
            generated = password = secrets.token_urlsafe(12)
        user = User.objects.create_superuser(**{User.USERNAME_FIELD: username}, email="", password=password)
    return user, generated
