"""Worker credentials (remote trading PCs): keys with their state, and why the last refusal happened.

Created and rotated with `manage.py create_worker_client` (the key is shown once there).
"""

from django.contrib import admin

from positions.admin import ApiClientAdmin

from ..models import WorkerClient


@admin.register(WorkerClient)
class WorkerClientAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "client_id", "enabled", "last_used_at", "last_auth_failure_at"]
    list_filter = ["enabled"]
    search_fields = ["name", "client_id", "account__name"]
    list_select_related = ["account"]
    fields = [
        "name",
        "account",
        "client_id",
        "enabled",
        "require_v2",
        "public_key",
        "api_keys_table",
        "created_at",
        "last_used_at",
        "last_used_from",
        "last_auth_failure",
        "last_auth_failure_at",
    ]
    readonly_fields = [
        "account",
        "client_id",
        "api_keys_table",
        "created_at",
        "last_used_at",
        "last_used_from",
        "last_auth_failure",
        "last_auth_failure_at",
    ]
    api_keys_table = ApiClientAdmin.api_keys_table

    def has_add_permission(self, request):
        return False  # `manage.py create_worker_client` shows the new key once
