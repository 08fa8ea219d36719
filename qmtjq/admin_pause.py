"""Admin of the global pause: one page showing the switch, changed only through a confirmation step."""

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _

from .models import TradingPause
from .trading import trading_pause_get, trading_pause_set


@admin.register(TradingPause)
class TradingPauseAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path("", self.admin_site.admin_view(self.switch_view), name="qmtjq_tradingpause_changelist"),
            path("<path:object_id>/change/", self.admin_site.admin_view(self.switch_view), name="qmtjq_tradingpause_change"),
        ]

    def switch_view(self, request, object_id=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        pause = trading_pause_get()
        wanted = request.POST.get("paused")
        if request.method == "POST" and wanted in ("on", "off"):
            if not self.has_change_permission(request):
                raise PermissionDenied
            if request.POST.get("confirm") == "yes":
                changed = trading_pause_set(paused=wanted == "on", user=request.user, reason=request.POST.get("reason", ""))
                if changed:
                    text = _("All trading paused: every worker stops sending orders within one cycle.") if wanted == "on" else _("All trading resumed (accounts still need their own trading switch on).")
                    self.message_user(request, text, messages.WARNING if wanted == "on" else messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:qmtjq_tradingpause_changelist"))
            return TemplateResponse(
                request,
                "admin/qmtjq/tradingpause/confirm.html",
                {**self.admin_site.each_context(request), "opts": self.opts, "title": _("Pause all trading?") if wanted == "on" else _("Resume all trading?"), "pausing": wanted == "on", "reason": request.POST.get("reason", "")},
            )
        return TemplateResponse(
            request,
            "admin/qmtjq/tradingpause/switch.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Global trading pause"),
                "pause": pause,
                "env_enabled": settings.TRADING_ENABLED,
                "can_change": self.has_change_permission(request),
            },
        )
