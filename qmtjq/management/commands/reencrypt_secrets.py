"""`python manage.py reencrypt_secrets`: after a FIELD_ENCRYPTION_KEY rotation, re-encrypt every stored secret.

Rotate keys by prepending the new key (`FIELD_ENCRYPTION_KEY=new,old`), run
this command once, then drop the old key. Covers webhook URLs, bot signing
secrets and Factor Cat passwords and tokens. Exit code 1 when a secret
cannot be read with any of the keys (nothing is changed then).
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from qmtjq import crypto
from qmtjq.channels import channel_secrets_reencrypt
from rotation.credentials import factorcat_secrets_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the first FIELD_ENCRYPTION_KEY (run after prepending a new key)."

    def handle(self, *args, **options):
        try:
            with transaction.atomic():
                channels = channel_secrets_reencrypt()
                accounts = factorcat_secrets_reencrypt()
        except crypto.CryptoError as exc:
            raise CommandError(f"nothing re-encrypted: {exc}") from None
        self.stdout.write(
            f"Re-encrypted {channels} notification channel(s) and {accounts} Factor Cat account(s) "
            "with the first FIELD_ENCRYPTION_KEY; the other keys can now be removed."
        )
