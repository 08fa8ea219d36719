"""`python manage.py create_worker_client ACCOUNT`: a trading PC's credential (remote mode), or rotate its key."""

import json
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from execution.models import BrokerAccount, WorkerClient
from execution.remote.credentials import worker_client_create, worker_client_rotate_key
from positions.tokens import TokenError


class Command(BaseCommand):
    help = (
        "Create the credential a trading PC uses for one account (prints its client id and API key once). "
        "With --rotate CLIENT_ID: issue a new key; the old one keeps working for --grace-hours."
    )

    def add_arguments(self, parser):
        parser.add_argument("account", nargs="?", help="The account's name (not with --rotate).")
        parser.add_argument("--name", default="", help="Human-readable name (default: 'trading PC of ACCOUNT').")
        parser.add_argument("--public-key", help="Path of an X.509 SPKI PEM RSA public key (signed tokens).")
        parser.add_argument("--require-v2", action="store_true", help="Accept only v2 signed tokens.")
        parser.add_argument("--rotate", metavar="CLIENT_ID", help="Rotate the API key of this credential.")
        parser.add_argument(
            "--grace-hours",
            type=int,
            default=None,
            help="With --rotate: hours the old key keeps working (default API_KEY_ROTATION_GRACE_HOURS; 0 = stop now).",
        )
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print exactly one JSON object.")

    def handle(self, *args, account, name, public_key, require_v2, rotate, grace_hours, as_json, **options):
        if rotate:
            return self._rotate(rotate, grace_hours, as_json)
        if not account:
            raise CommandError("ACCOUNT is required (or use --rotate CLIENT_ID)")
        broker_account = BrokerAccount.objects.filter(name=account).first()
        if broker_account is None:
            raise CommandError(f"no account is named {account!r}")
        public_key_pem = ""
        if public_key:
            try:
                public_key_pem = Path(public_key).read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"cannot read public key {public_key}: {exc}")
        try:
            client, api_key = worker_client_create(
                account=broker_account, name=name, public_key_pem=public_key_pem, require_v2=require_v2
            )
        except TokenError as exc:
            raise CommandError(str(exc))
        if as_json:
            self.stdout.write(json.dumps({"client_id": client.client_id, "api_key": api_key}))
            return
        self.stdout.write(f"Created worker credential {client.name!r} for account {broker_account.name}")
        self.stdout.write(f"  QMTJQ_WORKER_CLIENT_ID={client.client_id}")
        self.stdout.write(f"  QMTJQ_WORKER_API_KEY={api_key}")
        self.stdout.write("The API key is shown only now; it is stored hashed. 此 API Key 只显示这一次。")

    def _rotate(self, client_id: str, grace_hours: int | None, as_json: bool) -> None:
        client = WorkerClient.objects.filter(client_id=client_id).first()
        if client is None:
            raise CommandError(f"no worker credential has the id {client_id!r}")
        if grace_hours is None:
            grace_hours = settings.API_KEY_ROTATION_GRACE_HOURS
        if grace_hours < 0:
            raise CommandError("--grace-hours must not be negative")
        api_key = worker_client_rotate_key(client=client, grace=timedelta(hours=grace_hours))
        if as_json:
            payload = {"client_id": client.client_id, "api_key": api_key, "old_key_valid_hours": grace_hours}
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(f"New API key for {client.name!r} ({client.client_id})")
        self.stdout.write(f"  QMTJQ_WORKER_API_KEY={api_key}")
        self.stdout.write(f"The previous key keeps working for {grace_hours} hour(s), then stops.")
