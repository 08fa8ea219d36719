"""Fixtures shared by every app's tests."""

import pytest

from positions import services, tokens


@pytest.fixture(scope="session")
def rsa_keys():
    """One 2048-bit key pair for the whole run (generation is slow): (private PEM, public PEM)."""
    private_pem, public_pem = tokens.key_pair_generate(2048)
    return private_pem, public_pem.decode("ascii")


@pytest.fixture
def make_api_client(db, rsa_keys):
    """Create an API client; returns (client, api_key). RSA public key attached unless rsa=False."""

    def make(name="jq", *, rsa=True, **kwargs):
        return services.api_client_create(name=name, public_key_pem=rsa_keys[1] if rsa else "", **kwargs)

    return make


@pytest.fixture
def staff_user(db, django_user_model):
    return django_user_model.objects.create_user("staff", password="pw-for-tests-only", is_staff=True)


@pytest.fixture
def superuser(db, django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-for-tests-only")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters live in the cache, keyed by client pk, and pks repeat across tests."""
    from django.core.cache import cache

    from qmtjq.credential_cache import credential_cache

    cache.clear()
    credential_cache.clear()
    yield
