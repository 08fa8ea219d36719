"""django-q2 jobs of the positions app."""

from django.utils import timezone

from .models import SeenToken


def rate_windows_purge() -> int:
    """Forget API rate-limit windows that no longer weigh on any decision."""
    from .rate_limits import rate_windows_purge as purge

    return purge(now=timezone.now())


def seen_tokens_purge() -> int:
    """Forget replay-protection entries whose tokens have expired anyway."""
    deleted, _ = SeenToken.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted
