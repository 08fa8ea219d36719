"""`python manage.py create_worker_client ACCOUNT [--public-key FILE] [--json]`: a trading PC's credential (remote mode), or `--rotate CLIENT_ID` its key."""

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
            raise CommandError(f"no broker account named {account!r}; create it in admin or with create_account")
        pem = ""
        if public_key:
            try:
                pem = Path(public_key).read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"--public-key {public_key}: cannot read it ({exc})")
        if require_v2 and not pem:
            raise CommandError("--require-v2 needs --public-key: without an RSA key nothing could sign in")
        try:
            client, api_key = worker_client_create(
                account=broker_account, name=name, public_key_pem=pem, require_v2=require_v2
            )
        except TokenError as exc:
            raise CommandError(f"--public-key {public_key}: {exc}")
        if as_json:
            self.stdout.write(_json_line(client, api_key))
            return
        self.stdout.write(f"Worker credential {client.client_id} created for account {broker_account.name}.")
        self.stdout.write("API key (shown only this once; it is stored hashed):")
        self.stdout.write(f"  {api_key}")
        self.stdout.write("On the trading PC, put into .env:")
        self.stdout.write("  QMTJQ_SERVER_URL=https://your-server")
        self.stdout.write(f"  QMTJQ_WORKER_CLIENT_ID={client.client_id}")
        if require_v2:
            self.stdout.write("  QMTJQ_WORKER_PRIVATE_KEY_FILE=C:\\path\\to\\private.pem")
        else:
            self.stdout.write(f"  QMTJQ_WORKER_API_KEY={api_key}")
        self.stdout.write(f"then run: python manage.py qmt_worker --account {broker_account.name}")

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


def _json_line(client, api_key: str) -> str:
    return json.dumps(
        {
            "client_id": client.client_id,
            "account": client.account.name,
            "name": client.name,
            "api_key": api_key,
            "rsa_key": bool(client.public_key),
            "require_v2": client.require_v2,
        }
    )
