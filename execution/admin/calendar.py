"""Execution admin: calendar."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.translation import gettext_lazy as _

from .. import calendar
from ..models import (
    TradingDay,
)

# --- calendar ---


@admin.register(TradingDay)
class TradingDayAdmin(admin.ModelAdmin):
    list_display = ["date", "weekday", "is_open", "source", "closed_by", "note", "updated_at"]
    list_editable = ["is_open"]
    list_filter = ["is_open", "source"]
    date_hierarchy = "date"
    search_fields = ["note"]
    fields = ["date", "is_open", "note", "source", "closed_by", "updated_at"]
    readonly_fields = ["source", "closed_by", "updated_at"]
    actions = ["seed_from_exchange_calendars"]
    list_per_page = 100

    @admin.display(description=_("weekday"))
    def weekday(self, obj):
        return WEEKDAYS_ABBR[obj.date.weekday()]

    def get_readonly_fields(self, request, obj=None):
        # A row is one date: change the day's status, or add another date.
        return [*self.readonly_fields, "date"] if obj else self.readonly_fields

    # Whatever an admin saves is theirs: refreshes never overwrite admin rows.
    def save_model(self, request, obj, form, change):
        obj.source = TradingDay.Source.ADMIN
        obj.closed_by = ""  # the admin decides alone; which sources closed it no longer matters
        super().save_model(request, obj, form, change)

    @admin.action(
        description=_("Seed last, this and next year from exchange_calendars (XSHG)"), permissions=["change"]
    )
    def seed_from_exchange_calendars(self, request, queryset):
        """Works on the calendar, not on the selected rows (it may run with none selected)."""
        start, end = calendar.default_refresh_range(timezone.localdate(timezone=calendar.SHANGHAI))
        try:
            stored = calendar.calendar_seed_from_exchange_calendars(start=start, end=end)
        except calendar.CalendarSourceError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(
            request,
            _("%(count)s days added or changed; the calendar is known until %(date)s.")
            % {"count": stored, "date": calendar.calendar_known_until()},
            messages.SUCCESS,
        )
        warning = calendar.calendar_warning(timezone.localdate(timezone=calendar.SHANGHAI))
        if warning:
            self.message_user(request, warning, messages.WARNING)

    def changelist_view(self, request, extra_context=None):
        # Django runs actions only with rows ticked; seeding is about the calendar, so it needs none.
        if (
            request.method == "POST"
            and request.POST.get("action") == "seed_from_exchange_calendars"
            and not request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
            and self.has_change_permission(request)
        ):
            self.seed_from_exchange_calendars(request, self.get_queryset(request).none())
            return HttpResponseRedirect(request.get_full_path())
        return super().changelist_view(request, extra_context)
