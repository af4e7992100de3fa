"""Teams (a managed list: admins add and remove them) and the people orders can go to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from api.auth.scope import STAFF_WHO_ASSIGN
from api.auth.users import Role
from api.deps import Admin, Context, CurrentUser, not_found
from api.http.openapi import errors
from api.schemas import AssigneeOut, TeamIn

router = APIRouter(prefix="/api/v1", tags=["teams"])


@router.get("/teams", response_model=list[str])
def list_teams(_user: CurrentUser, context: Context) -> list[str]:
    return context.store.list_teams()


@router.post(
    "/teams", response_model=list[str], status_code=status.HTTP_201_CREATED,
    responses=errors(403, 422),
)  # fmt: skip
def add_team(body: TeamIn, _admin: Admin, context: Context) -> list[str]:
    context.store.add_team(body.name)
    return context.store.list_teams()


@router.delete("/teams/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(403, 404))
def remove_team(
    name: Annotated[str, Path(max_length=64)], _admin: Admin, context: Context
) -> Response:
    if name not in context.store.list_teams():
        raise not_found(f"no team {name!r}")
    context.store.remove_team(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/assignees", response_model=list[AssigneeOut], responses=errors(403))
def list_assignees(principal: CurrentUser, context: Context) -> list[AssigneeOut]:
    """Who a work order can be given to: enabled admins, dispatchers and technicians."""
    principal.require_role(*STAFF_WHO_ASSIGN, Role.TECHNICIAN)
    return [
        AssigneeOut(
            username=u.username,
            display_name=u.display_name,
            role=str(u.role),  # type: ignore[arg-type]
            team=u.team,
        )
        for u in context.users.list()
        if not u.disabled and u.role is not Role.STEWARD
    ]
