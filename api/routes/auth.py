"""Logging in and out, and tokens: a login starts a session, a refresh continues it (up to
its absolute lifetime), a logout ends it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from api.auth.users import User
from api.deps import (
    COOKIE,
    BearerCredentials,
    Context,
    CurrentUser,
    client_key,
    token_from,
    user_out,
)
from api.errors import ApiError, LoginBackoffError, LoginFailedError, RateLimitedError
from api.http.clients import cookie_is_secure
from api.schemas import LoginIn, TokenOut, UserOut

router = APIRouter(prefix="/api/v1", tags=["auth"])


def issue_token(
    context: Context,
    user: User,
    request: Request,
    response: Response,
    *,
    session_id: str | None = None,
    auth_ms: int | None = None,
) -> TokenOut:
    """A token for a new session, or for the session `session_id` begun at `auth_ms`; also
    set as the cookie (which the dashboard's live updates use)."""
    token, claims = context.tokens.issue(
        username=user.username,
        user_id=user.id,
        role=str(user.role),
        version=user.token_version,
        session_id=session_id,
        auth_ms=auth_ms,
    )
    expires_in_s = max(0, (claims.expires_ms - context.clock_ms()) // 1000)
    response.set_cookie(
        COOKIE,
        token,
        max_age=expires_in_s,
        path="/api/v1",
        httponly=True,
        samesite="strict",
        secure=cookie_is_secure(request, context.settings),
    )
    response.headers["Cache-Control"] = "no-store"
    return TokenOut(
        access_token=token,
        expires_in_s=expires_in_s,
        expires_at_ms=claims.expires_ms,
        session_ends_at_ms=claims.auth_ms + context.tokens.session_max_s * 1000,
        user=UserOut.model_validate(user_out(user)),
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/api/v1", httponly=True, samesite="strict")


@router.post(
    "/auth/login",
    response_model=TokenOut,
    responses={
        401: {"description": "wrong username or password"},
        429: {
            "description": "too many attempts from this client, or this client must wait "
            "before trying this account again (Retry-After)"
        },
    },
)
def login(body: LoginIn, request: Request, response: Response, context: Context) -> TokenOut:
    user = check_password(context, request, body.username, body.password)
    return issue_token(context, user, request, response)


def check_password(context: Context, request: Request, username: str, password: str) -> User:
    """A login's check, wherever a password is tried (a login, a password change): the
    client's attempt limit, then the account's back-off and the password, all counted."""
    client = client_key(request)
    retry_after = context.login_limiter.hit(client)
    if retry_after is not None:
        context.metrics.count("rate_limited")
        raise RateLimitedError("too many login attempts from this client", retry_after)
    try:
        return context.users.authenticate(username, password, client)
    except LoginBackoffError:
        context.metrics.count("login_backoffs")
        raise
    except LoginFailedError:
        context.metrics.count("login_failures")
        raise


@router.post(
    "/auth/refresh",
    response_model=TokenOut,
    responses={401: {"description": "no valid token, or the session is over its lifetime"}},
)
def refresh(
    principal: CurrentUser, request: Request, response: Response, context: Context
) -> TokenOut:
    """A fresh token of the same session: it expires no later than the session's absolute
    end (`session_ends_at_ms`), after which this answers 401."""
    claims = principal.claims
    return issue_token(
        context,
        principal.user,
        request,
        response,
        session_id=claims.session_id,
        auth_ms=claims.auth_ms,
    )


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={204: {"description": "the session is over (also when there was none)"}},
)
def logout(
    request: Request,
    response: Response,
    context: Context,
    credentials: BearerCredentials,
) -> None:
    """Ends the session of the token sent (header or cookie): it and every token refreshed
    from the same login are refused from now on. Clears the cookie."""
    clear_cookie(response)
    try:
        claims = context.tokens.decode(token_from(request, credentials, cookie_allowed=True))
    except ApiError:
        return  # no token, or one that is no good anyway: nothing to end
    context.sessions.revoke(claims, context.tokens.session_max_s * 1000)


@router.get("/auth/me", response_model=UserOut)
def me(principal: CurrentUser) -> UserOut:
    return UserOut.model_validate(user_out(principal.user))
