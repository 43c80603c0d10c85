"""What a scenario proved: events expected and kept by unique id, requests sent before a Retry-After
expired, stuck outbox rows, the store's answers; one row of the reliability table each.

`early_requests` works from what the fake process reports (every request's arrival time, every answer that
carried Retry-After). When the fake grows its own `early_requests()`, `/_control/summary` can return that
instead and `Outcome.early` read it from there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.reliability.store import Answer

# A request that reached the platform this soon after a 429 was already on its way when the 429 was answered
# (another worker's request in flight, or the body being written); later ones were sent after it.
IN_FLIGHT_GRACE = 0.5


def early_requests(requests: list[list[Any]], throttles: list[list[Any]],
                   grace: float = IN_FLIGHT_GRACE) -> list[tuple[str, float, float]]:
    """Requests to a platform that arrived after an answer told it to wait and before that wait was over:
    (platform, arrival time, seconds before the wait ended)."""
    early = []
    for platform, _, at, _, _ in requests:
        ends = [t + seconds for p, t, seconds in throttles if p == platform and t + grace < at < t + seconds]
        if ends:
            early.append((platform, at, max(ends) - at))
    return early


def outbox_states(database_url: str) -> dict[str, int]:
    """Outbox rows by state (all of the scenario's rows: each scenario has its own database)."""
    from tests.conftest import _pg

    engine = sa.create_engine(_pg(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT state, count(*) FROM events GROUP BY state")).all()
    finally:
        engine.dispose()
    return {state: count for state, count in rows}


@dataclass
class Outcome:
    """The measured result of one scenario; `problems()` lists every broken promise."""

    scenario: str
    backend: str
    orders: int
    expected: Counter
    kept: Counter
    resent: int
    early: list[tuple[str, float, float]]
    states: dict[str, int]
    answers: list[Answer]
    allowed_answers: str  # which non-2xx answers the scenario may show: "none", "503+retry-after", "no answer"
    health: tuple[int, Any]
    drain_seconds: float | None
    crashes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # the scenario's own steps (sync run, feed build)
    latency_bound: float | None = None  # longest one ingest answer may take (writes never wait on long work)
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return sum(1 for key in self.expected if self.kept.get(key, 0) == 0)

    @property
    def doubled(self) -> int:
        return sum(count - 1 for count in self.kept.values() if count > 1)

    @property
    def extra(self) -> int:
        return sum(1 for key in self.kept if key not in self.expected)

    @property
    def delivered(self) -> int:
        return sum(1 for key in self.expected if self.kept.get(key, 0) > 0)

    @property
    def stuck(self) -> int:
        return sum(count for state, count in self.states.items() if state != "delivered")

    def unexpected_answers(self) -> list[Answer]:
        bad = [a for a in self.answers if not a.ok]
        if self.allowed_answers == "503+retry-after":
            return [a for a in bad if not (a.status == 503 and a.retry_after)]
        if self.allowed_answers == "no answer":
            return [a for a in bad if a.status != 0]
        return bad

    @property
    def worst_latency(self) -> float:
        return max((a.seconds for a in self.answers), default=0.0)

    def problems(self) -> list[str]:
        found = []
        if self.lost:
            missing = [key for key in self.expected if self.kept.get(key, 0) == 0]
            found.append(f"{self.lost} expected events never reached the platform, e.g. {missing[:5]}")
        if self.doubled:
            found.append(f"{self.doubled} events kept twice at the platform")
        if self.extra:
            found.append(f"{self.extra} events nobody expected, e.g. {[k for k in self.kept if k not in self.expected][:5]}")
        if self.early:
            worst = max(ahead for _, _, ahead in self.early)
            found.append(f"{len(self.early)} requests before Retry-After expired (up to {worst:.1f} s early)")
        if self.stuck or self.states.get("delivered", 0) != sum(self.expected.values()):
            found.append(f"outbox not drained as expected: {self.states} for {sum(self.expected.values())} events")
        bad = self.unexpected_answers()
        if bad:
            statuses = Counter(a.status for a in bad)
            found.append(f"{len(bad)} ingest answers the store should not see ({dict(statuses)}; worst "
                         f"{max(a.seconds for a in bad):.1f} s; e.g. {bad[0].error[:200]!r})")
        slow = [a for a in self.answers if self.latency_bound is not None and a.seconds > self.latency_bound]
        if slow:
            found.append(f"{len(slow)} ingest answers took longer than {self.latency_bound:.0f} s "
                         f"(worst {max(a.seconds for a in slow):.1f} s)")
        if self.health[0] != 200:
            found.append(f"/healthz after the run: {self.health}")
        if self.drain_seconds is None:
            found.append("the outbox did not drain in time")
        found += [f"process crashed: {crash}" for crash in self.crashes]
        found += self.failures
        return found

    def row(self) -> tuple[str, ...]:
        bad = len([a for a in self.answers if not a.ok])
        drain = "not drained" if self.drain_seconds is None else f"{self.drain_seconds:.1f} s"
        verdict = "ok" if not self.problems() else "FAILED"
        return (self.scenario, self.backend, str(self.orders), str(sum(self.expected.values())),
                str(self.delivered), str(self.doubled), str(self.resent), str(self.lost), str(len(self.early)),
                str(bad), f"{self.worst_latency:.2f} s", drain, verdict)


HEADER = ("scenario", "database", "orders", "events expected", "delivered", "duplicates", "re-sends absorbed",
          "lost", "early requests", "ingest non-2xx", "worst ingest latency", "time to drain", "result")


def markdown_table(outcomes: list[Outcome]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(outcome.row()) + " |" for outcome in outcomes]
    return "\n".join(lines) + "\n"


def text_table(outcomes: list[Outcome]) -> str:
    rows = [HEADER, *(outcome.row() for outcome in outcomes)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


def write_report(outcomes: list[Outcome], path: Path, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    details = [f"- **{o.scenario}** ({o.backend}): " + ("; ".join(o.problems()) or "every promise held")
               for o in outcomes]
    notes = [f"- {o.scenario} ({o.backend}): {note}" for o in outcomes for note in o.notes]
    path.write_text(f"# Reliability ({mode} run)\n\n{markdown_table(outcomes)}\n" + "\n".join(details)
                    + ("\n\nNotes:\n" + "\n".join(notes) if notes else "") + "\n", encoding="utf-8")
