"""Admin login lockout (django-axes): per user name and per address, shown in admin, lifted by time or a superuser."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


def attempt(client, username, password, ip="10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def lock(client, settings, username="staff", ip="10.0.0.1"):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, username, "wrong", ip)


def test_wrong_passwords_lock_the_user_and_the_right_one_then_fails(client, staff_user, settings):
    """After the failure limit even the right password is refused, with a page that says it is locked."""
    lock(client, settings)
    response = attempt(client, "staff", "pw-for-tests-only")
    assert response.status_code == 429
    assert 'id="login-locked"' in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_lock_is_per_address_too(client, staff_user, django_user_model, settings):
    """Guessing many user names from one address locks the address."""
    for index in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, f"guess{index}", "wrong", "10.0.0.9")
    assert attempt(client, "staff", "pw-for-tests-only", "10.0.0.9").status_code == 429


def test_lock_is_per_user_name_from_any_address(client, staff_user, settings):
    lock(client, settings, ip="10.0.0.1")
    assert attempt(client, "staff", "pw-for-tests-only", "10.0.0.2").status_code == 429


def test_below_the_limit_the_right_password_works(client, staff_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, "staff", "wrong")
    assert attempt(client, "staff", "pw-for-tests-only").status_code == 302


def test_lock_ends_after_the_cooloff(client, staff_user, settings):
    lock(client, settings)
    past = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=past)
    assert attempt(client, "staff", "pw-for-tests-only").status_code == 302


def test_superuser_sees_and_lifts_the_lock_in_admin(client, staff_user, superuser, settings):
    """Access attempts are listed in admin; deleting them unlocks at once."""
    lock(client, settings)
    admin = type(client)()
    admin.force_login(superuser)
    listing = admin.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200 and "staff" in listing.content.decode()
    ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    admin.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert not AccessAttempt.objects.exists()
    assert attempt(client, "staff", "pw-for-tests-only").status_code == 302


def test_api_keys_are_not_affected_by_login_lockout(client, make_api_client, staff_user, settings):
    """The lockout guards the admin login; API clients authenticate with their own credentials."""
    _api_client, key = make_api_client()
    lock(client, settings, ip="127.0.0.1")
    assert client.get("/api/v1/positions/all", HTTP_X_API_KEY=key).status_code == 200
