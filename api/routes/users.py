"""The users admins manage, and a user's own password and "log out everywhere".

Every change here that alters what a user may do (disable, role, buildings, sites) or their
password ends their sessions: their tokens carry the old version and are refused from the next
request on, live streams included. Changes that would leave no enabled admin are refused (422).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response, status

from api.auth.users import User
from api.deps import Admin, AppContext, Context, CurrentUser, unprocessable, user_out
from api.errors import LoginFailedError, PermissionDeniedError
from api.routes.auth import check_password, clear_cookie, issue_token
from api.schemas import (
    BuildingsIn,
    PasswordChangeIn,
    PasswordIn,
    RoleIn,
    SitesIn,
    TokenOut,
    UnlockOut,
    UserAdminOut,
    UserIn,
)

router = APIRouter(prefix="/api/v1/users", tags=["users"])

Username = Annotated[str, Path(max_length=64, description="the user's username")]
Responses = dict[int | str, dict[str, Any]]
_ADMIN: Responses = {403: {"description": "only admins manage users"}}
_FOUND: Responses = {**_ADMIN, 404: {"description": "no user of that name"}}
_CHANGE: Responses = {
    **_FOUND,
    422: {"description": "the change is not possible (says why): e.g. it would leave no "
          "enabled admin, or the role needs a team or buildings"},
}  # fmt: skip


def _admin_out(
    context: Context, user: User, held: dict[str, tuple[int, int]] | None = None
) -> UserAdminOut:
    if held is None:
        held = context.users.backoff.held_back(context.clock_ms())
    clients, until = held.get(user.username, (0, None))
    return UserAdminOut.model_validate(
        {
            **user_out(user),
            "disabled": user.disabled,
            "backoff_clients": clients,
            "backoff_until_ms": until,
        }
    )


@router.get("", response_model=list[UserAdminOut], responses=_ADMIN)
def list_users(_admin: Admin, context: Context) -> list[UserAdminOut]:
    held = context.users.backoff.held_back(context.clock_ms())
    return [_admin_out(context, u, held) for u in context.users.list()]


@router.post(
    "",
    response_model=UserAdminOut,
    status_code=status.HTTP_201_CREATED,
    responses={**_ADMIN, 422: {"description": "the user cannot be made as asked (says why)"}},
)
def create_user(body: UserIn, _admin: Admin, context: Context) -> UserAdminOut:
    _known_team(context, body.team)
    user = context.users.add(
        body.username,
        body.password,
        body.role,
        display_name=body.display_name,
        team=body.team,
        buildings=body.buildings,
        known_buildings=list(context.site.building_by_id),
        sites=body.sites,
        known_sites=_known_sites(context),
    )
    return _admin_out(context, user)


def _known_sites(context: AppContext) -> list[str]:
    """The deployment's sites (a portfolio's estates, or the one site)."""
    return [s.id for s in context.site.sites]


def _known_team(context: AppContext, team: str | None) -> None:
    """Teams are a managed list (`/api/v1/teams`): a mistyped one is refused, not kept."""
    if team is not None and team not in (known := context.store.list_teams()):
        raise unprocessable(("body", "team"), f"no team {team!r} (known: {', '.join(known)})")


@router.post(
    "/me/logout-all",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={204: {"description": "every session of this user has ended, this one too"}},
)
def logout_everywhere(principal: CurrentUser, response: Response, context: Context) -> None:
    """Ends every session of the calling user, on every device (any role)."""
    context.users.end_sessions(principal.username)
    clear_cookie(response)


@router.put(
    "/me/password",
    response_model=TokenOut,
    responses={
        403: {"description": "the current password is wrong"},
        422: {"description": "the new password is too short or long, or the current one"},
        429: {"description": "too many attempts: as for logging in (Retry-After)"},
    },
)
def change_own_password(
    body: PasswordChangeIn,
    principal: CurrentUser,
    request: Request,
    response: Response,
    context: Context,
) -> TokenOut:
    """The calling user's own password (any role), given the current one. Every session of
    the user ends, on every device (a password is changed because it may be known); this one
    goes on as a new session: the answer is its token, and its cookie is set.

    The current password is checked as a login is: a wrong one counts towards the same
    limits and back-off (429 + Retry-After), so a session left open is no way to guess it."""
    if body.new_password == body.current_password:
        raise unprocessable(("body", "new_password"), "the new password is the current one")
    try:
        check_password(context, request, principal.username, body.current_password)
    except LoginFailedError:
        raise PermissionDeniedError("the current password is wrong") from None
    context.users.set_password(principal.username, body.new_password)
    return issue_token(context, context.users.found(principal.username), request, response)


@router.put("/{username}/password", response_model=UserAdminOut, responses=_FOUND)
def set_password(
    username: Username, body: PasswordIn, admin: Admin, context: Context
) -> UserAdminOut:
    """A new password for a user who forgot theirs (tell it to them another way): their
    sessions end and their failed logins are forgotten. Not the admin's own: that takes the
    current password (`PUT /api/v1/users/me/password`)."""
    if username == admin.user.username:
        raise unprocessable(
            ("path", "username"), "your own password: PUT /api/v1/users/me/password, with the "
            "current one",
        )  # fmt: skip
    context.users.set_password(username, body.password)
    return _admin_out(context, context.users.found(username))


@router.post("/{username}/disable", response_model=UserAdminOut, responses=_CHANGE)
def disable_user(username: Username, _admin: Admin, context: Context) -> UserAdminOut:
    """The user can no longer log in; their sessions end at once."""
    return _admin_out(context, context.users.set_disabled(username, True))


@router.post("/{username}/enable", response_model=UserAdminOut, responses=_FOUND)
def enable_user(username: Username, _admin: Admin, context: Context) -> UserAdminOut:
    return _admin_out(context, context.users.set_disabled(username, False))


@router.delete("/{username}", status_code=status.HTTP_204_NO_CONTENT, responses=_CHANGE)
def delete_user(username: Username, _admin: Admin, context: Context) -> None:
    """Gone, with their sessions (work orders keep their name in the history)."""
    context.users.delete(username)


@router.put("/{username}/buildings", response_model=UserAdminOut, responses=_CHANGE)
def set_buildings(
    username: Username, body: BuildingsIn, _admin: Admin, context: Context
) -> UserAdminOut:
    """A steward's buildings; their sessions end (the next login has the new scope)."""
    user = context.users.set_buildings(
        username, body.buildings, known=list(context.site.building_by_id)
    )
    return _admin_out(context, user)


@router.put("/{username}/role", response_model=UserAdminOut, responses=_CHANGE)
def set_role(username: Username, body: RoleIn, _admin: Admin, context: Context) -> UserAdminOut:
    """A new role (with a team for a technician, buildings for a steward); sessions end."""
    _known_team(context, body.team)
    user = context.users.set_role(
        username,
        body.role,
        team=body.team,
        buildings=body.buildings,
        known=list(context.site.building_by_id),
        sites=body.sites,
        known_sites=_known_sites(context),
    )
    return _admin_out(context, user)


@router.put("/{username}/sites", response_model=UserAdminOut, responses=_CHANGE)
def set_sites(username: Username, body: SitesIn, _admin: Admin, context: Context) -> UserAdminOut:
    """The whole sites a user sees: a steward every building of them (beside their
    buildings); a dispatcher or technician only them (a regional desk); [] lifts the limit.
    Their sessions end (the next login has the new scope)."""
    user = context.users.set_sites(username, body.sites, known=_known_sites(context))
    return _admin_out(context, user)


@router.post("/{username}/unlock", response_model=UnlockOut, responses=_FOUND)
def unlock_user(username: Username, _admin: Admin, context: Context) -> UnlockOut:
    """Forget the account's failed logins from every client: no waiting, no password reset."""
    return UnlockOut(username=username, cleared=context.users.unlock(username))
