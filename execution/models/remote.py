"""The trading PC at home (remote mode, DESIGN §2): its credential, its status and the quotes it reports."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from qmtjq.models import RotatingKey

from .accounts import BrokerAccount


class WorkerClient(models.Model):
    """A trading PC's credential: reads one account's feed and writes its reports, nothing else."""

    name = models.CharField(_("name"), max_length=100)
    account = models.ForeignKey(
        BrokerAccount, verbose_name=_("account"), on_delete=models.CASCADE, related_name="worker_clients"
    )
    client_id = models.CharField(
        _("client id"), max_length=64, unique=True, help_text=_("Used in signed tokens.")
    )
    api_key_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    api_key_prefix = models.CharField(_("API key starts with"), max_length=12, blank=True, editable=False)
    public_key = models.TextField(
        _("RSA public key (PEM)"),
        blank=True,
        help_text=_("X.509 SubjectPublicKeyInfo PEM, 2048-4096 bits. Enables X-Auth-Token signatures."),
    )
    require_v2 = models.BooleanField(
        _("require v2 signed tokens"),
        default=False,
        help_text=_("Reject API keys and v1 tokens; accept only tokens that sign method, path and body."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    last_used_from = models.GenericIPAddressField(_("last used from"), null=True, blank=True)

    class Meta:
        verbose_name = _("worker credential")
        verbose_name_plural = _("worker credentials")
        ordering = ["account__name", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id} → {self.account.name})"


class WorkerKey(RotatingKey):
    """An API key of a worker credential; during a rotation's grace period two are valid (`qmtjq.keys`)."""

    client = models.ForeignKey(
        WorkerClient, verbose_name=_("worker credential"), on_delete=models.CASCADE, related_name="api_keys"
    )

    class Meta(RotatingKey.Meta):
        verbose_name = _("worker API key")
        verbose_name_plural = _("worker API keys")


class WorkerStatus(models.Model):
    """What the remote worker last said about itself (heartbeats arrive with its reports)."""

    account = models.OneToOneField(
        BrokerAccount, verbose_name=_("account"), on_delete=models.CASCADE, related_name="worker_status"
    )
    client = models.ForeignKey(
        WorkerClient, verbose_name=_("worker credential"), null=True, blank=True, on_delete=models.SET_NULL
    )
    holder = models.CharField(_("worker"), max_length=200, blank=True)  # host:pid of the trading PC
    status = models.CharField(_("worker status"), max_length=300, blank=True)  # e.g. "broker unreachable"
    heartbeat_at = models.DateTimeField(_("last heartbeat (server time)"))
    worker_time = models.DateTimeField(_("last heartbeat (worker clock)"), null=True, blank=True)
    remote_addr = models.GenericIPAddressField(_("from address"), null=True, blank=True)

    class Meta:
        verbose_name = _("remote worker status")
        verbose_name_plural = _("remote worker statuses")

    def __str__(self) -> str:
        return f"{self.account_id} {self.status}"


class WorkerQuote(models.Model):
    """The latest broker quote a trading PC reported for a code (xtdata: last, limits, tick, status)."""

    code = models.CharField(_("code"), max_length=12, unique=True)
    last_price = models.DecimalField(_("last price"), max_digits=14, decimal_places=4)
    prev_close = models.DecimalField(
        _("previous close"), max_digits=14, decimal_places=4, null=True, blank=True
    )
    up_stop = models.DecimalField(_("limit-up price"), max_digits=14, decimal_places=4, null=True, blank=True)
    down_stop = models.DecimalField(
        _("limit-down price"), max_digits=14, decimal_places=4, null=True, blank=True
    )
    tick = models.DecimalField(_("price tick"), max_digits=10, decimal_places=4, null=True, blank=True)
    suspended = models.BooleanField(_("suspended"), default=False)
    quoted_at = models.DateTimeField(_("quote time"), db_index=True)
    received_at = models.DateTimeField(_("received at"))
    account = models.ForeignKey(
        BrokerAccount,
        verbose_name=_("reported by account"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("worker quote")
        verbose_name_plural = _("worker quotes")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.last_price}"


class RemoteSync(models.Model):
    """On the trading PC (remote mode): the last feed pulled and how far reports got; survives restarts.

    Reports are built from the local ledger past these cursors and the cursors
    move only after the server stored the batch, so a crash at any point
    sends a batch again (the server's upserts make that a no-op), never skips one.
    """

    account = models.OneToOneField(
        BrokerAccount, verbose_name=_("account"), on_delete=models.CASCADE, related_name="remote_sync"
    )
    server_url = models.CharField(_("server"), max_length=500, blank=True)
    feed_version = models.CharField(_("feed version"), max_length=64, blank=True)
    feed_pulled_at = models.DateTimeField(_("feed pulled at"), null=True, blank=True)
    round_pk = models.BigIntegerField(default=0)
    event_pk = models.BigIntegerField(default=0)
    fill_pk = models.BigIntegerField(default=0)
    equity_pk = models.BigIntegerField(default=0)
    orders_since = models.DateTimeField(null=True, blank=True)
    rounds_since = models.DateTimeField(null=True, blank=True)
    state_sent_at = models.DateTimeField(null=True, blank=True)
    # What the server last stored of rounds and orders still open: {uid or key: signature}.
    sent = models.JSONField(default=dict)
    reported_at = models.DateTimeField(_("last report stored at"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("remote sync state")
        verbose_name_plural = _("remote sync states")

    def __str__(self) -> str:
        return f"{self.account_id} {self.feed_version[:8]}"
