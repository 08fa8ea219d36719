from rest_framework.throttling import SimpleRateThrottle

from .authentication import ClientAuth


class ApiClientRateThrottle(SimpleRateThrottle):
    """Per-client request budget, set on each API client (requests per minute)."""

    scope = "api_client"

    def get_rate(self):
        return None  # set per request in allow_request

    def allow_request(self, request, view):
        auth = request.auth
        if not isinstance(auth, ClientAuth):
            return True  # staff sessions are not rate limited
        self.num_requests, self.duration = auth.client.rate_limit_per_minute, 60
        if self.num_requests <= 0:
            return True
        self.key = f"throttle_api_client_{auth.client.pk}"
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) >= self.num_requests:
            return self.throttle_failure()
        return self.throttle_success()
