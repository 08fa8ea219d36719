"""Admin for credentials with rotating API keys (JoinQuant API clients, trading-PC worker credentials).

One place for what both need: a new credential's key shown once (never cached),
rotation behind a confirmation page that asks how long the old key keeps
working, and the table of a credential's keys with their state.
"""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from . import keys


class RotateKeyForm(forms.Form):
    grace_hours = forms.IntegerField(
        label=_("Old key keeps working for (hours)"),
        min_value=0,
        max_value=24 * 90,
        help_text=_("0 stops the old key at once (a leaked key); otherwise both keys work until then."),
    )


def _local(value) -> str:
    return date_format(timezone.localtime(value), "Y-m-d H:i") if value else "-"


class KeyedCredentialAdminMixin:
    """A ModelAdmin mixin; the model has `api_keys` (qmtjq.keys.RotatingKey rows) and `public_key`.

    Subclasses say how a key is issued and rotated (their services do it);
    templates are `admin/<app>/<model>/key_shown.html` and `rotate_confirm.html`.
    """

    def key_issue(self, obj) -> str:
        raise NotImplementedError

    def key_rotate(self, obj, *, grace: timedelta) -> str:
        raise NotImplementedError

    def credential_set_enabled(self, obj, *, enabled: bool) -> None:
        raise NotImplementedError

    def _set_enabled_selected(self, request, queryset, *, enabled: bool, done) -> None:
        """The disable/enable actions: each credential through its service, logged in admin history."""
        for client in queryset:
            self.credential_set_enabled(client, enabled=enabled)
            self.log_change(request, client, "Enabled" if enabled else "Disabled")
        self.message_user(request, done % {"count": queryset.count()}, messages.SUCCESS)

    def _template(self, name: str) -> str:
        opts = self.model._meta
        return f"admin/{opts.app_label}/{opts.model_name}/{name}"

    @property
    def rotate_url_name(self) -> str:
        opts = self.model._meta
        return f"{opts.app_label}_{opts.model_name}_rotate_key"

    @admin.display(description=_("API keys"))
    def api_keys_table(self, obj):
        """Every key of the credential with its state: during a rotation's grace period two are valid."""
        if not obj.pk:
            return "-"
        now = timezone.now()
        labels = {"": _("valid"), "expired": _("expired"), "revoked": _("revoked")}
        rows = format_html_join(
            "",
            "<tr><td><code>{}…</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    key.prefix,
                    labels[key.problem(now)],
                    _local(key.created_at),
                    _local(key.expires_at),
                    _local(key.last_used_at),
                )
                for key in obj.api_keys.all()
            ),
        )
        header = format_html(
            "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            _("key starts with"),
            _("status"),
            _("created at"),
            _("expires at"),
            _("last used at"),
        )
        return format_html('<table class="api-keys">{}{}</table>', header, rows)

    @admin.display(description=_("valid API keys"))
    def valid_keys(self, obj):
        return ", ".join(f"{key.prefix}…" for key in obj.api_keys.filter(keys.key_valid_q(timezone.now())))

    @admin.display(boolean=True, description=_("RSA key"))
    def has_rsa_key(self, obj):
        return bool(obj.public_key)

    def get_urls(self):
        own = [
            path(
                "<int:pk>/rotate-key/",
                self.admin_site.admin_view(self.rotate_key_view),
                name=self.rotate_url_name,
            )
        ]
        return own + super().get_urls()

    # A new credential gets its key here; it exists in clear only in this response.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            request._new_api_key = self.key_issue(obj)

    def response_add(self, request, obj, post_url_continue=None):
        api_key = getattr(request, "_new_api_key", None)
        if api_key is None:
            return super().response_add(request, obj, post_url_continue)
        return self._render_key(request, obj, api_key)

    def _render_key(self, request, obj, api_key):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "client": obj,
            "api_key": api_key,
            "title": _("API key for %(name)s") % {"name": obj.name},
        }
        response = TemplateResponse(request, self._template("key_shown.html"), context)
        response["Cache-Control"] = "no-store"
        return response

    def rotate_key_view(self, request, pk):
        client = get_object_or_404(self.model, pk=pk)
        if not self.has_change_permission(request, client):
            return HttpResponse(status=403)
        form = RotateKeyForm(
            request.POST if request.method == "POST" else None,
            initial={"grace_hours": settings.API_KEY_ROTATION_GRACE_HOURS},
        )
        if request.method == "POST" and form.is_valid():
            grace = timedelta(hours=form.cleaned_data["grace_hours"])
            api_key = self.key_rotate(client, grace=grace)
            self.log_change(request, client, f"Rotated API key (old key valid for {grace})")
            return self._render_key(request, client, api_key)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "client": client,
            "title": _("Rotate the API key of %(name)s?") % {"name": client.name},
        }
        return TemplateResponse(request, self._template("rotate_confirm.html"), context)
