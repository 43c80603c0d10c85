"""GET /api/v1/contacts/<email>: the contact and its LTV summary (contract shape)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify

from webapp.api import bp
from webapp.api.common import not_found
from webapp.extensions import db
from webapp.models import Contact
from webapp.security import api_key_required
from webapp.services.contact_views import contact_json


@bp.get("/contacts/<path:email>")
@api_key_required
def get_contact(email: str):  # noqa: ANN201
    email = email.strip().lower()
    contact = db.session.scalar(sa.select(Contact).where(sa.func.lower(Contact.email) == email))
    while contact is not None and contact.merged_into_id is not None:
        contact = db.session.get(Contact, contact.merged_into_id)
    if contact is None:
        raise not_found(f"contact {email!r}")
    return jsonify(contact_json(contact))
