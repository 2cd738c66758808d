"""Dependencies as named types (``InspectorDep``, ``StationRole``...) so routes read as signatures."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from inspection.inspector import Inspector
from serving.auth import KeyRing, Role
from serving.errors import ApiError
from serving.service import InspectionService

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="A station or engineer API key.")


def get_service(request: Request) -> InspectionService:
    return request.app.state.service


ServiceDep = Annotated[InspectionService, Depends(get_service)]


def get_inspector(service: ServiceDep) -> Inspector:
    return service.require_ready()


InspectorDep = Annotated[Inspector, Depends(get_inspector)]


def _presented_key(request: Request, header: str | None) -> str | None:
    if header:
        return header
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require(needed: Role):
    async def check(request: Request, header: Annotated[str | None, Security(_api_key)] = None) -> Role:
        keys: KeyRing = request.app.state.keys
        if keys.disabled:
            return Role.ENGINEER
        key = _presented_key(request, header)
        if key is None:
            raise ApiError(401, "unauthenticated", "this endpoint needs an API key: send it in the X-API-Key "
                           "header (or Authorization: Bearer KEY)", headers={"WWW-Authenticate": "Bearer"})
        role = keys.role_of(key)
        if role is None:
            raise ApiError(401, "invalid_api_key", "the API key is not valid: check the station's configuration",
                           headers={"WWW-Authenticate": "Bearer"})
        if not KeyRing.allows(role, needed):
            raise ApiError(403, "forbidden", f"a {role.value} key may not do this: it needs a {needed.value} key")
        return role

    return check


StationRole = Annotated[Role, Depends(require(Role.STATION))]
EngineerRole = Annotated[Role, Depends(require(Role.ENGINEER))]
