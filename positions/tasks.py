"""django-q2 jobs of the positions app."""

from django.utils import timezone

from .models import SeenToken


def seen_tokens_purge() -> int:
    """Forget replay-protection entries whose tokens have expired anyway."""
    deleted, _ = SeenToken.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted
