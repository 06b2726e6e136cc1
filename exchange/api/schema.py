"""OpenAPI post-processing: the error answers every REST operation can give, documented once.

Views document their own successes and the errors particular to them; the ones every
authenticated operation shares (bad input, no or bad token, missing scope, not found or not
visible) and the body checks every operation with a request body shares (size, media type) are
added here, so a view that forgets them still has a truthful schema."""

from __future__ import annotations

from typing import Any

SHARED_ERRORS = ("400", "401", "403", "404")
BODY_ERRORS = ("413", "415")
METHODS = {"get", "put", "post", "patch", "delete"}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "additionalProperties": {}}},
    },
    "required": ["code", "detail", "errors"],
}


def _error_response(status: str) -> dict[str, Any]:
    return {
        "description": f"Error {status}: `{{code, detail, errors}}`",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def document_shared_errors(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular post-processing hook (see SPECTACULAR_SETTINGS)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            statuses = SHARED_ERRORS + (BODY_ERRORS if method in {"post", "put", "patch"} else ())
            for status in statuses:
                responses.setdefault(status, _error_response(status))
    return result
