"""The exchange trading calendar (DESIGN §4): one row per calendar date, open or closed."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class TradingDay(models.Model):
    """Whether the Shanghai and Shenzhen exchanges trade on one date.

    Closed days are stored too, so "closed" is explicit and a date without a
    row is unknown, never assumed open.
    """

    class Source(models.TextChoices):
        EXCHANGE_CALENDARS = "exchange_calendars", _("exchange_calendars (XSHG)")
        XTDATA = "xtdata", _("xtdata (MiniQMT)")
        ADMIN = "admin", _("admin edit")

    date = models.DateField(_("date"), unique=True)
    is_open = models.BooleanField(_("exchange open"), default=False)
    source = models.CharField(_("source"), max_length=24, choices=Source.choices, default=Source.ADMIN)
    note = models.CharField(_("note"), max_length=200, blank=True)
    # Every source that says closed, comma-separated: a day two sources close stays closed when one of
    # them reopens it (DESIGN §4), even where the other cannot be asked (exchange_calendars missing).
    # Empty on open and admin rows; empty on an old closed row means `source` alone closed it.
    closed_by = models.CharField(_("closed by"), max_length=64, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("trading day")
        verbose_name_plural = _("trading calendar")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {'open' if self.is_open else 'closed'}"
