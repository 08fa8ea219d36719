"""`python manage.py create_worker_client ACCOUNT [--public-key FILE] [--json]`: a trading PC's credential."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from execution.models import BrokerAccount
from execution.remote.credentials import worker_client_create
from positions import tokens


class Command(BaseCommand):
    help = (
        "Create a worker credential for one account (remote mode: the trading PC talks HTTPS to this "
        "server). The API key is printed once and stored hashed; it can read that account's feed and "
        "write its reports, nothing else."
    )

    def add_arguments(self, parser):
        parser.add_argument("account", help="Broker account name (as in admin).")
        parser.add_argument(
            "--name", default="", help="A label, e.g. 'home PC' (default: trading PC of ACCOUNT)."
        )
        parser.add_argument(
            "--public-key",
            metavar="FILE",
            help="RSA public key (PEM) of the trading PC: enables signed X-Auth-Token requests.",
        )
        parser.add_argument(
            "--require-v2",
            action="store_true",
            help="Accept only v2 signed tokens (needs --public-key); the API key is then refused.",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object (for scripts).")

    def handle(self, *args, account, name, public_key, require_v2, **options):
        try:
            broker_account = BrokerAccount.objects.get(name=account)
        except BrokerAccount.DoesNotExist:
            raise CommandError(
                f"no broker account named {account!r}; create it in admin or with create_account"
            )
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
        except tokens.TokenError as exc:
            raise CommandError(f"--public-key {public_key}: {exc}")
        if options["json"]:
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
