"""Execution admin: remote mode (worker credentials, what trading PCs last said, their quotes)."""

import secrets
from datetime import timedelta

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from positions import tokens
from qmtjq.admin_keys import KeyedCredentialAdminMixin

from ..models import WorkerClient, WorkerQuote, WorkerStatus
from ..remote import credentials
from .base import ReadOnlyAdminMixin


class WorkerClientForm(forms.ModelForm):
    client_id = forms.RegexField(
        label=_("client id"),
        regex=r"^[A-Za-z0-9_.-]{1,64}$",
        required=False,
        help_text=_("Letters, digits, '.', '_' and '-'; empty: generated."),
    )

    class Meta:
        model = WorkerClient
        fields = ["name", "account", "client_id", "enabled", "public_key", "require_v2"]

    def clean_public_key(self):
        pem = self.cleaned_data.get("public_key", "").strip()
        if pem:
            try:
                tokens.public_key_load(pem)
            except tokens.TokenError as exc:
                raise forms.ValidationError(str(exc))
        return pem

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("require_v2") and not cleaned.get("public_key"):
            self.add_error("require_v2", _("v2 tokens need an RSA public key."))
        if not cleaned.get("client_id") and cleaned.get("account"):
            cleaned["client_id"] = f"w-{cleaned['account'].name[:40]}-{secrets.token_hex(4)}"
            self.instance.client_id = cleaned["client_id"]
        return cleaned


@admin.register(WorkerClient)
class WorkerClientAdmin(KeyedCredentialAdminMixin, admin.ModelAdmin):
    form = WorkerClientForm
    list_display = [
        "name",
        "client_id",
        "account",
        "enabled",
        "require_v2",
        "has_rsa_key",
        "last_used_at",
        "last_used_from",
        "last_auth_failure_at",
    ]
    list_filter = ["enabled", "require_v2"]
    list_select_related = ["account"]
    search_fields = ["name", "client_id", "account__name"]
    autocomplete_fields = ["account"]
    readonly_fields = [
        "api_keys_table",
        "created_at",
        "last_used_at",
        "last_used_from",
        "last_auth_failure",
        "last_auth_failure_at",
        "tools",
    ]
    actions = ["disable_clients", "enable_clients"]

    def get_fields(self, request, obj=None):
        fields = ["name", "account", "client_id", "enabled", "public_key", "require_v2"]
        return fields + (self.readonly_fields if obj else [])

    def get_readonly_fields(self, request, obj=None):
        # A credential never moves to another account: make a new one instead.
        return [*self.readonly_fields, "account"] if obj else []

    @admin.display(description=_("tools"))
    def tools(self, obj):
        if not obj.pk:
            return _("An API key is generated and shown once when you save.")
        return format_html(
            '<a class="button" href="{}">{}</a>',
            reverse("admin:execution_workerclient_rotate_key", args=[obj.pk]),
            _("Rotate API key"),
        )

    def key_issue(self, obj) -> str:
        return credentials.worker_client_rotate_key(client=obj)

    def credential_set_enabled(self, obj, *, enabled: bool) -> None:
        credentials.worker_client_set_enabled(client=obj, enabled=enabled)

    def key_rotate(self, obj, *, grace: timedelta) -> str:
        return credentials.worker_client_rotate_key(client=obj, grace=grace)

    @admin.action(description=_("Disable selected worker credentials"))
    def disable_clients(self, request, queryset):
        self._set_enabled_selected(
            request, queryset, enabled=False, done=_("%(count)d credential(s) disabled.")
        )

    @admin.action(description=_("Enable selected worker credentials"))
    def enable_clients(self, request, queryset):
        self._set_enabled_selected(
            request, queryset, enabled=True, done=_("%(count)d credential(s) enabled.")
        )


@admin.register(WorkerStatus)
class WorkerStatusAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["account", "holder", "status", "heartbeat_at", "worker_time", "remote_addr", "client"]
    list_select_related = ["account", "client"]
    search_fields = ["account__name", "holder", "status"]


@admin.register(WorkerQuote)
class WorkerQuoteAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["code", "last_price", "up_stop", "down_stop", "suspended", "quoted_at", "account"]
    list_filter = ["suspended"]
    list_select_related = ["account"]
    search_fields = ["code"]
    date_hierarchy = "quoted_at"
