"""Secrets at rest (Factor Cat passwords and tokens, webhook URLs, bot signing secrets), encrypted with Fernet.

The key comes from the environment variable FIELD_ENCRYPTION_KEY (through
`settings.FIELD_ENCRYPTION_KEY`), never from the code: the older desktop tool
kept its key in the source, so anyone with the source could read every stored
password (DESIGN §9).

FIELD_ENCRYPTION_KEY holds one Fernet key, or several separated by commas to
rotate keys: the first encrypts, every one of them decrypts. To rotate,
prepend a new key, run `python manage.py reencrypt_secrets` (or simply
re-enter the secrets), then drop the old key. Generate a key with

    python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_SETTING = "FIELD_ENCRYPTION_KEY"
GENERATE_HINT = (
    'generate one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


class CryptoError(Exception):
    """Base class: a secret could not be encrypted or decrypted."""


class EncryptionKeyMissing(CryptoError, ImproperlyConfigured):
    """FIELD_ENCRYPTION_KEY is empty or not a valid Fernet key."""


class DecryptionFailed(CryptoError):
    """A stored secret was encrypted with a key no longer in FIELD_ENCRYPTION_KEY, or was altered."""


def generate_key() -> str:
    """A new random Fernet key, as text for FIELD_ENCRYPTION_KEY."""
    return Fernet.generate_key().decode("ascii")


@lru_cache(maxsize=8)
def _fernet_for(keys: str) -> MultiFernet:
    parts = [part.strip() for part in keys.split(",") if part.strip()]
    if not parts:
        raise EncryptionKeyMissing(
            f"{KEY_SETTING} is not set: secrets such as the Factor Cat password are stored encrypted "
            f"with it. Set it in the environment or in .env; {GENERATE_HINT}"
        )
    fernets = []
    for position, part in enumerate(parts, start=1):
        try:
            fernets.append(Fernet(part))
        except (ValueError, TypeError):
            # Never echo the key itself: it is a secret even when malformed.
            raise EncryptionKeyMissing(
                f"{KEY_SETTING} key {position} of {len(parts)} is not a valid Fernet key "
                f"(32 url-safe base64-encoded bytes); {GENERATE_HINT}"
            ) from None
    return MultiFernet(fernets)


def _fernet() -> MultiFernet:
    return _fernet_for(str(getattr(settings, KEY_SETTING, "") or ""))


def encrypt(text: str) -> str:
    """Encrypt `text` with the first key of FIELD_ENCRYPTION_KEY; returns ASCII text for a TextField."""
    return _fernet().encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """Decrypt a value made by `encrypt` with any key of FIELD_ENCRYPTION_KEY."""
    fernet = _fernet()
    try:
        return fernet.decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise DecryptionFailed(
            f"A stored secret cannot be decrypted with {KEY_SETTING}: it was encrypted with another "
            f"key or altered. Put the old key back (comma-separated after the new one) or enter the "
            f"secret again."
        ) from None


def reencrypt(token: str) -> str:
    """The same secret encrypted with the current first key (after a key rotation)."""
    fernet = _fernet()
    try:
        return fernet.rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise DecryptionFailed(
            f"A stored secret cannot be decrypted with {KEY_SETTING}; it cannot be re-encrypted."
        ) from None
