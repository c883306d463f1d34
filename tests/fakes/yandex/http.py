"""OpenAI-style error bodies, JSON request bodies and cursor pages, as Yandex's compatible API answers."""

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
    502: ("server_error", "Bad gateway"),
    503: ("server_error", "Service unavailable"),
    504: ("server_error", "Gateway timeout"),
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

    def to_response(self) -> web.Response:
        body = {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}
        return web.json_response(body, status=self.status, headers={"x-request-id": _new_id("req")})


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
