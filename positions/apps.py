from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PositionsConfig(AppConfig):
    name = "positions"
    verbose_name = _("Positions")

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from . import schema  # noqa: F401 - registers the OpenAPI auth extension
        from .models import ApiClient, ApiKey

        # Web processes cache API clients and keys (qmtjq.credential_cache): any saved
        # or deleted row, from a service or the admin, must reach every process.
        # Queryset .update() sends no signal: qmtjq.keys calls credentials_changed itself.
        for model in (ApiClient, ApiKey):
            for signal in (post_save, post_delete):
                signal.connect(
                    _credential_row_changed, sender=model, dispatch_uid=f"credentials-{model.__name__}"
                )


def _credential_row_changed(sender, **kwargs):
    from qmtjq.credential_cache import credentials_changed

    credentials_changed()
