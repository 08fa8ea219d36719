from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from .authentication import ClientAuth
from .rate_limits import rate_take


class ApiClientRateThrottle(BaseThrottle):
    """Per-client request budget, set on each API client (requests per minute; 0 = unlimited).

    The count lives in the database (`positions.rate_limits`), shared by every
    web process and counted atomically.
    """

    def allow_request(self, request, view):
        self._wait = None
        auth = request.auth
        if not isinstance(auth, ClientAuth):
            return True  # staff sessions are not rate limited
        limit = auth.client.rate_limit_per_minute
        if limit <= 0:
            return True
        decision = rate_take(client=auth.client, limit=limit, now=timezone.now())
        self._wait = decision.retry_after
        return decision.allowed

    def wait(self):
        return self._wait
