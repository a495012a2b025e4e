"""``POST /clicktrace/session``: a client id and a signed token for one browser tab.

A request that presents a still-valid token in ``x-clicktrace-client`` gets a fresh token for
the same client id (so its ``seq`` continues); anything else gets a new client id. When the app
gives a ``user_of`` hook, the token is bound to the authenticated user it returns.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from clicktrace.notify.tokens import MAX_USER_LENGTH, TokenSigner

__all__ = ["MAX_SESSION_BODY", "UserOf", "resolve_user", "session_route"]

MAX_SESSION_BODY = 1024
UserOf = Callable[[HTTPConnection], Awaitable[str | None] | str | None]
_NO_STORE = {"cache-control": "no-store"}


async def resolve_user(user_of: UserOf | None, conn: HTTPConnection) -> str | None:
    """The app's authenticated user for ``conn`` (``None``: anonymous)."""
    if user_of is None:
        return None
    user = user_of(conn)
    if inspect.isawaitable(user):
        user = await user
    if user is not None and (not isinstance(user, str) or len(user) > MAX_USER_LENGTH):
        raise TypeError(f"user_of must return None or a str of at most {MAX_USER_LENGTH} chars")
    return user


def _error(status: int, code: str, message: str) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=_NO_STORE)


async def _body_ok(request: Request) -> bool:
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_SESSION_BODY:
            return False
        chunks.append(chunk)
    raw = b"".join(chunks).strip()
    if not raw:
        return True
    try:
        return isinstance(json.loads(raw), dict)
    except (ValueError, RecursionError):
        return False


def session_route(
    signer: TokenSigner, *, user_of: UserOf | None = None, path: str = "/clicktrace/session"
) -> Route:
    async def session(request: Request) -> JSONResponse:
        if not await _body_ok(request):
            return _error(400, "invalid_body", "expected no body or a small JSON object")
        user = await resolve_user(user_of, request)
        claims = signer.claims(request.headers.get("x-clicktrace-client"))
        keep = claims is not None and (claims.user is None or claims.user == user)
        issued = signer.issue(claims.client_id if keep and claims else None, user=user)
        return JSONResponse(issued.as_json(), headers=_NO_STORE)

    return Route(path, session, methods=["POST"], name="clicktrace_session")
