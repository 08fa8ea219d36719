"""Create an API client with a fresh API key (and optionally an RSA public key)."""

import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from positions import services
from positions.models import ApiClient
from positions.tokens import TokenError
from positions.validation import UploadError, validate_strategy_name


class Command(BaseCommand):
    help = "Create an API client for a JoinQuant strategy or script; prints its API key once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Human-readable name, e.g. 'JoinQuant main account'.")
        parser.add_argument("--client-id", help="Client id used in signed tokens (default: generated).")
        parser.add_argument("--public-key", help="Path of an X.509 SPKI PEM RSA public key (2048-4096 bits).")
        parser.add_argument(
            "--strategy",
            action="append",
            default=[],
            help="Allow only this strategy (repeatable). Without it the client may use all strategies.",
        )
        parser.add_argument("--require-v2", action="store_true", help="Accept only v2 signed tokens.")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print exactly one JSON object."
        )

    def handle(self, *args, name, client_id, public_key, strategy, require_v2, as_json, **options):
        public_key_pem = ""
        if public_key:
            try:
                public_key_pem = Path(public_key).read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"cannot read public key {public_key}: {exc}")
        if client_id and ApiClient.objects.filter(client_id=client_id).exists():
            raise CommandError(f"client id {client_id!r} already exists")
        try:
            names = [validate_strategy_name(s, "--strategy") for s in strategy]
            client, api_key = services.api_client_create(
                name=name,
                client_id=client_id,
                public_key_pem=public_key_pem,
                strategy_names=names,
                require_v2=require_v2,
            )
        except (UploadError, TokenError) as exc:
            raise CommandError(str(exc))
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
            )
        if as_json:
            self.stdout.write(
                json.dumps({"client_id": client.client_id, "api_key": api_key}, ensure_ascii=False)
            )
            return
        self.stdout.write(f"Created API client {client.name!r}")
        self.stdout.write(f"  client_id: {client.client_id}")
        self.stdout.write(f"  api_key:   {api_key}")
        self.stdout.write("The API key is shown only now; it is stored hashed. 此 API Key 只显示这一次。")
        scope = ", ".join(names) if names else "all strategies"
        self.stdout.write(f"  strategies: {scope}; RSA key: {'yes' if public_key_pem else 'no'}")
