"""Studio sign-in: one-time links, the session cookie, CSRF, and who may see the studio."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.serving.deps import ServicesDep
from avatar_pipeline.serving.sessions import (
    SESSION_COOKIE,
    SignedIn,
    SigninLinkError,
    check_signin_link,
    cookie_is_secure,
    csrf_matches,
    end_session,
    redeem_signin_link,
    signed_in,
)
from avatar_pipeline.serving.studio.pages import SECURITY_HEADERS, StudioError, render

router = APIRouter(prefix="/studio", include_in_schema=False)

HOW_TO_SIGN_IN = (
    "An admin prints a one-time sign-in link with `avatar-pipeline signin-link EMAIL` "
    "(create the user first with `avatar-pipeline users create EMAIL --admin`)."
)


def _signed_in(request: Request, services: ServicesDep) -> SignedIn:
    token = request.cookies.get(SESSION_COOKIE)
    with session_scope(services.session_factory) as session:
        signed = signed_in(session, services.settings, token)
    if signed is None:
        raise StudioError(
            401,
            "Sign in to the studio",
            "You are not signed in, or your sign-in has expired.",
            hint=HOW_TO_SIGN_IN,
        )
    request.state.studio_user = signed
    return signed


def require_admin(request: Request, services: ServicesDep) -> SignedIn:
    signed = _signed_in(request, services)
    if signed.user.role != "admin":
        raise StudioError(
            403,
            "Admins only",
            f"{signed.user.email} is signed in with the role {signed.user.role!r}; the studio "
            "(kit creation, review and approval) is for admins.",
            hint="An admin can grant the role: `avatar-pipeline users create EMAIL --admin`.",
        )
    return signed


StudioAdmin = Annotated[SignedIn, Depends(require_admin)]


def _same_origin(request: Request) -> bool:
    """An Origin (or, without one, Referer) header from another site is refused."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source is None
    parts = urlsplit(source)
    return (parts.scheme, parts.netloc) == (request.url.scheme, request.url.netloc)


async def _verify_csrf(request: Request, signed: SignedIn) -> SignedIn:
    presented = request.headers.get("x-csrf-token")
    if presented is None and "form" in request.headers.get("content-type", ""):
        form = await request.form()
        value = form.get("csrf_token")
        presented = value if isinstance(value, str) else None
    token = request.cookies.get(SESSION_COOKIE, "")
    services = request.app.state.services.get()
    if not _same_origin(request) or not csrf_matches(services.settings, token, presented):
        raise StudioError(
            403,
            "Request refused (CSRF check)",
            "This form did not come from a studio page of this session, so nothing was changed.",
            hint="Reload the page and try again.",
        )
    return signed


async def check_csrf(request: Request, signed: StudioAdmin) -> SignedIn:
    """Every state-changing studio request: an admin, same origin, the session's CSRF token."""
    return await _verify_csrf(request, signed)


async def check_csrf_any_user(
    request: Request, signed: Annotated[SignedIn, Depends(_signed_in)]
) -> SignedIn:
    return await _verify_csrf(request, signed)


CsrfChecked = Annotated[SignedIn, Depends(check_csrf)]


@router.get("")
def studio_home() -> RedirectResponse:
    return RedirectResponse("/studio/kits", status_code=303)


@router.get("/signin")
def signin_help(request: Request) -> Response:
    return render(request, "signin.html", {"error": None, "token": None, "email": None})


@router.get("/signin/{token}")
def signin_confirm(request: Request, services: ServicesDep, token: str) -> Response:
    """Opening the link shows a button; only pressing it uses the link (so link previews and
    mail scanners do not spend it)."""
    with session_scope(services.session_factory) as session:
        try:
            email = check_signin_link(session, token).email
        except SigninLinkError as exc:
            return render(
                request,
                "signin.html",
                {"error": str(exc), "token": None, "email": None},
                status_code=410,
            )
    # Referrer-Policy same-origin (all studio pages): the link never leaks to another site,
    # and the form's POST still carries a real Origin to check.
    return render(request, "signin.html", {"error": None, "token": token, "email": email})


@router.post("/signin/{token}")
def signin(request: Request, services: ServicesDep, token: str) -> Response:
    if not _same_origin(request):
        raise StudioError(403, "Request refused", "The sign-in form came from another site.")
    try:
        with session_scope(services.session_factory, write=True) as session:
            _user, session_token = redeem_signin_link(session, services.settings, token)
    except SigninLinkError as exc:
        return render(
            request,
            "signin.html",
            {"error": str(exc), "token": None, "email": None},
            status_code=410,
        )
    response = RedirectResponse("/studio/kits", status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        SESSION_COOKIE,
        session_token,
        max_age=services.settings.studio_session_ttl_seconds,
        path="/",
        httponly=True,
        samesite="lax",
        secure=cookie_is_secure(request.url.hostname),
    )
    return response


@router.post("/signout")
def signout(
    request: Request,
    services: ServicesDep,
    _signed: Annotated[SignedIn, Depends(check_csrf_any_user)],
) -> Response:
    with session_scope(services.session_factory, write=True) as session:
        end_session(session, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/studio/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
