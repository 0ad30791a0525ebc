"""Which requests a caller may touch: an office its own district's, an operator its provinces'.

Anything else answers ``404`` exactly like a request that does not exist, so an
office cannot probe for other offices' request ids. The rule is
:func:`find_visible`; the API gets the caller from its bearer token, the pages from
the session cookie, and both ask the same question.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, status

from vcs_intake.container import ContainerDep
from vcs_intake.domain import RequestState
from vcs_intake.store import RequestStore
from vcs_shared.auth import Principal
from vcs_shared.http_auth import CurrentPrincipal

NOT_FOUND = "no such request"


async def find_visible(
    store: RequestStore, request_id: str, principal: Principal
) -> RequestState | None:
    """The request if the caller may see it; None when it does not exist or is not theirs."""
    request = await store.get(request_id)
    if request is None or not principal.may_act_for(request.district_code, request.province_code):
        return None
    return request


async def visible_request(
    request_id: str, principal: CurrentPrincipal, container: ContainerDep
) -> RequestState:
    """The request if the caller may see it, otherwise the same 404 as for a missing one."""
    request = await find_visible(container.store, request_id, principal)
    if request is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND)
    return request


VisibleRequest = Annotated[RequestState, Depends(visible_request)]
