"""OpenAPI postprocessing: every operation documents its error responses, in the one error format.

drf-spectacular documents what a view returns on success; the errors come from layers around the
view (authentication, permissions, throttles, the parsers, the exception handler in
core.api), so they are added here, by what the operation has: a request body (400, 415),
path parameters (404), authentication (401, 403), writes (409) and the throttles every operation
is under (429). Each refers to one `Error` component.
"""

from __future__ import annotations

from typing import Any

ERROR_COMPONENT = "Error"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error the API returns has this shape.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "status": {"type": "integer", "description": "the HTTP status"},
                "code": {
                    "type": "string",
                    "description": "machine-readable: invalid, not_authenticated, token_not_valid, "
                    "permission_denied, not_found, conflict, throttled, locked_out, ...",
                },
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "description": "per field (or non_field_errors), its messages; only for input errors",
                    "additionalProperties": {},
                },
            },
            "required": ["status", "code", "message"],
        }
    },
    "required": ["error"],
}

DESCRIPTIONS = {
    400: "Invalid input (`fields` names each field's problems) or a malformed request.",
    401: "Not authenticated, or the token is invalid, expired, revoked or older than a password change.",
    403: "Not allowed (or a session request without its CSRF token).",
    404: "No such object (another user's object is a 404 too).",
    409: "The object's state or existing data does not allow this.",
    415: "Unsupported media type: send JSON.",
    429: "Too many requests (see Retry-After), or logins locked after repeated failures.",
}

WRITE_METHODS = {"post", "put", "patch", "delete"}


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}},
    }


def _statuses(method: str, operation: dict[str, Any], path_item_parameters: list[Any]) -> set[int]:
    parameters = [*path_item_parameters, *operation.get("parameters", [])]
    statuses = {429}
    if operation.get("requestBody") or any(p.get("in") == "query" for p in parameters):
        statuses.add(400)
    if operation.get("requestBody"):
        statuses.add(415)
    if any(p.get("in") == "path" for p in parameters) or any(
        p.get("in") == "query" and p.get("name") == "page" for p in parameters
    ):
        statuses.add(404)  # no such object, or no such page of a list
    # An operation open to anonymous clients lists `{}` among its security requirements (or none).
    security: list[Any] = operation.get("security") or []
    authenticated = bool(security) and {} not in security
    if authenticated:
        statuses |= {401, 403}
    if method in WRITE_METHODS and authenticated:
        statuses.add(409)
    return statuses


# DRF's CharField refuses NUL characters ("Null characters are not allowed."), so the schema says
# so for every free-text input: a generated client (or a fuzzer) then knows the rule too.
NO_NUL = "^[^\\u0000]*$"


def _no_nul(schema: Any) -> None:
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not ({"enum", "pattern", "format"} & set(schema)):
        schema["pattern"] = NO_NUL
    for key in ("properties",):
        for child in (schema.get(key) or {}).values():
            _no_nul(child)
    if "items" in schema:
        _no_nul(schema["items"])


def _query_parameter(parameter: dict[str, Any]) -> None:
    schema = parameter.get("schema")
    if not isinstance(schema, dict):
        return
    _no_nul(schema)
    if parameter.get("name") in ("page", "page_size"):
        schema["minimum"] = 1  # core.api.Pagination answers 0, negatives and text with a 400
    if "enum" in schema and "" not in schema["enum"]:
        # A filter given empty (`?side=`, as an HTML form sends it) is no filter at all.
        schema["enum"] = [*schema["enum"], ""]


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS entry."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_COMPONENT] = ERROR_SCHEMA
    for name, component in schemas.items():
        if name.endswith("Request"):  # COMPONENT_SPLIT_REQUEST: what clients send
            _no_nul(component)
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict):
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "query":
                        _query_parameter(parameter)
    for path_item in result.get("paths", {}).values():
        shared = path_item.get("parameters", [])
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(_statuses(method, operation, shared)):
                responses.setdefault(str(status), _error_response(status))
            for status, response in responses.items():
                if status.startswith("4") and "content" not in response:
                    # Documented by the view (a description only): the body is still an Error.
                    response["content"] = {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}
                    }
    return result
