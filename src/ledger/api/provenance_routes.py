"""Provenance with proofs, for platforms that check rather than trust."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter

from ledger.api.json_body import StrictJsonRoute
from ledger.api.log_routes import RuntimeDep, proof_store_problem
from ledger.api.problems import ApiProblem
from ledger.service.proofs import ProofStoreError
from ledger.service.provenance import NotYetSealedError, provenance_bundle

router = APIRouter(tags=["provenance"], route_class=StrictJsonRoute)


@router.get(
    "/units/{unit_id}/provenance",
    summary="A unit's history, each event with a tlog-proof against the latest "
    "cosigned checkpoint (verify with ledger.verify.provenance)",
)
def provenance(rt: RuntimeDep, unit_id: UUID) -> dict[str, Any]:
    try:
        return provenance_bundle(rt.ledger.event_store, rt.log, unit_id, rt.proofs)
    except NotYetSealedError as error:
        raise ApiProblem(409, "not-yet-sealed", f"{error}; retry in a second") from None
    except ProofStoreError as error:
        raise proof_store_problem(error) from None
