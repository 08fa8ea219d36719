"""Execution admin: base."""

import json

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth import get_permission_codename
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from positions.codes import CodeError, normalize

# --- shared -------------------------------------------------------------------------------------


def _related_or_none(obj, name: str):
    """A reverse one-to-one (state, lease) that may not exist yet; select_related caches the absence."""
    try:
        return getattr(obj, name)
    except ObjectDoesNotExist:
        return None


def _pretty_json(value):
    text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    return format_html('<pre class="admin-json">{}</pre>', text)


def _buttons(links):
    return format_html_join(" ", '<a class="button" href="{}">{}</a>', links)


class ReadOnlyAdminMixin:
    """Rows written by the worker and services only: admin shows them and never edits or deletes them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        own = [f.name for f in self.opts.concrete_fields if not f.primary_key]
        return [*own, *self.readonly_fields]


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False


class ConfirmedActionsMixin:
    """Actions that show a confirmation page first, as Django's "delete selected" does.

    An action runs twice: the first POST (from the changelist) renders the
    page; the page posts back with `confirm=yes` and the action calls its
    service. The names in `object_actions` are also reachable for one row at
    <pk>/confirm/<action>/, linked from buttons on the change page.
    """

    object_actions: tuple[str, ...] = ()

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/confirm/<str:action>/",
                self.admin_site.admin_view(self.object_action_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_object_action",
            )
        ]
        return own + super().get_urls()

    def object_action_url(self, obj, action: str) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_object_action", args=[obj.pk, action]
        )

    def object_action_view(self, request, object_id, action):
        if action not in self.object_actions:
            raise Http404
        available = self.get_actions(request)
        if action not in available:
            raise PermissionDenied
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404
        func = available[action][0]
        response = func(self, request, self.get_queryset(request).filter(pk=obj.pk))
        if response is not None:
            return response
        return HttpResponseRedirect(
            reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
        )

    @staticmethod
    def confirmed(request) -> bool:
        return request.method == "POST" and request.POST.get("confirm") == "yes"

    def confirm_page(self, request, template: str, *, action: str, selected, title, **context):
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                "action": action,
                "selected": [obj.pk for obj in selected],
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                **context,
            },
        )

    def has_model_permission(self, request, codename: str) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.{get_permission_codename(codename, self.opts)}")


class CodeFormMixin:
    """Codes typed by a person are stored in the canonical QMT form, or rejected with the reason."""

    def clean_code(self):
        try:
            return normalize(self.cleaned_data["code"])
        except CodeError as exc:
            raise forms.ValidationError(str(exc))
