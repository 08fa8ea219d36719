"""Site-wide template tags: the running version and the optional update notice."""

from django import template

import qmtjq
from qmtjq import updates

register = template.Library()


@register.simple_tag
def qmtjq_version() -> str:
    return qmtjq.__version__


@register.simple_tag
def update_notice() -> updates.UpdateNotice | None:
    """The saved answer of the last update check (never asks the network while a page renders)."""
    return updates.update_notice_cached()
