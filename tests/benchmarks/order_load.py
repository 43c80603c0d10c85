"""The store's side of an ingest benchmark: closed-loop clients posting single orders back to back
(throughput) and an open-loop probe posting on a fixed schedule, each answer timed from when it was due."""

from __future__ import annotations

import http.client
import itertools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tests.benchmarks.bench_support import bench_order, env_int, order_body

CLIENTS = env_int("SHOPRELAY_BENCH_SYNC_CLIENTS", 2)
PROBE_RATE = float(os.environ.get("SHOPRELAY_BENCH_PROBE_RATE", "") or 10)
MAX_RETRY_WAIT_S = 5.0  # a closed-loop client answered 503 + Retry-After waits that long, at most
PROBE_CONNECTIONS = 64  # the probe's requests in flight at most (a stall of 6 s at 10/s fills 60)
REQUEST_TIMEOUT = 120.0  # far above ingest's own 30 s busy timeout: a hang is measured, not cut short
LINES = 3


@dataclass(frozen=True)
class Answer:
    probe: bool  # sent by the open-loop probe (latency from its scheduled time) or by a closed-loop client
    started: float  # perf_counter: when it was due (probe) or sent (client)
    seconds: float
    status: int  # 0: no answer (timeout, connection closed)
    retry_after: str | None = None
    detail: str = ""


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    answers: list[Answer] = field(default_factory=list)

    def latencies(self, *, probe: bool | None = True) -> list[float]:
        return [answer.seconds for answer in self.answers if probe is None or answer.probe == probe]

    @property
    def ok_per_s(self) -> float:
        """Throughput: 2xx answers per second of the phase (clients and probe together)."""
        ok = sum(1 for answer in self.answers if 200 <= answer.status < 300)
        return ok / self.seconds if self.seconds else 0.0

    def not_2xx(self) -> list[Answer]:
        return [answer for answer in self.answers if not 200 <= answer.status < 300]

    def unretryable(self) -> list[Answer]:
        """Answers a store cannot simply retry later: no answer, or an error other than 503 + Retry-After."""
        return [answer for answer in self.not_2xx() if not (answer.status == 503 and answer.retry_after)]


class OrderPoster:
    """Single-order POSTs with unique ids; every answer is recorded in the phase.

    Two loads at once, the same in both phases: `CLIENTS` closed-loop connections, each sending its next
    order as soon as the last one is answered (they measure throughput), and an open-loop probe that sends
    PROBE_RATE orders a second on a fixed schedule whatever the server does, each timed from the moment it
    was due (it measures latency: a closed loop sends nothing while the server stalls, so it under-counts
    exactly the slow answers this benchmark is about).
    """

    def __init__(self, port: int, api_key: str, prefix: str) -> None:
        self.port = port
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}
        self.prefix = prefix
        self.numbers = itertools.count()
        self.local = threading.local()
        self.opened: list[http.client.HTTPConnection] = []  # closed at the end of each run

    def run(self, phase: Phase, stop: threading.Event, *, clients: int = CLIENTS, rate: float = PROBE_RATE) -> Phase:
        """Both loads until `stop` is set; then waits for the requests in flight (bounded by their timeout)."""
        lock = threading.Lock()

        def record(answer: Answer) -> None:
            with lock:
                phase.answers.append(answer)

        def client() -> None:
            while not stop.is_set():
                answer = self._post(probe=False, due=time.perf_counter())
                record(answer)
                if answer.status == 503 and answer.retry_after:  # as a store would: wait before the next one
                    stop.wait(min(retry_seconds(answer.retry_after), MAX_RETRY_WAIT_S))

        def probe(pool: ThreadPoolExecutor) -> None:
            first = time.perf_counter()
            for number in itertools.count():
                due = first + number / rate
                if stop.wait(max(0.0, due - time.perf_counter())):
                    return
                pool.submit(lambda due=due: record(self._post(probe=True, due=due)))

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=PROBE_CONNECTIONS, thread_name_prefix="probe") as pool:
            threads = [threading.Thread(target=client, name=f"client-{n}") for n in range(clients)]
            if rate > 0:
                threads.append(threading.Thread(target=probe, args=(pool,), name="probe-schedule"))
            for thread in threads:
                thread.start()
            stop.wait()
            phase.seconds = time.perf_counter() - started
            for thread in threads:
                thread.join()
        for connection in self.opened:
            connection.close()
        self.opened.clear()
        return phase

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.local.connection = http.client.HTTPConnection("127.0.0.1", self.port,
                                                                            timeout=REQUEST_TIMEOUT)
            self.opened.append(connection)
        return connection

    def _post(self, *, probe: bool, due: float) -> Answer:
        body = order_body([bench_order(next(self.numbers), lines=LINES, prefix=self.prefix)])
        connection = self._connection()
        try:
            connection.request("POST", "/api/v1/orders", body=body, headers=self.headers)
            response = connection.getresponse()
            text = response.read()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            self.local.connection = None
            return Answer(probe, due, time.perf_counter() - due, 0, detail=f"{type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - due
        detail = "" if 200 <= response.status < 300 else text[:200].decode("utf-8", "replace")
        return Answer(probe, due, seconds, response.status, response.getheader("Retry-After"), detail)


def retry_seconds(value: str) -> float:
    try:
        return max(0.0, float(value))
    except ValueError:  # an HTTP date: not worth parsing for a benchmark
        return 1.0


def timed_stop(seconds: float) -> threading.Event:
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    timer.daemon = True
    timer.start()
    return stop


# -- the catalog source and the sync process --
