"""Dependencies as named types (``PredictorDep``, ``StationRole``...) so routes read as signatures."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer

from inspection.predictor import Predictor
from serving.auth import KeyRing, Principal, Role
from serving.errors import ApiError
from serving.service import InspectionService

# Declared for the OpenAPI document only: the key was checked by serving.guard before the route ran.
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="A station or engineer API key.")
_bearer = HTTPBearer(auto_error=False, description="The same key as a bearer token (Prometheus scrapers).")


def get_service(request: Request) -> InspectionService:
    return request.app.state.service


ServiceDep = Annotated[InspectionService, Depends(get_service)]


def get_predictor(service: ServiceDep) -> Predictor:
    return service.require_ready()


PredictorDep = Annotated[Predictor, Depends(get_predictor)]


def require(needed: Role):
    async def check(request: Request, _key: Annotated[str | None, Security(_api_key)] = None,
                    _token: Annotated[object | None, Security(_bearer)] = None) -> Principal:
        principal: Principal | None = request.scope.get("state", {}).get("principal")
        if principal is None:  # only a route on the guard's public list gets here without one
            raise ApiError(401, "unauthenticated", "this endpoint needs an API key: send it in the X-API-Key "
                           "header (or Authorization: Bearer KEY)", headers={"WWW-Authenticate": "Bearer"})
        if not KeyRing.allows(principal.role, needed):
            raise ApiError(403, "forbidden", f"a {principal.role.value} key may not do this: it needs a "
                           f"{needed.value} key")
        return principal

    return check


StationRole = Annotated[Principal, Depends(require(Role.STATION))]
EngineerRole = Annotated[Principal, Depends(require(Role.ENGINEER))]
