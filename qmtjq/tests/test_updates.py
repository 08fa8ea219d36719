"""The optional update notice: asks one configured URL (here a local server) at most daily, never installs."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse
from django.utils import timezone

import qmtjq
from qmtjq import updates


class ReleaseServer:
    """A local release endpoint answering `self.answer` (JSON) with `self.status`; counts the requests."""

    def __init__(self):
        self.answer = {"version": "99.1.0", "url": "https://example.invalid/releases/99.1.0"}
        self.status = 200
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits += 1
                body = json.dumps(server.answer).encode() if not isinstance(server.answer, bytes) else server.answer
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/releases/latest"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def release_server():
    server = ReleaseServer()
    yield server
    server.close()


@pytest.fixture
def state_file(tmp_path, settings):
    settings.UPDATE_CHECK_STATE_FILE = tmp_path / "update_check.json"
    return settings.UPDATE_CHECK_STATE_FILE


def test_off_by_default_asks_nobody(settings, state_file):
    """Without UPDATE_CHECK_URL there is no check, no state file and no notice."""
    settings.UPDATE_CHECK_URL = ""
    assert updates.update_check() is None
    assert updates.update_notice_cached() is None
    assert not state_file.exists()


def test_newer_release_gives_a_notice_and_is_asked_once_a_day(release_server, state_file):
    """A newer version is reported; a second check within the day does not ask the server again."""
    now = timezone.now()
    notice = updates.update_check(url=release_server.url, current="0.10.0", now=now)
    assert notice == updates.UpdateNotice(version="99.1.0", url="https://example.invalid/releases/99.1.0")
    assert updates.update_check(url=release_server.url, current="0.10.0", now=now + timedelta(hours=5)) == notice
    assert release_server.hits == 1
    updates.update_check(url=release_server.url, current="0.10.0", now=now + timedelta(days=1, minutes=1))
    assert release_server.hits == 2


def test_same_or_older_release_gives_no_notice(release_server, state_file):
    release_server.answer = {"tag_name": "v0.9.9", "html_url": "https://example.invalid/r"}
    assert updates.update_check(url=release_server.url, current="0.10.0") is None


def test_github_release_list_skips_drafts_and_prereleases(release_server, state_file):
    """From GitHub's `/releases` list the newest stable release counts, not a pre-release."""
    release_server.answer = [
        {"tag_name": "v2.0.0-rc1", "prerelease": True, "html_url": "https://example.invalid/rc"},
        {"tag_name": "v1.10.0", "html_url": "https://example.invalid/1.10"},
    ]
    notice = updates.update_check(url=release_server.url, current="1.9.3")
    assert notice == updates.UpdateNotice(version="1.10.0", url="https://example.invalid/1.10")


@pytest.mark.parametrize("status, answer", [(500, {"error": "down"}), (200, b"not json"), (200, {"url": "x"})])
def test_a_failing_server_means_no_notice_and_is_not_asked_again_today(release_server, state_file, status, answer):
    release_server.status, release_server.answer = status, answer
    assert updates.update_check(url=release_server.url, current="0.10.0") is None
    assert updates.update_check(url=release_server.url, current="0.10.0") is None
    assert release_server.hits == 1


def test_unsafe_release_link_is_dropped(release_server, state_file):
    """Only an http(s) link reaches the admin page; a javascript: URL is not shown."""
    release_server.answer = {"version": "99.0.0", "url": "javascript:alert(1)"}
    assert updates.update_check(url=release_server.url, current="0.10.0").url == ""


def test_admin_footer_shows_the_version(admin_client, settings, state_file):
    settings.UPDATE_CHECK_URL = ""
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert f"qmtjq {qmtjq.__version__}" in page
    assert 'id="update-notice"' not in page


def test_admin_shows_the_notice_when_a_newer_version_exists(admin_client, settings, release_server, state_file):
    """After a check found a newer release, every admin page says so (from the saved answer, no request)."""
    settings.UPDATE_CHECK_URL = release_server.url
    updates.update_check()
    hits = release_server.hits
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert 'id="update-notice"' in page and "99.1.0" in page
    assert 'href="https://example.invalid/releases/99.1.0"' in page
    assert release_server.hits == hits  # rendering a page never asks the release server


def test_pages_footer_shows_the_version(admin_client, settings, state_file):
    settings.UPDATE_CHECK_URL = ""
    assert f"qmtjq {qmtjq.__version__}".encode() in admin_client.get("/").content
