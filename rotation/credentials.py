"""Factor Cat credentials: the encrypted password, a valid token on demand, one re-login on 401.

The password and the token are stored encrypted (`qmtjq.crypto`,
FIELD_ENCRYPTION_KEY) and are never logged. A token is reused while it stays
valid for more than REFRESH_MARGIN; after that, when the user chose "remember
password", we log in again by ourselves. A failed login is written to the
account's `last_error` and notified.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from django.utils import timezone
from django.utils.translation import gettext as _

from qmtjq import crypto
from qmtjq.notifications import EVENT_FACTORCAT_LOGIN_FAILED, notify

from .factorcat import FactorCatAuthError, FactorCatClient, FactorCatError, token_expires_at, token_tail
from .models import FactorCatAccount

logger = logging.getLogger(__name__)

# Log in again this long before the token expires, so a job never starts with a token that dies mid-way.
REFRESH_MARGIN = timedelta(minutes=10)

T = TypeVar("T")


def factorcat_password_set(*, account: FactorCatAccount, password: str) -> None:
    """Store the password encrypted; an empty password forgets it."""
    account.password_encrypted = crypto.encrypt(password) if password else ""
    account.save(update_fields=["password_encrypted"])


def _client(account: FactorCatAccount, token: str | None = None) -> FactorCatClient:
    return FactorCatClient(account.base_url, token=token, verify_tls=account.verify_tls)


def _stored_token(account: FactorCatAccount) -> str | None:
    if not account.token_encrypted:
        return None
    try:
        return crypto.decrypt(account.token_encrypted)
    except crypto.CryptoError as exc:
        # The token can always be replaced by a new login; say why we could not use it.
        logger.warning("Factor Cat account %s: stored token unusable: %s", account.name, exc)
        return None


def _token_fresh(account: FactorCatAccount, now: datetime) -> bool:
    # A token without a readable expiry is used until the server refuses it (with_relogin handles that).
    return account.token_expires_at is None or account.token_expires_at - now > REFRESH_MARGIN


def _cause(exc: Exception | None = None, *, status: int | None = None, fallback: str = "") -> str:
    """A short key for why a login failed (an HTTP status, else the error's kind), so causes fold apart."""
    status = status if status is not None else getattr(exc, "status", None)
    if status is not None:
        return f"http-{status}"
    return fallback or (type(exc).__name__ if exc is not None else "unknown")


def _answered(exc: FactorCatError) -> str:
    """The server's words with what they answer: 'Factor Cat answered HTTP 500: <detail>'."""
    if exc.status is None:
        return str(exc)  # no answer at all: the message already says "could not be reached" and the like
    return f"Factor Cat answered HTTP {exc.status}: {exc}"


def _login_failed(
    account: FactorCatAccount, message: str, *, cause: str, status: int | None = None
) -> FactorCatAuthError:
    """Record and notify a failed login; notifications fold per account and cause (a new cause is told)."""
    account.last_error = message
    account.save(update_fields=["last_error"])
    logger.warning("Factor Cat account %s: %s", account.name, message)
    notify(
        EVENT_FACTORCAT_LOGIN_FAILED,
        title=lambda: _("Factor Cat login failed: %(account)s (%(cause)s)") % {"account": account.name, "cause": cause},
        body=message,  # Factor Cat's own answer, as it said it
        key=f"{account.name}:{cause}",
    )
    return FactorCatAuthError(message, status)


def factorcat_login(
    *, account: FactorCatAccount, password: str, now: datetime | None = None
) -> FactorCatClient:
    """Log in, switch to a long-term token when the server offers one, store the token encrypted.

    On failure: `last_error` is recorded, a notification is sent and
    FactorCatAuthError raised (whatever the cause: refused, unreachable, no key).
    """
    now = now or timezone.now()
    client = _client(account)
    try:
        client.login(account.username, password)
        try:
            client.long_term_token()
        except FactorCatError as exc:
            # Optional on the server side; the login token still works until it expires.
            logger.info(
                "Factor Cat account %s: no long-term token (%s); using the login token", account.name, exc
            )
        account.token_encrypted = crypto.encrypt(client.token)
    except FactorCatError as exc:
        raise _login_failed(
            account,
            f"Login as {account.username!r} failed: {_answered(exc)}",
            cause=_cause(exc),
            status=exc.status,
        ) from None
    except crypto.CryptoError as exc:
        raise _login_failed(
            account, f"Login as {account.username!r} failed: {exc}", cause=_cause(exc)
        ) from None
    account.token_expires_at = token_expires_at(client.token)
    account.last_login_at = now
    account.last_error = ""
    account.save(update_fields=["token_encrypted", "token_expires_at", "last_login_at", "last_error"])
    logger.info(
        "Factor Cat account %s logged in; token %s expires %s",
        account.name,
        token_tail(client.token),
        account.token_expires_at,
    )
    return client


def factorcat_client_for(
    *, account: FactorCatAccount, now: datetime | None = None, force_login: bool = False
) -> FactorCatClient:
    """A client holding a token valid for more than REFRESH_MARGIN, logging in again when allowed."""
    now = now or timezone.now()
    if not force_login and _token_fresh(account, now) and (token := _stored_token(account)):
        return _client(account, token)
    if not (account.remember_password and account.password_encrypted):
        raise _login_failed(
            account,
            "No usable Factor Cat token (none stored, expired, or expiring within 10 minutes) and no "
            "password is remembered: log in again in admin (or turn on 'remember password').",
            cause="no-password",
        )
    try:
        password = crypto.decrypt(account.password_encrypted)
    except crypto.CryptoError as exc:
        raise _login_failed(
            account, f"The stored password cannot be used: {exc}", cause=_cause(exc, fallback="password-key")
        ) from None
    return factorcat_login(account=account, password=password, now=now)


def _forget_token(account: FactorCatAccount) -> None:
    account.token_encrypted = ""
    account.token_expires_at = None
    account.save(update_fields=["token_encrypted", "token_expires_at"])


def with_relogin(
    account: FactorCatAccount, fn: Callable[[FactorCatClient], T], *, now: datetime | None = None
) -> T:
    """Run `fn(client)`; when the server refuses the token (401), log in again once and retry."""
    client = factorcat_client_for(account=account, now=now)
    try:
        return fn(client)
    except FactorCatAuthError as exc:
        # The server revoked or rejected a token we thought valid: it is useless from now on.
        _forget_token(account)
        if not (account.remember_password and account.password_encrypted):
            raise _login_failed(
                account,
                f"Factor Cat refused the stored token ({_answered(exc)}) and no password is remembered: "
                "log in again in admin.",
                cause=f"token-{_cause(exc)}",
                status=exc.status,
            ) from None
        logger.info("Factor Cat account %s: token refused (%s); logging in again", account.name, exc)
    return fn(factorcat_client_for(account=account, now=now, force_login=True))


def factorcat_secrets_reencrypt() -> int:
    """Re-encrypt every stored password and token with the first FIELD_ENCRYPTION_KEY (key rotation)."""
    changed = 0
    for account in FactorCatAccount.objects.exclude(password_encrypted="", token_encrypted=""):
        fields = [f for f in ("password_encrypted", "token_encrypted") if getattr(account, f)]
        for field in fields:
            setattr(account, field, crypto.reencrypt(getattr(account, field)))
        account.save(update_fields=fields)
        changed += 1
    return changed
