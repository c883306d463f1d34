"""Error bodies, JSON request bodies and cursor pages, as Yandex's OpenAI-compatible API answers.

An error body is OpenAI's envelope (``error.message/type/code/param``, which the openai client parses)
carrying the fields Yandex's Foundation Models REST API sends with every error: ``grpcCode``,
``httpCode``, ``httpStatus`` and the gRPC status name, per Yandex's documented table of codes
("Error codes" in the AI Studio docs): 400 INVALID_ARGUMENT (3), 401 UNAUTHENTICATED (16),
403 PERMISSION_DENIED (7), 429 RESOURCE_EXHAUSTED (8), 500 INTERNAL (13), 501 UNIMPLEMENTED (12),
503 UNAVAILABLE (14), 504 DEADLINE_EXCEEDED (4). Which of these fields the OpenAI-compatible endpoint
sends exactly is unconfirmed; the bot reads only the status code and ``error.message``/``code``.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

_HTTP_ERROR_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("permission_denied", "Permission denied"),
    404: ("not_found", "Not found"),
    429: ("rate_limit_exceeded", "Rate limit exceeded"),
    500: ("server_error", "Internal server error"),
    501: ("server_error", "Not implemented"),
    502: ("server_error", "Bad gateway"),
    503: ("server_error", "Service unavailable"),
    504: ("server_error", "Request timed out"),
}

# HTTP status -> (gRPC code, status name, HTTP reason), from Yandex's table of error codes.
GRPC_STATUS: dict[int, tuple[int, str, str]] = {
    400: (3, "INVALID_ARGUMENT", "Bad Request"),
    401: (16, "UNAUTHENTICATED", "Unauthorized"),
    403: (7, "PERMISSION_DENIED", "Forbidden"),
    404: (5, "NOT_FOUND", "Not Found"),
    405: (12, "UNIMPLEMENTED", "Method Not Allowed"),
    413: (3, "INVALID_ARGUMENT", "Payload Too Large"),
    429: (8, "RESOURCE_EXHAUSTED", "Too Many Requests"),
    500: (13, "INTERNAL", "Internal Server Error"),
    501: (12, "UNIMPLEMENTED", "Not Implemented"),
    502: (14, "UNAVAILABLE", "Bad Gateway"),
    503: (14, "UNAVAILABLE", "Service Unavailable"),
    504: (4, "DEADLINE_EXCEEDED", "Gateway Timeout"),
}


def error_body(
    status: int, message: str, *, type_: str | None = None, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """The JSON body of an HTTP error, as described in this module's docstring."""
    grpc_code, grpc_status, reason = GRPC_STATUS.get(status, (2, "UNKNOWN", "Error"))
    error_type = type_ or _HTTP_ERROR_TYPES.get(status, ("error", "Error"))[0]
    return {
        "error": {
            "message": message,
            "type": error_type,
            "code": code or error_type,
            "param": param,
            "grpcCode": grpc_code,
            "httpCode": status,
            "httpStatus": reason,
            "status": grpc_status,
            "details": [],
        }
    }


class _ClientGone(Exception):
    """The HTTP client closed the connection while we were streaming."""


class _ApiError(Exception):
    """Turned into an OpenAI-style JSON error response by the middleware."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        default_type = _HTTP_ERROR_TYPES.get(status, ("error", "Error"))[0]
        self.status = status
        self.message = message
        self.type = type_ or default_type
        self.code = code or self.type
        self.param = param
        self.headers: dict[str, str] = {}

    def to_response(self) -> web.Response:
        body = error_body(self.status, self.message, type_=self.type, code=self.code, param=self.param)
        headers = {"x-request-id": _new_id("req"), **self.headers}
        return web.json_response(body, status=self.status, headers=headers)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _page(
    items: list[dict[str, Any]], request: web.Request, *, default_limit: int, max_limit: int
) -> dict[str, Any]:
    """An OpenAI cursor page {object: list, data, first_id, last_id, has_more}; ``items`` oldest first."""
    query = request.query
    try:
        limit = int(query.get("limit", default_limit))
    except ValueError:
        raise _ApiError(400, "limit must be an integer", param="limit") from None
    if not 1 <= limit <= max_limit:
        raise _ApiError(400, f"limit must be between 1 and {max_limit}", param="limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise _ApiError(400, "order must be 'asc' or 'desc'", param="order")
    ordered = list(reversed(items)) if order == "desc" else list(items)
    for cursor, keep_after in (("after", True), ("before", False)):
        if cursor in query:
            position = next((i for i, item in enumerate(ordered) if item["id"] == query[cursor]), None)
            if position is None:
                ordered = []
            elif keep_after:
                ordered = ordered[position + 1 :]
            else:
                ordered = ordered[:position]
    data = ordered[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(ordered) > limit,
    }


def _json_body(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _ApiError(400, "Request body must be a JSON object")
    return raw


async def _read_json(request: web.Request) -> dict[str, Any]:
    try:
        return _json_body(await request.json())
    except (ValueError, UnicodeDecodeError) as err:
        raise _ApiError(400, "Request body is not valid JSON") from err
