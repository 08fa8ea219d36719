"""LANGUAGE_CODE decides the default; the header switch (cookie) always wins; the browser's
Accept-Language only counts when the operator has not set LANGUAGE_CODE (issue 10)."""

import pytest
from django.conf import settings as django_settings

from qmtjq.tests.test_settings import load_settings

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


def lang(response) -> str:
    return response["Content-Language"]


def test_configured_language_beats_the_browser_header(client, settings):
    """LANGUAGE_CODE=zh-hans: an English browser still gets Chinese pages."""
    settings.LANGUAGE_CODE, settings.LANGUAGE_FROM_BROWSER = "zh-hans", False
    response = client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert lang(response) == "zh-hans"
    assert '<html lang="zh-hans"' in response.content.decode()


def test_configured_english_beats_a_chinese_browser(client, settings):
    settings.LANGUAGE_CODE, settings.LANGUAGE_FROM_BROWSER = "en", False
    assert lang(client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")) == "en"


def test_the_switch_beats_the_configured_language(client, settings):
    """Choosing English in the header switch sticks, whatever LANGUAGE_CODE and the browser say."""
    settings.LANGUAGE_CODE, settings.LANGUAGE_FROM_BROWSER = "zh-hans", False
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    assert client.cookies[django_settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert lang(client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="zh-CN")) == "en"
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert lang(client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="en")) == "zh-hans"


def test_an_unknown_cookie_falls_back_to_the_default(client, settings):
    settings.LANGUAGE_CODE, settings.LANGUAGE_FROM_BROWSER = "zh-hans", False
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "fr"
    assert lang(client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="en")) == "zh-hans"


def test_without_language_code_the_browser_decides(client, settings):
    """Nobody chose (LANGUAGE_CODE unset): the browser's language, else Chinese."""
    settings.LANGUAGE_CODE, settings.LANGUAGE_FROM_BROWSER = "zh-hans", True
    assert lang(client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")) == "en"
    assert lang(client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="de")) == "zh-hans"


def test_language_from_browser_follows_whether_language_code_is_set():
    """The setting is derived: an explicit LANGUAGE_CODE (environment or .env) turns the browser header off."""
    import json

    unset = json.loads(load_settings(SECRET_KEY="x").stdout)
    explicit = json.loads(load_settings(SECRET_KEY="x", LANGUAGE_CODE="zh-hans").stdout)
    assert unset["LANGUAGE_FROM_BROWSER"] is True and unset["LANG"] == "zh-hans"
    assert explicit["LANGUAGE_FROM_BROWSER"] is False
