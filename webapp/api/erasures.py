"""DELETE /api/v1/contacts/<email> (admin keys): forget a person everywhere; GET /api/v1/erasures/<id>: how far
it got; POST /api/v1/erasures/<id>/retry (admin keys): finish a failed one (webapp/services/contacts/erasure.py)."""

from __future__ import annotations

from flask import jsonify

from webapp.api import bp
from webapp.api.common import not_found
from webapp.api.openapi import document
from webapp.schemas.erasures import ErasureOut
from webapp.schemas.errors import ApiError, problem
from webapp.schemas.responses import ErrorResponse
from webapp.security import api_key_required
from webapp.services.contacts import erasure, erasure_recovery


@bp.delete("/contacts/<path:email>")
@api_key_required
def erase_contact(email: str):  # noqa: ANN201
    try:
        record = erasure.start_erasure(email, requested_by="api")
    except ValueError as exc:
        raise ApiError(422, [problem(["email"], str(exc).removeprefix("email: "))]) from None
    return jsonify(erasure.erasure_json(record)), 202


@bp.get("/erasures/<erasure_id>")
@api_key_required
def get_erasure(erasure_id: str):  # noqa: ANN201
    record = erasure.get_erasure(erasure_id)
    if record is None:
        raise not_found(f"erasure {erasure_id!r}")
    return jsonify(erasure.erasure_json(record))


@bp.post("/erasures/<erasure_id>/retry")
@api_key_required
def retry_erasure(erasure_id: str):  # noqa: ANN201
    try:
        record = erasure_recovery.retry_erasure(erasure_id)
    except LookupError:
        raise not_found(f"erasure {erasure_id!r}") from None
    except erasure_recovery.NotRetryable as exc:
        raise ApiError(409, [problem([], str(exc))]) from None
    return jsonify(erasure.erasure_json(record)), 202


document(
    ("delete", "/contacts/{email}", "Erase a person (admin keys): their personal data is removed here in chunks "
     "(orders, events, logged requests, checkouts, onsite identities) while amounts and aggregates stay, and "
     "every destination is asked to delete them (Klaviyo data-privacy deletion job, contact.erased webhook). "
     "A repeat while one runs answers the running one.", None, {202: ErasureOut, 422: ErrorResponse}, []),
    ("get", "/erasures/{id}", "An erasure's status, progress and each destination's answer (no personal data)",
     None, {200: ErasureOut, 404: ErrorResponse}, []),
    ("post", "/erasures/{id}/retry", "Finish a failed erasure (admin keys): its local cleaning goes on in a new "
     "job from the phase and row where it stopped (a worker that died there SHOPRELAY_CHUNK_ATTEMPTS times, an "
     "error), and destinations that refused its deletion request are asked again. 409 when it is not failed or "
     "its local part is done (then only a refusing platform is left: delete the person in its dashboard).", None,
     {202: ErasureOut, 404: ErrorResponse, 409: ErrorResponse}, []),
)
