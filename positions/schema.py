"""OpenAPI description of the API client authentication (drf-spectacular)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiClientAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "positions.authentication.ApiClientAuthentication"
    name = ["ApiKey", "SignedToken"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-Auth-Token",
                "description": (
                    "base64(JSON {auth_data, signature}); RSA-PSS SHA-256 over "
                    "json.dumps(auth_data, sort_keys=True). v2 also signs method, path, body_sha256, nonce."
                ),
            },
        ]


ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string", "description": "What was wrong, naming the field."}},
    "required": ["error"],
}
_ERROR_ANSWERS = {
    "400": "Bad input: a body, path or query value broke a rule (the message names the field).",
    "401": "No or invalid credentials (one generic answer for unknown, disabled or v2-only clients).",
    "403": "The credential may not use this strategy, rotation or account.",
    "404": "The named strategy, rotation or account does not exist.",
    "409": "A snapshot_id reused for another strategy.",
    "413": "Request body larger than 1 MiB.",
    "429": "Per-client rate limit exceeded; see Retry-After.",
}


def _answers_for(path: str, method: str) -> list[str]:
    codes = ["400", "401", "403", "429"]
    if "{" in path:
        codes.append("404")
    if method == "post":
        codes.append("413")
    if path.endswith("/positions/update"):
        codes.append("409")
    return codes


def error_responses_hook(result, generator, request, public):
    """Document every error answer the API gives, on every operation, as `{"error": ...}` JSON.

    Listed per operation by what can happen there, so a schema-driven client never meets
    an undocumented status (the auth info endpoint is public and answers only 200).
    """
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if path.endswith("/auth/info"):
                continue
            for code in _answers_for(path, method):
                operation["responses"].setdefault(
                    code,
                    {"description": _ERROR_ANSWERS[code], "content": {"application/json": {"schema": ref}}},
                )
    return result


def text_param_schema(*, max_length: int, pattern: str | None = None) -> dict:
    """A path or query string: at least one character, at most `max_length`."""
    schema = {"type": "string", "minLength": 1, "maxLength": max_length}
    if pattern:
        schema["pattern"] = pattern
    return schema


class WorkerAuthenticationScheme(ApiClientAuthenticationScheme):
    """Remote workers use the same two header schemes with a worker credential."""

    target_class = "execution.remote.auth.WorkerAuthentication"
    name = ["WorkerApiKey", "WorkerSignedToken"]
