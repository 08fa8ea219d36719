from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class QmtjqConfig(AppConfig):
    name = "qmtjq"
    verbose_name = _("qmtjq")
