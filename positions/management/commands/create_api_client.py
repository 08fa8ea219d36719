"""Create an API client with a fresh API key (and optionally an RSA public key), or rotate a client's key."""

import json
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from positions import services
from positions.models import ApiClient
from positions.tokens import TokenError
from positions.validation import UploadError, validate_strategy_name


class Command(BaseCommand):
    help = (
        "Create an API client for a JoinQuant strategy or script; prints its API key once. "
        "With --rotate CLIENT_ID: issue a new key for an existing client (the old one keeps working "
        "for --grace-hours)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "name", nargs="?", help="Human-readable name, e.g. 'JoinQuant main account' (not with --rotate)."
        )
        parser.add_argument(
            "--key-lifetime-days",
            type=int,
            help="API keys of this client expire after this many days (default: never).",
        )
        parser.add_argument(
            "--rotate", metavar="CLIENT_ID", help="Rotate the API key of this existing client."
        )
        parser.add_argument(
            "--grace-hours",
            type=int,
            default=None,
            help="With --rotate: hours the old key keeps working (default API_KEY_ROTATION_GRACE_HOURS; 0 = stop now).",
        )
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
        if options["rotate"]:
            return self._rotate(options["rotate"], options["grace_hours"], as_json)
        if not name:
            raise CommandError("name is required (or use --rotate CLIENT_ID)")
        lifetime = options["key_lifetime_days"]
        if lifetime is not None and lifetime < 1:
            raise CommandError("--key-lifetime-days must be at least 1")
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
                api_key_lifetime_days=lifetime,
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

    def _rotate(self, client_id: str, grace_hours: int | None, as_json: bool) -> None:
        client = ApiClient.objects.filter(client_id=client_id).first()
        if client is None:
            raise CommandError(f"no API client has the id {client_id!r}")
        if grace_hours is None:
            grace_hours = settings.API_KEY_ROTATION_GRACE_HOURS
        if grace_hours < 0:
            raise CommandError("--grace-hours must not be negative")
        api_key = services.api_client_rotate_key(client=client, grace=timedelta(hours=grace_hours))
        if as_json:
            payload = {"client_id": client.client_id, "api_key": api_key, "old_key_valid_hours": grace_hours}
            self.stdout.write(json.dumps(payload, ensure_ascii=False))
            return
        self.stdout.write(f"New API key for {client.name!r} ({client.client_id})")
        self.stdout.write(f"  api_key:   {api_key}")
        self.stdout.write(f"The previous key keeps working for {grace_hours} hour(s), then stops.")
