"""Factor Cat accounts: the password is write-only (stored encrypted, never shown back), "Log in now"."""

import logging

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters

from execution.admin.base import ConfirmedActionsMixin, _buttons
from qmtjq import crypto

from ..credentials import factorcat_client_for, factorcat_login, factorcat_password_set
from ..factorcat import FactorCatError
from ..forms import FactorCatAccountForm, FactorCatLoginForm
from ..models import FactorCatAccount
from .base import _local
from .browse import FactorCatBrowseMixin

logger = logging.getLogger(__name__)


@admin.register(FactorCatAccount)
class FactorCatAccountAdmin(FactorCatBrowseMixin, ConfirmedActionsMixin, admin.ModelAdmin):
    form = FactorCatAccountForm
    list_display = [
        "name",
        "username",
        "base_url",
        "remember_password",
        "tls_label",
        "token_state",
        "last_login_at",
        "last_error_short",
    ]
    list_filter = ["remember_password", "verify_tls"]
    search_fields = ["name", "username", "base_url"]
    actions = ["log_in_now"]
    object_actions = ("log_in_now",)
    readonly_fields = [
        "tools",
        "password_state",
        "tls_warning",
        "token_state",
        "token_expires_at",
        "last_login_at",
        "last_error",
    ]

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (None, {"fields": ["name", "base_url", "username"]}),
                (
                    _("Password"),
                    {
                        "fields": ["password", "remember_password"],
                        "description": _("The password is stored encrypted and never shown again."),
                    },
                ),
                (_("Connection"), {"fields": ["verify_tls", "tls_warning"]}),
            ]
        return [
            (None, {"fields": ["name", "base_url", "username", "tools"]}),
            (
                _("Password"),
                {
                    "fields": ["password_state", "password", "clear_password", "remember_password"],
                    "description": _(
                        "The password is stored encrypted and never shown again: type a new one to replace it."
                    ),
                },
            ),
            (_("Connection"), {"fields": ["verify_tls", "tls_warning"]}),
            (_("Login"), {"fields": ["token_state", "token_expires_at", "last_login_at", "last_error"]}),
        ]

    # Error reports (and their e-mails) must never carry the typed password.
    @method_decorator(sensitive_post_parameters("password"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    @method_decorator(sensitive_post_parameters("password"))
    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, extra_context)

    @method_decorator(sensitive_post_parameters("password"))
    def object_action_view(self, request, object_id, action):
        return super().object_action_view(request, object_id, action)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "base_url":
            kwargs["assume_scheme"] = "https"  # Factor Cat is HTTPS; Django 6 makes this the default
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change and {"base_url", "username"} & set(form.changed_data):
            # The stored token belongs to the old user or server.
            obj.token_encrypted, obj.token_expires_at = "", None
        if "verify_tls" in form.changed_data or (not change and not obj.verify_tls):
            logger.warning(
                "Factor Cat account %s: TLS certificate verification turned %s by %s",
                obj.name,
                "ON" if obj.verify_tls else "OFF",
                request.user,
            )
        if change:
            # Only what the form edits: a job may be storing a fresh token at this moment.
            model_fields = {field.name for field in self.opts.concrete_fields}
            fields = [name for name in form.cleaned_data if name in model_fields]
            obj.save(update_fields=[*fields, "token_encrypted", "token_expires_at"])
        else:
            obj.save()
        password = form.cleaned_data.get("password") or ""
        try:
            if password:
                factorcat_password_set(account=obj, password=password)
            elif obj.password_encrypted and (
                form.cleaned_data.get("clear_password") or not obj.remember_password
            ):
                factorcat_password_set(account=obj, password="")
                self.message_user(request, _("The stored password was forgotten."), messages.INFO)
        except crypto.CryptoError as exc:  # the form checked the key; it changed in between
            self.message_user(
                request, _("The password was not stored: %(why)s") % {"why": exc}, messages.ERROR
            )

    # -- columns --

    @admin.display(description=_("password"))
    def password_state(self, obj):
        if obj is not None and obj.password_encrypted:
            return _("stored (encrypted)")
        return _("not stored")

    @admin.display(description=_("verify TLS certificates"), ordering="verify_tls")
    def tls_label(self, obj):
        if obj.verify_tls:
            return _("on")
        return format_html('<strong class="warning-off">{}</strong>', _("OFF"))

    @admin.display(description=_("TLS warning"))
    def tls_warning(self, obj):
        if obj is None or obj.verify_tls:
            return "—"
        return format_html(
            '<strong class="warning-off">{}</strong>',
            _(
                "Certificate verification is OFF: anyone on the network path can read the password and "
                "the token. Turn it off only for a server whose certificate is known to be broken."
            ),
        )

    @admin.display(description=_("token"))
    def token_state(self, obj):
        if obj is None or not obj.token_encrypted:
            return _("no token")
        if obj.token_expires_at is None:
            return _("stored, no expiry in the token")
        if obj.token_expires_at <= timezone.now():
            return _("expired at %(at)s") % {"at": _local(obj.token_expires_at)}
        return _("valid until %(at)s") % {"at": _local(obj.token_expires_at)}

    @admin.display(description=_("last error"))
    def last_error_short(self, obj):
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else (obj.last_error or "—")

    @admin.display(description=_("actions"))
    def tools(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        return _buttons(
            [
                (self.object_action_url(obj, "log_in_now"), _("Log in now…")),
                (
                    reverse("admin:rotation_factorcataccount_browse", args=[obj.pk]),
                    _("Browse strategies and create a rotation"),
                ),
            ]
        )

    # -- log in --

    @admin.action(description=_("Log in to Factor Cat now"), permissions=["change"])
    def log_in_now(self, request, queryset):
        accounts = list(queryset)
        if len(accounts) != 1:
            self.message_user(request, _("Log in one account at a time."), messages.ERROR)
            return None
        account = accounts[0]
        remembered = account.remember_password and bool(account.password_encrypted)
        confirmed = self.confirmed(request)
        form = FactorCatLoginForm(request.POST if confirmed else None)
        if confirmed and form.is_valid():
            password = form.cleaned_data["password"]
            if password or remembered:
                try:
                    if password:
                        factorcat_login(account=account, password=password)
                    else:
                        factorcat_client_for(account=account, force_login=True)
                except FactorCatError as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                    return None
                self.log_change(request, account, "Logged in to Factor Cat")
                self.message_user(
                    request,
                    _("Logged in to Factor Cat as %(user)s. Token: %(token)s.")
                    % {"user": account.username, "token": self.token_state(account)},
                    messages.SUCCESS,
                )
                return None
            form.add_error("password", _("Enter the password: none is remembered for this account."))
        return self.confirm_page(
            request,
            "admin/rotation/factorcataccount/login_confirm.html",
            action="log_in_now",
            selected=[account],
            title=_("Log in to Factor Cat as %(user)s?") % {"user": account.username},
            account=account,
            form=form,
            remembered=remembered,
        )

    # -- browsing Factor Cat --
