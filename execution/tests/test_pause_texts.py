"""The trading PC's copy of the server's global pause says why in the reader's language (from the
text code the feed carries), old rows and older servers keep their stored English, and a reason a
person typed is shown as typed."""

import pytest
from django.utils import timezone, translation

from execution.remote.apply import feed_apply
from execution.remote.feed import feed_build
from execution.tests.test_remote_pc import _feed
from qmtjq import display
from qmtjq.models import TradingPause
from qmtjq.trading import trading_pause_set

pytestmark = pytest.mark.django_db

SHOWN = {"zh-hans": "服务器：管理后台已暂停全部交易", "en": "server: all trading paused in admin"}


def _paused_feed(**changes):
    return _feed(**{"trading_enabled_globally": False, "trading_off_reason": "all trading paused in admin", **changes})


def test_the_servers_feed_carries_the_pause_reason_as_a_code(paper_account, django_user_model):
    trading_pause_set(paused=True, user=django_user_model.objects.create_user("boss"), reason="lunch")
    feed = feed_build(account_id=paper_account.pk)
    assert feed["trading_off_reason"] == "all trading paused in admin"
    assert feed["trading_off_text"] == {"text": "paused", "params": {}}


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_pc_pause_page_reads_the_servers_reason_in_the_readers_language(admin_client, language):
    feed_apply(feed=_paused_feed(trading_off_text={"text": "paused", "params": {}}), server_url="https://s", now=timezone.now())
    pause = TradingPause.objects.get(pk=1)
    assert pause.paused and pause.reason == "server: all trading paused in admin"  # as before, for logs
    page = admin_client.get("/admin/qmtjq/tradingpause/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert SHOWN[language] in page
    with translation.override(language):
        assert display.pause_reason(pause) == SHOWN[language]


def test_an_older_server_and_old_rows_fall_back_to_the_stored_text():
    feed_apply(feed=_paused_feed(), server_url="https://s", now=timezone.now())  # no trading_off_text
    pause = TradingPause.objects.get(pk=1)
    with translation.override("zh-hans"):
        assert display.pause_reason(pause) == SHOWN["zh-hans"]  # the server's English, read by its old pattern
    feed_apply(
        feed=_paused_feed(trading_off_reason="maintenance", trading_off_text={"text": "no_such", "params": {}}),
        server_url="https://s", now=timezone.now(),
    )
    with translation.override("zh-hans"):
        assert display.pause_reason(TradingPause.objects.get(pk=1)) == "服务器：maintenance"
        # a row stored before the codes: the old pattern translates the part after "server: "
        assert display.pause_reason(TradingPause(reason="server: all trading paused in admin")) == (
            "server: 管理后台已暂停全部交易"
        )
        assert display.pause_reason(TradingPause(reason="午休", reason_params={})) == "午休"
    feed_apply(feed=_feed(), server_url="https://s", now=timezone.now())
    assert not TradingPause.objects.get(pk=1).paused  # the server's pause is still lifted by the server
