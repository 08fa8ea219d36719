"""Write an RSA key pair for signed X-Auth-Tokens."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from positions.tokens import key_pair_generate


class Command(BaseCommand):
    help = (
        "Write private_key.pem (PKCS#8, keep it in the JoinQuant research root) and "
        "public_key.pem (X.509 SPKI, paste it into the API client in admin) to DIR."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="Folder to write the two PEM files into.")
        parser.add_argument(
            "--bits", type=int, choices=[2048, 3072, 4096], default=2048, help="RSA key size."
        )

    def handle(self, *args, out, bits, **options):
        folder = Path(out)
        private_path, public_path = folder / "private_key.pem", folder / "public_key.pem"
        existing = [str(path) for path in (private_path, public_path) if path.exists()]
        if existing:
            raise CommandError(f"refusing to overwrite existing key file(s): {', '.join(existing)}")
        folder.mkdir(parents=True, exist_ok=True)
        private_pem, public_pem = key_pair_generate(bits)
        # Exclusive create: never clobber a key that appeared meanwhile.
        with open(private_path, "xb") as handle:
            handle.write(private_pem)
        try:
            private_path.chmod(0o600)
        except OSError:  # pragma: no cover - Windows ACLs
            pass
        with open(public_path, "xb") as handle:
            handle.write(public_pem)
        self.stdout.write(
            f"Wrote {private_path} (private, PKCS#8) and {public_path} (public, X.509 SPKI), {bits} bits."
        )
