"""Logging in and out, tokens, and the users admins manage."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from api.auth.users import User
from api.deps import COOKIE, Admin, Context, CurrentUser, client_key, user_out
from api.errors import AccountLockedError, LoginFailedError, RateLimitedError
from api.http.clients import cookie_is_secure
from api.http.openapi import errors
from api.schemas import LoginIn, TokenOut, UserAdminOut, UserIn, UserOut

router = APIRouter(prefix="/api/v1", tags=["auth"])


def _token(context: Context, user: User, request: Request, response: Response) -> TokenOut:
    token, claims = context.tokens.issue(
        username=user.username, user_id=user.id, role=str(user.role)
    )
    response.set_cookie(
        COOKIE,
        token,
        max_age=context.tokens.ttl_s,
        path="/api/v1",
        httponly=True,
        samesite="strict",
        secure=cookie_is_secure(request, context.settings),
    )
    response.headers["Cache-Control"] = "no-store"
    return TokenOut(
        access_token=token,
        expires_in_s=context.tokens.ttl_s,
        expires_at_ms=claims.expires_ms,
        user=UserOut.model_validate(user_out(user)),
    )


@router.post(
    "/auth/login",
    response_model=TokenOut,
    responses={401: {"description": "wrong username or password"}, 429: {}},
)
def login(body: LoginIn, request: Request, response: Response, context: Context) -> TokenOut:
    retry_after = context.login_limiter.hit(client_key(request))
    if retry_after is not None:
        context.metrics.count("rate_limited")
        raise RateLimitedError("too many login attempts from this client", retry_after)
    try:
        user = context.users.authenticate(body.username, body.password)
    except AccountLockedError:
        context.metrics.count("lockouts")
        raise
    except LoginFailedError:
        context.metrics.count("login_failures")
        raise
    context.user_cache.forget(user.id)
    return _token(context, user, request, response)


@router.post("/auth/refresh", response_model=TokenOut)
def refresh(
    principal: CurrentUser, request: Request, response: Response, context: Context
) -> TokenOut:
    return _token(context, principal.user, request, response)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/api/v1", httponly=True, samesite="strict")


@router.get("/auth/me", response_model=UserOut)
def me(principal: CurrentUser) -> UserOut:
    return UserOut.model_validate(user_out(principal.user))


@router.get("/users", response_model=list[UserAdminOut], tags=["users"], responses=errors(403))
def list_users(_admin: Admin, context: Context) -> list[UserAdminOut]:
    return [
        UserAdminOut.model_validate(
            {**user_out(u), "disabled": u.disabled, "locked_until_ms": u.locked_until_ms}
        )
        for u in context.users.list()
    ]


@router.post(
    "/users",
    response_model=UserAdminOut,
    status_code=status.HTTP_201_CREATED,
    tags=["users"],
    responses=errors(403),
)
def create_user(body: UserIn, _admin: Admin, context: Context) -> UserAdminOut:
    user = context.users.add(
        body.username,
        body.password,
        body.role,
        display_name=body.display_name,
        team=body.team,
        buildings=body.buildings,
        known_buildings=list(context.site.building_by_id),
    )
    return UserAdminOut.model_validate(
        {**user_out(user), "disabled": user.disabled, "locked_until_ms": user.locked_until_ms}
    )
