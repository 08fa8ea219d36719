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
