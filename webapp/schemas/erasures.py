"""Response shapes of erasures (`DELETE /api/v1/contacts/<email>`, `GET /api/v1/erasures/<id>`): they carry
progress and each destination's answer, never a personal value."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErasureDestinationOut(_Out):
    id: int
    kind: str
    name: str
    status: str = Field(description="pending (asked, no answer yet) | succeeded (the platform accepted the "
                                    "deletion) | not_supported (the platform has no deletion call: delete by "
                                    "hand) | failed (refused; see message) | not_asked (disabled) | gone")
    message: str | None = Field(description="The platform's answer or why it was not asked")
    event_id: int | None = Field(description="The outbox event that carries the request (its attempts are "
                                             "in the delivery log)")


class ErasureOut(_Out):
    """One erasure: local data removed in chunks (progress: done of total rows), deletion asked of every
    destination. Kept without the personal data it removed."""

    id: str
    status: str = Field(description="queued | running (local cleaning, then waiting for the destinations) | "
                                    "succeeded | failed (see `error`; a failed erasure whose local part is "
                                    "unfinished is finished with POST /api/v1/erasures/{id}/retry)")
    phase: str = Field(description="orders | checkouts | events | loose (events tied to no contact) | rest | "
                                   "destinations (local data done)")
    total: int = Field(description="Orders and events to clean, counted when asked for")
    done: int
    counts: dict[str, int] = Field(description="Rows cleaned so far per kind")
    contacts: int = Field(description="Contacts anonymised (the one holding the email and those merged into it)")
    destinations: list[ErasureDestinationOut]
    requested_by: str = Field(description="api | cli | dashboard")
    error: str | None
    created_at: str | None
    started_at: str | None
    local_done_at: str | None
    finished_at: str | None
