"""``POST /clicktrace/session``: a client id and a signed token for one browser tab.

A request that presents a still-valid token in ``x-clicktrace-client`` gets a fresh token for
the same client id (so its ``seq`` continues); anything else gets a new client id. When the app
gives a ``user_of`` hook, the token is bound to the authenticated user it returns.

Minting is limited per peer address (``rate``; 429 past it): every per-client limit elsewhere
(span ingest, sockets per client) is only as strong as sessions are scarce.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clicktrace.notify.tokens import MAX_USER_LENGTH, TokenSigner
from clicktrace.protocol import CLIENT_HEADER, INVALID_BODY, RATE_LIMITED
from clicktrace.web._body import parse_json, read_body
from clicktrace.web._errors import Refusal, refuse, request_correlation_id
from clicktrace.web._limits import PeerOf, RateLimit, RateLimiter, peer_address

__all__ = ["DEFAULT_SESSION_RATE", "MAX_SESSION_BODY", "UserOf", "resolve_user", "session_route"]

MAX_SESSION_BODY = 1024
# Per peer address: a tab mints one at load and renews daily; a NAT holds many tabs.
DEFAULT_SESSION_RATE = RateLimit(per_second=1.0, burst=30)
UserOf = Callable[[HTTPConnection], Awaitable[str | None] | str | None]
_NO_STORE = {"cache-control": "no-store"}
_LIMITED = Refusal(429, RATE_LIMITED, "too many sessions from this address")
_BAD_BODY = Refusal(400, INVALID_BODY, "expected no body or a small JSON object")


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


async def _body_ok(request: Request) -> bool:
    body = await read_body(request, MAX_SESSION_BODY)  # a client that left: nobody is told
    if isinstance(body, Refusal):
        return False
    raw = body.strip()
    return not raw or isinstance(parse_json(raw), dict)


def session_route(
    signer: TokenSigner,
    *,
    user_of: UserOf | None = None,
    path: str = "/clicktrace/session",
    rate: RateLimit | None = DEFAULT_SESSION_RATE,
    peer_of: PeerOf = peer_address,
) -> Route:
    """The route; ``rate`` is per ``peer_of(scope)`` (``None``: unlimited)."""
    limiter = RateLimiter(rate) if rate is not None else None

    async def session(request: Request) -> Response:
        if limiter is not None and not limiter.allow(peer_of(request.scope)):
            return refuse(
                _LIMITED, request_correlation_id(request.scope), {**_NO_STORE, "retry-after": "1"}
            )
        if not await _body_ok(request):
            return refuse(_BAD_BODY, request_correlation_id(request.scope), _NO_STORE)
        user = await resolve_user(user_of, request)
        claims = signer.claims(request.headers.get(CLIENT_HEADER))
        keep = claims is not None and (claims.user is None or claims.user == user)
        issued = signer.issue(claims.client_id if keep and claims else None, user=user)
        return JSONResponse(issued.as_json(), headers=_NO_STORE)

    return Route(path, session, methods=["POST"], name="clicktrace_session")
