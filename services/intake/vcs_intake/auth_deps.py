"""Which requests a caller may touch: an office its own district's, an operator its provinces'.

Anything else answers ``404`` exactly like a request that does not exist, so an
office cannot probe for other offices' request ids.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, status

from vcs_intake.container import ContainerDep
from vcs_intake.domain import RequestState
from vcs_shared.auth import Principal
from vcs_shared.http_auth import CurrentPrincipal
from vcs_shared.offices import Office

NOT_FOUND = "no such request"


async def visible_request(
    request_id: str, principal: CurrentPrincipal, container: ContainerDep
) -> RequestState:
    """The request if the caller may see it, otherwise the same 404 as for a missing one."""
    request = await container.store.get(request_id)
    if request is None or not principal.may_act_for(request.district_code, request.province_code):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND)
    return request


VisibleRequest = Annotated[RequestState, Depends(visible_request)]


def ensure_may_submit_for(principal: Principal, office: Office) -> None:
    """403 when an office submits for another district (or an operator outside its provinces)."""
    if not principal.may_act_for(office.district_code, office.province_code):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"this token may not submit for district {office.district_code}",
        )
