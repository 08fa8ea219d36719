from rest_framework.permissions import SAFE_METHODS, BasePermission

from .authentication import ClientAuth


def is_api_client(request) -> bool:
    return isinstance(request.auth, ClientAuth)


def is_staff_session(request) -> bool:
    user = request.user
    return bool(
        user and user.is_authenticated and getattr(user, "is_staff", False) and not is_api_client(request)
    )


class IsApiClientOrStaff(BasePermission):
    """API clients may read and write; logged-in staff may read with their session."""

    message = "authentication required: send X-API-Key or X-Auth-Token"

    def has_permission(self, request, view):
        if is_api_client(request):
            return True
        return request.method in SAFE_METHODS and is_staff_session(request)


class IsApiClient(BasePermission):
    message = "this endpoint needs an API client (X-API-Key or X-Auth-Token)"

    def has_permission(self, request, view):
        return is_api_client(request)
