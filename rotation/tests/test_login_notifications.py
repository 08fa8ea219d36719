"""Factor Cat login failures are notified once per account and cause, with the server's words in context."""

import pytest
from cryptography.fernet import Fernet

from qmtjq.models import Notification
from qmtjq.notifications import EVENT_FACTORCAT_LOGIN_FAILED
from rotation import credentials, factorcat
from rotation.factorcat import FactorCatAuthError
from rotation.models import FactorCatAccount
from rotation.tests.test_factorcat import PASSWORD, fake  # noqa: F401 - the fake server fixture

SERVER_ERROR = ("status", 500, {"detail": "database is down"})


@pytest.fixture
def account(db, fake, settings, monkeypatch):  # noqa: F811 - the fake fixture
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    settings.NOTIFICATION_SEND_ASYNC = False
    monkeypatch.setattr(factorcat.time, "sleep", lambda seconds: None)  # 500s are retried with backoff
    account = FactorCatAccount.objects.create(name="main", base_url=fake.base_url, username="alice")
    credentials.factorcat_password_set(account=account, password=PASSWORD)
    return account


def fail_with_500(fake):  # noqa: F811
    fake.script("/auth/login", *[SERVER_ERROR] * 3)  # the first try and two retries


def fail_with_wrong_password(fake):  # noqa: F811
    fake.users["alice"] = "changed on the website"


def failed_login(account) -> None:
    with pytest.raises(FactorCatAuthError):
        credentials.factorcat_client_for(account=account, force_login=True)


def login_notifications() -> list[Notification]:
    return list(Notification.objects.filter(event=EVENT_FACTORCAT_LOGIN_FAILED).order_by("pk"))


@pytest.mark.parametrize(
    ("causes", "expected_counts"),
    [
        ([fail_with_500, fail_with_wrong_password], [1, 1]),  # a new cause is not hidden under the old one
        ([fail_with_500, fail_with_wrong_password, fail_with_wrong_password], [1, 2]),  # the same cause folds
        ([fail_with_wrong_password, fail_with_500, fail_with_500, fail_with_wrong_password], [2, 2]),
    ],
)
def test_login_failures_fold_by_account_and_cause(account, fake, causes, expected_counts):  # noqa: F811
    """Each distinct cause gets its own notification; repeats of one cause fold into it."""
    for cause in causes:
        cause(fake)
        failed_login(account)
    assert [n.count for n in login_notifications()] == expected_counts


def test_login_failure_message_says_what_factor_cat_answered(account, fake):  # noqa: F811
    """The notification and last_error carry the HTTP status and the server's own message."""
    fail_with_500(fake)
    failed_login(account)
    fail_with_wrong_password(fake)
    failed_login(account)
    server_error, wrong_password = login_notifications()
    assert "Factor Cat answered HTTP 500: database is down" in server_error.body
    assert "Factor Cat answered HTTP 401: Incorrect username or password" in wrong_password.body
    account.refresh_from_db()
    assert "HTTP 401: Incorrect username or password" in account.last_error
    assert {n.key for n in (server_error, wrong_password)} == {"main:http-500", "main:http-401"}
