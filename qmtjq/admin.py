"""Admin of notification channels (editable, with a test send) and the notification log (read-only)."""

import json

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from . import notifications
from .models import Notification, NotificationChannel


class NotificationChannelForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        label=_("events"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None selected = all events."),
    )

    class Meta:
        model = NotificationChannel
        fields = ["name", "kind", "target", "events", "enabled"]
        widgets = {"target": forms.TextInput(attrs={"size": 100})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["events"].choices = [
            (event, notifications.event_label(event)) for event in notifications.EVENTS
        ]


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    form = NotificationChannelForm
    list_display = ["name", "kind", "safe_target", "events_display", "enabled", "created_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]
    actions = ["send_test"]

    @admin.display(description=_("target"))
    def safe_target(self, obj):
        return obj.target_display()

    @admin.display(description=_("events"))
    def events_display(self, obj):
        if not obj.events:
            return _("all")
        return ", ".join(notifications.event_label(event) for event in obj.events)

    @admin.action(description=_("Send a test notification"))
    def send_test(self, request, queryset):
        for channel in queryset:
            delivery = notifications.channel_test_send(channel=channel)
            if delivery["ok"]:
                self.message_user(
                    request, _("%(channel)s: test notification sent.") % {"channel": channel.name}
                )
            else:
                self.message_user(
                    request,
                    _("%(channel)s: test notification failed: %(error)s")
                    % {"channel": channel.name, "error": delivery["error"]},
                    level=messages.ERROR,
                )


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The log of everything notified: written by `notify` only."""

    list_display = ["created_at", "event_display", "level", "title", "key", "count", "last_seen_at", "sent"]
    list_filter = ["event", "level"]
    search_fields = ["title", "body", "key"]
    date_hierarchy = "created_at"
    fields = [
        "event",
        "level",
        "title",
        "body",
        "key",
        "count",
        "created_at",
        "last_seen_at",
        "deliveries_display",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("event"), ordering="event")
    def event_display(self, obj):
        return notifications.event_label(obj.event)

    @admin.display(description=_("sent"))
    def sent(self, obj):
        if not obj.deliveries:
            return "-"
        ok = sum(1 for delivery in obj.deliveries if delivery.get("ok"))
        return f"{ok}/{len(obj.deliveries)}"

    @admin.display(description=_("deliveries"))
    def deliveries_display(self, obj):
        text = json.dumps(obj.deliveries, ensure_ascii=False, indent=2)
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)
from . import admin_pause  # noqa: E402,F401  (registers the global pause)
from .admin_site import admin_site_setup  # noqa: E402

admin_site_setup(admin.site)
