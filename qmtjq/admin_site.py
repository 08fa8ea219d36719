"""The admin as the control room: titled qmtjq, what needs a human on top, internal tables grouped away."""

from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Tables the system writes for itself: a trader reads them rarely and never edits them.
INTERNAL_MODELS = {
    ("execution", "paperbook"),
    ("execution", "paperposition"),
    ("execution", "paperorder"),
    ("execution", "papertrade"),
    ("execution", "workerlease"),
    ("execution", "equitypoint"),
    ("execution", "managedcode"),
    ("qmtjq", "securityname"),
}
INTERNAL_APP_LABEL = "internal"

_default_get_app_list = admin.AdminSite.get_app_list


def _get_app_list(self, request, app_label=None):
    apps = _default_get_app_list(self, request, app_label)
    if app_label is not None:
        return apps
    internal, kept = [], []
    for app in apps:
        models = [m for m in app["models"] if (app["app_label"], m["object_name"].lower()) in INTERNAL_MODELS]
        internal.extend(models)
        app = {**app, "models": [m for m in app["models"] if m not in models]}
        if app["models"]:
            kept.append(app)
    if internal:
        kept.append(
            {
                "name": _("Internal tables (paper broker, leases, equity points)"),
                "app_label": INTERNAL_APP_LABEL,
                "app_url": "",
                "has_module_perms": True,
                "models": internal,
            }
        )
    return kept


def _index(self, request, extra_context=None):
    from execution.selectors_status import control_room

    extra_context = {**(extra_context or {}), "control_room": control_room(now=timezone.now())}
    return _default_index(self, request, extra_context)


_default_index = admin.AdminSite.index


def admin_site_setup(site: admin.AdminSite) -> None:
    site.site_header = "qmtjq"
    site.site_title = "qmtjq"
    site.index_title = _("Control room")
    site.get_app_list = _get_app_list.__get__(site)
    site.index = _index.__get__(site)
