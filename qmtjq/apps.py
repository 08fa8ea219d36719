from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class QmtjqConfig(AppConfig):
    name = "qmtjq"
    verbose_name = _("qmtjq")

    def ready(self):
        post_migrate.connect(_cache_table_ensure, sender=self, dispatch_uid="qmtjq-createcachetable")


def _cache_table_ensure(sender, using="default", verbosity=1, **kwargs):
    """`migrate` also creates the database cache table (the default shared cache); a no-op when it exists."""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)
