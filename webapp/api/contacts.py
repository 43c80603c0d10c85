"""GET /api/v1/contacts/<email>: the contact and its LTV summary (contract shape)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify

from webapp.api import bp
from webapp.api.common import not_found
from webapp.extensions import db
from webapp.models import Contact
from webapp.security import api_key_required
from webapp.services.contacts.rfm import live_rfm
from webapp.services.contacts.views import contact_json


@bp.get("/contacts/<path:email>")
@api_key_required
def get_contact(email: str):  # noqa: ANN201
    contact = find_by_email(email)
    while contact is not None and contact.merged_into_id is not None:
        contact = db.session.get(Contact, contact.merged_into_id)
    if contact is None:
        raise not_found(f"contact {email!r}")
    body = contact_json(contact)
    scores = live_rfm(contact.id)
    body["rfm"] = None if scores is None else dict(zip(("recency", "frequency", "monetary", "segment"), scores,
                                                           strict=True))
    return jsonify(body)


def find_by_email(email: str) -> Contact | None:
    """Emails are stored trimmed and lower-cased (the order schema does it), so an exact match on the
    unique index finds any spelling of the address."""
    return db.session.scalar(sa.select(Contact).where(Contact.email == email.strip().lower()))
