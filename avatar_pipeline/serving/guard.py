"""The request guard: pure ASGI middleware that answers before the app reads a body.

In this order, for every HTTP request:

1. ``OPTIONS`` on a known path: ``204`` with an ``Allow`` listing every method of every route
   on that path (Starlette alone answers ``405`` naming only the first route's methods); a
   ``405`` from the app gets the same full ``Allow``.
2. A request with a body to a bearer-authenticated route (one depending on
   ``deps.get_current_user``) and no valid bearer token: ``401`` before a byte of the body is
   read — an anonymous 1 GiB upload is never received, let alone spooled to a temp file.
3. A declared ``Content-Length`` over the route's limit: ``413`` before the body is read.
4. A body without a (truthful) ``Content-Length`` is counted as it streams in; at one byte over
   the limit the app's read fails, its answer is dropped, and the client gets ``413``.

Limits: a multipart (upload) route takes ``services.upload_limits.max_bytes`` plus
``MULTIPART_OVERHEAD_BYTES`` for the form's other fields; every other route takes
``settings.api_max_json_bytes``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from fastapi import routing as fastapi_routing
from fastapi.dependencies.models import Dependant
from fastapi.params import Form
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from avatar_pipeline.serving.config import LazyServices, Services

MULTIPART_OVERHEAD_BYTES = 64 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyTooLargeError(Exception):
    """Raised from ``receive`` when the streamed body passes the route's limit."""


@dataclass(frozen=True)
class RouteInfo:
    bearer: bool
    multipart: bool


def flat_routes(routes: list[Any]) -> list[Any]:
    """The app's routes with included routers expanded to routes with their full paths
    (FastAPI >= 0.160 keeps ``include_router`` branches lazily in ``app.routes``)."""
    expand = getattr(fastapi_routing, "_iter_included_route_candidates", None)
    return list(expand(routes)) if expand is not None else list(routes)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def route_info(route: APIRoute) -> RouteInfo:
    from avatar_pipeline.serving.deps import get_current_user

    bearer = any(call is get_current_user for call in _calls(route.dependant))
    multipart = any(isinstance(p.field_info, Form) for p in route.dependant.body_params)
    return RouteInfo(bearer=bearer, multipart=multipart)


def _json_response(status: int, detail: str, error: str, headers: dict[str, str]) -> list[Message]:
    body = json.dumps({"detail": detail, "error": error}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return [
        {"type": "http.response.start", "status": status, "headers": raw},
        {"type": "http.response.body", "body": body},
    ]


class RequestGuard:
    """See the module docstring. ``app_routes`` returns the app's routes (read per request, so
    routes added after the middleware count)."""

    def __init__(self, app: ASGIApp, *, app_routes: Callable[[], list[Any]]) -> None:
        self.app = app
        self.app_routes = app_routes
        self._info: dict[tuple[str, tuple[str, ...]], RouteInfo] = {}

    def _match(self, scope: Scope) -> tuple[APIRoute | None, list[str]]:
        """The route that fully matches (if any) and every method allowed on the path."""
        full: APIRoute | None = None
        methods: set[str] = set()
        for route in flat_routes(self.app_routes()):
            if not hasattr(route, "methods") or not hasattr(route, "matches"):
                continue
            match, _ = route.matches(scope)
            if match is Match.NONE:
                continue
            methods |= set(route.methods or ())
            if match is Match.FULL and full is None and isinstance(route, APIRoute):
                full = route
        if methods:
            methods.add("OPTIONS")
        order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        return full, sorted(methods, key=lambda m: (order.index(m) if m in order else 99, m))

    def _route_info(self, route: APIRoute) -> RouteInfo:
        key = (route.path, tuple(sorted(route.methods or ())))
        if key not in self._info:
            self._info[key] = route_info(route)
        return self._info[key]

    @staticmethod
    def _services(scope: Scope) -> Services:
        lazy: LazyServices = scope["app"].state.services
        return lazy.get()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        route, allowed = self._match(scope)
        allow = ", ".join(allowed)
        if method == "OPTIONS" and allowed:
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [(b"allow", allow.encode()), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        try:
            declared_bytes = int(declared) if declared is not None else None
        except ValueError:
            await self._reply(send, 400, "Content-Length is not a number", "BadContentLength")
            return
        has_body = chunked or bool(declared_bytes)
        limit: int | None = None
        upload_limit: int | None = None
        if route is not None and method in BODY_METHODS:
            info = self._route_info(route)
            services = self._services(scope)
            if has_body and info.bearer:
                from avatar_pipeline.serving.deps import authenticate_bearer

                try:
                    authenticate_bearer(services.settings, headers.get("authorization"), scope)
                except HTTPException as exc:
                    await self._reply(
                        send, 401, str(exc.detail), "NotAuthenticated", exc.headers or {}
                    )
                    return
            if info.multipart:
                upload_limit = services.upload_limits.max_bytes
                limit = upload_limit + MULTIPART_OVERHEAD_BYTES
            else:
                limit = services.settings.api_max_json_bytes
        elif method in BODY_METHODS and has_body:
            limit = self._services(scope).settings.api_max_json_bytes
        if limit is not None and declared_bytes is not None and declared_bytes > limit:
            await self._too_large(send, declared_bytes, limit, upload_limit)
            return
        await self._run(scope, receive, send, limit, allow, upload_limit)

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        limit: int | None,
        allow: str,
        upload_limit: int | None,
    ) -> None:
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if limit is not None and message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLargeError(f"request body over {limit} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a truncated body; ours (413) goes instead
            if message["type"] == "http.response.start":
                started = True
                if message["status"] == 405 and allow:
                    kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                    message = {**message, "headers": [*kept, (b"allow", allow.encode())]}
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self._too_large(send, received, limit or 0, upload_limit)

    @staticmethod
    async def _reply(
        send: Send, status: int, detail: str, error: str, headers: dict[str, str] | None = None
    ) -> None:
        for message in _json_response(status, detail, error, headers or {}):
            await send(message)

    async def _too_large(self, send: Send, size: int, limit: int, upload_limit: int | None) -> None:
        what = (
            f"the upload limit is {upload_limit} bytes per file (plus "
            f"{MULTIPART_OVERHEAD_BYTES} bytes for the other form fields)"
            if upload_limit is not None
            else f"this endpoint accepts at most {limit} bytes"
        )
        await self._reply(
            send,
            413,
            f"the request body is too large ({size} bytes seen); {what}. Nothing was stored — "
            "resize or compress the file and send it again",
            "RequestTooLarge",
            {"Connection": "close"},
        )
