"""The URL a JoinQuant strategy uploads to, and whether JoinQuant's cloud can reach it.

JoinQuant runs the strategy on its own servers, so the URL in the downloaded
`jq_qmt_api.py` must be a public one: the address the admin happens to browse
from (127.0.0.1, the home LAN) works in the browser and fails in JoinQuant.
"""

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _


def public_base_url(*, browsing_url: str) -> str:
    """PUBLIC_BASE_URL when set, else the URL the admin is browsing from; without a trailing slash."""
    return (settings.PUBLIC_BASE_URL or browsing_url).strip().rstrip("/")


def url_unreachable_reason(url: str) -> str | None:
    """Why JoinQuant's cloud cannot reach `url` (loopback, private, a LAN-only name), or None."""
    try:
        parts = urlsplit(url.strip())
        scheme, host = parts.scheme, (parts.hostname or "").lower()
    except ValueError:
        scheme, host = "", ""
    if scheme not in ("http", "https") or not host:
        return _("It is not an http(s) URL.")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith((".localhost", ".local", ".lan", ".home", ".internal")):
            return _("%(host)s is a name that only this machine or its local network knows.") % {"host": host}
        if "." not in host:
            return _("%(host)s is not a public host name.") % {"host": host}
        return None
    if address.is_loopback:
        return _("%(host)s is this machine's own (loopback) address.") % {"host": host}
    if address.is_private or address.is_link_local or address.is_reserved or address.is_unspecified:
        return _("%(host)s is a private network address.") % {"host": host}
    return None
