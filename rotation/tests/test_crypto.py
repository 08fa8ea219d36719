"""Secrets at rest (qmtjq.crypto): Fernet keyed from FIELD_ENCRYPTION_KEY, with key rotation."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from qmtjq import crypto


def new_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def key(settings):
    settings.FIELD_ENCRYPTION_KEY = new_key()
    return settings.FIELD_ENCRYPTION_KEY


@pytest.mark.parametrize("secret", ["correct horse 42", "因子猫密码 ✓", ""])
def test_round_trip(key, secret):
    """What is encrypted decrypts to the same text, and the ciphertext does not contain it."""
    token = crypto.encrypt(secret)
    assert crypto.decrypt(token) == secret
    if secret:
        assert secret not in token


def test_same_secret_encrypts_differently_each_time(key):
    """Two encryptions of one password differ, so equal passwords are not visible as equal rows."""
    assert crypto.encrypt("same") != crypto.encrypt("same")


def test_wrong_key_is_a_clear_error(settings, key):
    """A value encrypted under another key fails with an error naming FIELD_ENCRYPTION_KEY and the way out."""
    token = crypto.encrypt("secret")
    settings.FIELD_ENCRYPTION_KEY = new_key()
    with pytest.raises(crypto.DecryptionFailed, match="FIELD_ENCRYPTION_KEY") as caught:
        crypto.decrypt(token)
    assert "enter the secret again" in str(caught.value)


def test_altered_ciphertext_is_refused(key):
    """A tampered value is refused, never decrypted to something else."""
    token = crypto.encrypt("secret")
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(token[:-6] + ("A" * 6 if not token.endswith("A" * 6) else "B" * 6))


@pytest.mark.parametrize("value", ["", "  ", " , "])
def test_missing_key_names_the_variable(settings, value):
    """Without a key, encrypting and decrypting both fail with ImproperlyConfigured naming FIELD_ENCRYPTION_KEY."""
    settings.FIELD_ENCRYPTION_KEY = value
    with pytest.raises(crypto.EncryptionKeyMissing, match="FIELD_ENCRYPTION_KEY is not set"):
        crypto.encrypt("secret")
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY"):
        crypto.decrypt("gAAAA-anything")


def test_absent_setting_is_treated_as_missing(settings):
    """Before settings define FIELD_ENCRYPTION_KEY at all, the error is the same clear one (no key in code)."""
    if hasattr(settings, "FIELD_ENCRYPTION_KEY"):
        del settings.FIELD_ENCRYPTION_KEY
    with pytest.raises(crypto.EncryptionKeyMissing, match="FIELD_ENCRYPTION_KEY is not set"):
        crypto.encrypt("secret")


def test_invalid_key_names_the_variable_without_echoing_it(settings):
    """A malformed key is reported by position, the key text itself never repeated."""
    settings.FIELD_ENCRYPTION_KEY = f"{new_key()},not-a-fernet-key-xyz"
    with pytest.raises(crypto.EncryptionKeyMissing) as caught:
        crypto.encrypt("secret")
    message = str(caught.value)
    assert "FIELD_ENCRYPTION_KEY key 2 of 2 is not a valid Fernet key" in message
    assert "not-a-fernet-key-xyz" not in message
    assert "Fernet.generate_key()" in message


def test_key_rotation_old_key_still_decrypts_new_key_encrypts(settings):
    """With 'new,old' the old ciphertexts still decrypt; new ones are under the new key; reencrypt moves old ones over."""
    old, new = new_key(), new_key()
    settings.FIELD_ENCRYPTION_KEY = old
    old_token = crypto.encrypt("secret")

    settings.FIELD_ENCRYPTION_KEY = f"{new}, {old}"
    assert crypto.decrypt(old_token) == "secret"
    new_token = crypto.encrypt("fresh")
    moved = crypto.reencrypt(old_token)

    settings.FIELD_ENCRYPTION_KEY = new
    assert crypto.decrypt(new_token) == "fresh"
    assert crypto.decrypt(moved) == "secret"
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(old_token)


def test_generated_key_is_usable(settings):
    """generate_key() gives a key FIELD_ENCRYPTION_KEY accepts."""
    settings.FIELD_ENCRYPTION_KEY = crypto.generate_key()
    assert crypto.decrypt(crypto.encrypt("x")) == "x"
