from datetime import timedelta

from django import forms
from django.contrib import admin
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from execution.admin.large import BoundedCountPaginator
from qmtjq.admin_keys import KeyedCredentialAdminMixin
from qmtjq.names import security_names_get

from . import public_url, services, tokens
from .authentication import AUTH_API_KEY, AUTH_RSA_V1, AUTH_RSA_V2
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
    # History grows with every changed upload: bounded counts, a date filter instead of
    # date_hierarchy (a SELECT DISTINCT over every row), no facet counts.
    paginator = BoundedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_filter = ["source", "strategy", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["strategy", "client"]
    search_fields = ["strategy__name", "lines__code"]
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
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # A code search joins the lines: one row per snapshot. Without a search, no DISTINCT
        # (it would make the bounded count read every snapshot).
        return (queryset.distinct() if search_term and may_have_duplicates else queryset), False


class AuthTypeFilter(admin.SimpleListFilter):
    """The three ways to authenticate, listed without a SELECT DISTINCT over every upload."""

    title = _("auth type")
    parameter_name = "auth_type"

    def lookups(self, request, model_admin):
        return [(AUTH_API_KEY, "API key"), (AUTH_RSA_V1, "RSA v1"), (AUTH_RSA_V2, "RSA v2")]

    def queryset(self, request, queryset):
        return queryset.filter(auth_type=self.value()) if self.value() else queryset


@admin.register(Upload)
class UploadAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "strategy", "client", "changed", "auth_type", "snapshot_id", "remote_addr"]
    # One row per API call, for ever: see TargetSnapshotAdmin.
    paginator = BoundedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_filter = ["changed", AuthTypeFilter, "client", ("received_at", admin.DateFieldListFilter)]
    list_select_related = ["strategy", "client"]
    search_fields = ["strategy__name", "snapshot_id", "client__client_id"]


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


@admin.register(ApiClient)
class ApiClientAdmin(KeyedCredentialAdminMixin, admin.ModelAdmin):
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

    def key_issue(self, obj) -> str:
        return services.api_client_key_issue(client=obj)

    def credential_set_enabled(self, obj, *, enabled: bool) -> None:
        services.api_client_set_enabled(client=obj, enabled=enabled)

    def key_rotate(self, obj, *, grace: timedelta) -> str:
        return services.api_client_rotate_key(client=obj, grace=grace)

    def get_urls(self):
        own = [
            path(
                "<int:pk>/client-file/",
                self.admin_site.admin_view(self.client_file_view),
                name="positions_apiclient_client_file",
            ),
        ]
        return own + super().get_urls()

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
        self._set_enabled_selected(request, queryset, enabled=False, done=_("%(count)d client(s) disabled."))

    @admin.action(description=_("Enable selected API clients"))
    def enable_clients(self, request, queryset):
        self._set_enabled_selected(request, queryset, enabled=True, done=_("%(count)d client(s) enabled."))
