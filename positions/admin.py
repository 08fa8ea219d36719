from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from qmtjq import keys
from qmtjq.names import security_names_get

from . import public_url, services, tokens
from .models import ApiClient, Strategy, TargetLine, TargetSnapshot, Upload


class ReadOnlyAdminMixin:
    """Log-like rows are written by services only; admin shows them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin):
    list_display = ["name", "current_update", "confirmed_at", "positions_count", "created_by", "created_at"]
    list_select_related = ["current_snapshot", "created_by"]
    search_fields = ["name", "description"]
    readonly_fields = ["current_snapshot", "confirmed_at", "created_by", "created_at"]
    fields = ["name", "description", *readonly_fields]

    @admin.display(description=_("updated at"), ordering="current_snapshot__created_at")
    def current_update(self, obj):
        return obj.current_snapshot.created_at if obj.current_snapshot else None

    @admin.display(description=_("positions"))
    def positions_count(self, obj):
        return obj.current_snapshot.positions_count if obj.current_snapshot else 0


class TargetLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TargetLine
    fields = ["code", "jq_code", "name", "volume", "cost"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(TargetSnapshot)
class TargetSnapshotAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "strategy", "source", "positions_count", "client", "remote_addr", "created_at"]
    list_filter = ["source", "strategy"]
    list_select_related = ["strategy", "client"]
    search_fields = ["strategy__name", "lines__code"]
    date_hierarchy = "created_at"
    inlines = [TargetLineInline]
    readonly_fields = ["rule_exits_shown"]
    exclude = ["rule_exits"]

    @admin.display(description=_("closed by the strategy's rules"))
    def rule_exits_shown(self, obj):
        codes = [code for code in obj.rule_exits or [] if isinstance(code, str)]
        if not codes:
            return "—"
        names = security_names_get(codes)
        return format_html_join(", ", "{} {}", ((code, names.get(code, "")) for code in codes))

    def get_search_results(self, request, queryset, search_term):
        queryset, _may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False


@admin.register(Upload)
class UploadAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "strategy", "client", "changed", "auth_type", "snapshot_id", "remote_addr"]
    list_filter = ["changed", "auth_type", "client"]
    list_select_related = ["strategy", "client"]
    search_fields = ["strategy__name", "snapshot_id", "client__client_id"]
    date_hierarchy = "received_at"


class ApiClientForm(forms.ModelForm):
    class Meta:
        model = ApiClient
        fields = [
            "name",
            "client_id",
            "enabled",
            "public_key",
            "require_v2",
            "all_strategies",
            "strategies",
            "can_create_strategies",
            "rate_limit_per_minute",
            "api_key_lifetime_days",
        ]

    def clean_public_key(self):
        pem = self.cleaned_data.get("public_key", "").strip()
        if pem:
            try:
                tokens.public_key_load(pem)
            except tokens.TokenError as exc:
                raise forms.ValidationError(str(exc))
        return pem


class RotateKeyForm(forms.Form):
    grace_hours = forms.IntegerField(
        label=_("Old key keeps working for (hours)"),
        min_value=0,
        max_value=24 * 90,
        help_text=_("0 stops the old key at once (a leaked key); otherwise both keys work until then."),
    )


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    form = ApiClientForm
    list_display = [
        "name",
        "client_id",
        "enabled",
        "require_v2",
        "all_strategies",
        "valid_keys",
        "has_rsa_key",
        "last_used_at",
        "last_auth_failure_at",
    ]
    list_filter = ["enabled", "require_v2", "all_strategies"]
    search_fields = ["name", "client_id"]
    autocomplete_fields = ["strategies"]
    readonly_fields = [
        "created_at",
        "last_used_at",
        "last_used_from",
        "last_auth_failure",
        "last_auth_failure_at",
        "api_keys_table",
        "tools",
    ]
    actions = ["disable_clients", "enable_clients"]
    fieldsets = [
        (None, {"fields": ["name", "client_id", "enabled", "tools"]}),
        (
            _("Authentication"),
            {"fields": ["api_keys_table", "public_key", "require_v2", "api_key_lifetime_days"]},
        ),
        (
            _("Scope"),
            {"fields": ["all_strategies", "strategies", "can_create_strategies", "rate_limit_per_minute"]},
        ),
        (
            _("Usage"),
            {
                "fields": [
                    "created_at",
                    "last_used_at",
                    "last_used_from",
                    "last_auth_failure",
                    "last_auth_failure_at",
                ]
            },
        ),
    ]

    @admin.display(description=_("API keys"))
    def api_keys_table(self, obj):
        """Every key of the client with its state: during a rotation's grace period two are valid."""
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
                    date_format(timezone.localtime(key.created_at), "Y-m-d H:i"),
                    date_format(timezone.localtime(key.expires_at), "Y-m-d H:i") if key.expires_at else "-",
                    date_format(timezone.localtime(key.last_used_at), "Y-m-d H:i")
                    if key.last_used_at
                    else "-",
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

    @admin.display(description=_("tools"))
    def tools(self, obj):
        if not obj.pk:
            return _("An API key is generated and shown once when you save.")
        return format_html(
            '<a class="button" href="{}">{}</a> <a class="button" href="{}">{}</a>',
            reverse("admin:positions_apiclient_rotate_key", args=[obj.pk]),
            _("Rotate API key"),
            reverse("admin:positions_apiclient_client_file", args=[obj.pk]),
            _("Download jq_qmt_api.py"),
        )

    def get_urls(self):
        own = [
            path(
                "<int:pk>/rotate-key/",
                self.admin_site.admin_view(self.rotate_key_view),
                name="positions_apiclient_rotate_key",
            ),
            path(
                "<int:pk>/client-file/",
                self.admin_site.admin_view(self.client_file_view),
                name="positions_apiclient_client_file",
            ),
        ]
        return own + super().get_urls()

    # A new client gets its key here; it exists in clear only in this response.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            request._new_api_key = services.api_client_key_issue(client=obj)

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
        response = TemplateResponse(request, "admin/positions/apiclient/key_shown.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def rotate_key_view(self, request, pk):
        client = get_object_or_404(ApiClient, pk=pk)
        if not self.has_change_permission(request, client):
            return HttpResponse(status=403)
        form = RotateKeyForm(
            request.POST if request.method == "POST" else None,
            initial={"grace_hours": settings.API_KEY_ROTATION_GRACE_HOURS},
        )
        if request.method == "POST" and form.is_valid():
            grace = timedelta(hours=form.cleaned_data["grace_hours"])
            api_key = services.api_client_rotate_key(client=client, grace=grace)
            self.log_change(request, client, f"Rotated API key (old key valid for {grace})")
            return self._render_key(request, client, api_key)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "client": client,
            "title": _("Rotate the API key of %(name)s?") % {"name": client.name},
        }
        return TemplateResponse(request, "admin/positions/apiclient/rotate_confirm.html", context)

    def client_file_view(self, request, pk):
        client = get_object_or_404(ApiClient, pk=pk)
        if not self.has_view_permission(request, client):
            return HttpResponse(status=403)
        api_url = public_url.public_base_url(browsing_url=request.build_absolute_uri("/"))
        if request.GET.get("download") != "1":
            context = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "client": client,
                "api_url": api_url,
                "unreachable_reason": public_url.url_unreachable_reason(api_url),
                "title": _("Download jq_qmt_api.py for %(name)s") % {"name": client.name},
            }
            return TemplateResponse(request, "admin/positions/apiclient/client_file.html", context)
        source = services.client_file_render(client=client, api_url=api_url)
        response = HttpResponse(source, content_type="text/x-python; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="jq_qmt_api.py"'
        return response

    @admin.action(description=_("Disable selected API clients"))
    def disable_clients(self, request, queryset):
        for client in queryset:
            services.api_client_set_enabled(client=client, enabled=False)
            self.log_change(request, client, "Disabled")
        self.message_user(
            request, _("%(count)d client(s) disabled.") % {"count": queryset.count()}, messages.SUCCESS
        )

    @admin.action(description=_("Enable selected API clients"))
    def enable_clients(self, request, queryset):
        for client in queryset:
            services.api_client_set_enabled(client=client, enabled=True)
            self.log_change(request, client, "Enabled")
        self.message_user(
            request, _("%(count)d client(s) enabled.") % {"count": queryset.count()}, messages.SUCCESS
        )
