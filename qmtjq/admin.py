"""Admin of notification channels (editable, with a test send) and the notification log (read-only)."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from . import channels, crypto, notifications
from .models import Notification, NotificationChannel
from .webhook_signing import SIGNING_KINDS


class NotificationChannelForm(forms.ModelForm):
    """The webhook URL is shown masked (host only) and kept when the mask comes back unchanged;
    the signing secret is write-only, like the Factor Cat password."""

    events = forms.MultipleChoiceField(
        label=_("events"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None selected = all events."),
    )
    signing_secret = forms.CharField(
        label=_("signing secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "size": 70}),
        help_text=_(
            "DingTalk (加签) and Feishu (签名校验) bots only: the secret shown in the bot's security settings. "
            "Stored encrypted and never shown again; leave empty to keep the stored one. Without a secret "
            "the bot needs keyword security with the keyword “qmtjq”."
        ),
    )
    forget_signing_secret = forms.BooleanField(
        label=_("remove the stored signing secret (keyword mode)"), required=False
    )

    class Meta:
        model = NotificationChannel
        fields = ["name", "kind", "target", "events", "enabled"]
        widgets = {"target": forms.TextInput(attrs={"size": 100, "autocomplete": "off"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["events"].choices = [
            (event, notifications.event_label(event)) for event in notifications.EVENTS
        ]
        if self.instance.secret_encrypted:
            self.fields["signing_secret"].help_text = _("A secret is stored (encrypted).") + " " + str(
                self.fields["signing_secret"].help_text
            )

    def clean(self):
        cleaned = super().clean()
        kind, target = cleaned.get("kind"), (cleaned.get("target") or "").strip()
        if not kind:
            return cleaned
        channel = self.instance
        was_webhook = channel.kind != NotificationChannel.Kind.EMAIL and bool(channel.url_encrypted)
        channel.kind = kind
        try:
            if kind == NotificationChannel.Kind.EMAIL:
                channel.url_encrypted = ""
            elif not (was_webhook and target == channel.target):
                # A new URL (the unchanged mask keeps the stored one).
                channels.channel_webhook_set(channel=channel, url=target)
                cleaned["target"] = channel.target
            if cleaned.get("forget_signing_secret") or kind not in SIGNING_KINDS:
                if cleaned.get("signing_secret") and kind not in SIGNING_KINDS:
                    raise ValidationError({"signing_secret": channels.signing_kinds_only()})
                channel.secret_encrypted = ""
            elif cleaned.get("signing_secret"):
                channels.channel_signing_secret_set(channel=channel, secret=cleaned["signing_secret"])
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                raise
            self.add_error("target", exc)
        except crypto.CryptoError as exc:
            self.add_error(None, str(exc))
        return cleaned


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    form = NotificationChannelForm
    list_display = ["name", "kind", "safe_target", "signed", "events_display", "enabled", "created_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]
    actions = ["send_test"]

    @admin.display(description=_("target"))
    def safe_target(self, obj):
        return obj.target_display()

    @admin.display(description=_("signed"), boolean=True)
    def signed(self, obj):
        return bool(obj.secret_encrypted)

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
        return format_html('<pre class="admin-json">{}</pre>', text)
from . import admin_pause  # noqa: E402,F401  (registers the global pause)
from .admin_site import admin_site_setup  # noqa: E402

admin_site_setup(admin.site)
