"""The error answers every operation can give, written into the OpenAPI schema from what the
operation is: the schema then documents each status a route really returns (Schemathesis'
`status_code_conformance` holds the app to it).

By shape, for every operation, including routes added later:
- 401 where a token is required (the operation declares security);
- 404 where the path names an object (a missing one and one the user may not see look alike);
- 413 and 422 where there is a request body (`api.http.limits`), 422 where there are parameters.
The rest (403, 409, 429, 503, and 404 from query filters) only some routes give: their
decorators say so, with `errors(...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from fastapi import FastAPI

ERROR: Final = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
DESCRIPTIONS: Final = {
    401: "no token, or a bad or expired one, or a disabled user",
    403: "the role may not do this to an object it sees",
    404: "no such object, or one the user may not see",
    409: "the change conflicts with the object's state",
    413: "the request body is larger than the limit",
    422: "bad body or parameters",
    429: "rate-limited; Retry-After says when to try again",
    503: "the history store is not configured or not reachable",
}
METHODS: Final = ("get", "put", "post", "delete", "patch", "head", "options")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route decorator for these error statuses."""
    return {status: error_response(status) for status in statuses}


def error_response(status: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": ERROR}},
    }


def add_error_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the by-shape error answers to every operation of `schema` (in place)."""
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            statuses = []
            if operation.get("security"):
                statuses.append(401)
            if "{" in path:
                statuses.append(404)
            if "requestBody" in operation:
                statuses.extend((413, 422))
            for status in statuses:
                responses.setdefault(str(status), error_response(status))
    return schema


def document_errors(app: FastAPI) -> None:
    """Make `app.openapi()` add the by-shape answers (once: FastAPI caches the schema)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_error_responses(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
