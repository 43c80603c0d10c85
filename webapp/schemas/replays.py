"""`POST /api/v1/orders/<id>/replay`: which destination gets the order's events again, and with which ids."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from webapp.converters import MAX_ID


class OrderReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination_id: int = Field(ge=1, le=MAX_ID, description="The destination to send the order's events to.")
    new_unique_ids: bool = Field(
        default=False, description="Send with new unique ids, so the platform counts them again (only after it "
                                   "lost them). Default: the same ids, which the platform de-duplicates.")
