"""Readers under attack: hostile source files end in a clean failure that says why, within bounded memory.

Fixed samples live in tests/fixtures/evil/ (small); compression bombs and huge lines are made at test time
(tests/security/evil.py). Memory is measured as the peak RSS growth of a child process that reads them: the
bound is loose (200 MB) against inputs that expand to 10 GB.
"""

from __future__ import annotations

import contextlib
import io
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from feeds.product import RowProblem, SourceError
from feeds.readers import READER_KINDS, inspect_source, read_products
from tests.conftest import csrf_token
from tests.security import evil
from tests.security.bounded import measure_in_child

ROOT = Path(__file__).resolve().parents[2]
EVIL = ROOT / "tests" / "fixtures" / "evil"
MAX_GROWTH_MB = 200
ITEM = {"item_tag": "product"}

FIXED = [
    ("billion_laughs.xml", "xml", ITEM, "declares entities"),
    ("billion_laughs.xml", "xml", {}, "declares entities"),  # item detection reads it too
    ("xxe_file.xml", "xml", ITEM, "declares entities"),
    ("xxe_http.xml", "xml", ITEM, "declares entities"),
    ("xxe_parameter.xml", "xml", ITEM, "declares entities"),
    ("xxe_google.xml", "google", {}, "declares entities"),
    ("quadratic_blowup.xml", "xml", ITEM, "declares entities"),
    ("deep.xml", "xml", ITEM, "depth"),
    ("deep_wrapper.json", "json", {}, "levels deep"),
    ("deep_array.json", "json", {}, "depth limit"),
    ("deep_item.jsonl", "json", {}, "levels deep"),
    ("runaway_quote.csv", "csv", {}, "malformed"),
    ("nul_bytes.csv", "csv", {}, "NUL bytes"),
    ("login_page.csv", "csv", {}, "HTML page"),
    ("wide_header.csv", "csv", {}, "columns"),
]


def _outcome(kind: str, path: Path, options: dict[str, Any]) -> str:
    """The reason the read gives: its SourceError, else its row problems (a product-less read of hostile input)."""
    try:
        items = list(read_products(kind, path, options=options))
    except SourceError as exc:
        return str(exc)
    return " | ".join(item.message for item in items if isinstance(item, RowProblem))


@pytest.mark.parametrize(("name", "kind", "options", "reason"), FIXED,
                         ids=[f"{name}-{kind}{'-detect' if not options and kind == 'xml' else ''}"
                              for name, kind, options, _ in FIXED])
def test_each_evil_sample_fails_with_its_reason(name, kind, options, reason):
    outcome = _outcome(kind, EVIL / name, options)
    assert reason in outcome
    assert "root:" not in outcome  # nothing of /etc/passwd


def _read_all(kind: str, path: Path) -> list[Any]:
    return list(read_products(kind, path))


@pytest.mark.parametrize("kind", READER_KINDS)
def test_every_reader_meets_every_sample_with_a_source_error_at_worst(kind):
    for path in sorted(EVIL.glob("*.*")):
        if path.suffix == ".md":
            continue
        for read in (_read_all, inspect_source):
            try:
                read(kind, path)
            except SourceError as exc:
                assert "root:" not in str(exc)


# --- big inputs, in a child process whose peak memory is measured ------------------------------------------



class _Bombs(BaseHTTPRequestHandler):
    """Serves `server.bodies[path] = (body, content_encoding)`."""

    server: _BombServer

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        body, encoding = self.server.bodies[self.path]
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the reader stopped early, as it should
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base class signature
        pass


class _BombServer(ThreadingHTTPServer):
    daemon_threads = True
    bodies: dict[str, tuple[bytes, str]]


@pytest.fixture()
def bomb_server() -> Iterator[_BombServer]:
    server = _BombServer(("127.0.0.1", 0), _Bombs)
    server.bodies = {}
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_bombs_and_huge_inputs_fail_cleanly_in_bounded_memory(tmp_path, bomb_server):
    gigabytes = 1024 * evil.MIB
    base = f"http://127.0.0.1:{bomb_server.server_port}"
    bomb_server.bodies = {"/gzip": (evil.deflate_bomb(10 * gigabytes, 31), "gzip"),
                          "/gzip-gzip": (evil.nested_gzip_bomb(10 * gigabytes), "gzip, gzip"),
                          "/deflate": (evil.deflate_bomb(gigabytes, 15), "deflate")}
    cases = [
        {"label": "gzip file (10 GB)", "kind": "csv", "path": str(evil.gzip_bomb(tmp_path / "p.csv.gz")),
         "reason": "compression bomb"},
        {"label": "zip file (1.5 GB, under the cap)", "kind": "csv",
         "path": str(evil.zip_bomb(tmp_path / "p.zip", 1536 * evil.MIB)), "reason": "compression bomb"},
        {"label": "zip file (3.9 GB declared)", "kind": "json",
         "path": str(evil.zip_bomb(tmp_path / "q.zip", 3900 * evil.MIB)), "reason": "more than the"},
        {"label": "zip file lying about its size", "kind": "xml", "options": ITEM,
         "path": str(evil.zip_bomb(tmp_path / "r.zip", 1536 * evil.MIB, declared=4096)), "reason": "corrupt"},
        {"label": "Content-Encoding: gzip (10 GB)", "url": f"{base}/gzip", "reason": "compression bomb"},
        {"label": "Content-Encoding: gzip, gzip (10 GB)", "url": f"{base}/gzip-gzip", "reason": "compression bomb"},
        {"label": "Content-Encoding: deflate (1 GB), small cap", "url": f"{base}/deflate", "max_bytes": 5 * evil.MIB,
         "reason": "cap"},
        {"label": "CSV line of 40 M characters", "kind": "csv",
         "path": str(evil.huge_line(tmp_path / "line.csv", 40 * evil.MIB)), "reason": "longer than"},
        {"label": "JSON Lines line of 80 MB", "kind": "json", "options": {"format": "jsonl"},
         "path": str(evil.huge_line(tmp_path / "line.jsonl", 80 * evil.MIB, prefix=b'{"id": 1}\n{"t": "')),
         "reason": "longer than"},
        {"label": "plain JSON export of 120,000 products (70 MB)", "kind": "json",
         "path": str(evil.big_json_export(tmp_path / "big.json", 120_000)), "products": 120_000},
        {"label": "plain JSON whose second item is 80 MB", "kind": "json",
         "path": str(evil.huge_line(tmp_path / "item.json", 80 * evil.MIB,
                                    prefix=b'{"products": [{"id": "1"}, {"id": "2", "title": "')),
         "reason": "is larger than 64 MB"},
        {"label": "XML of 300k elements that are not products", "kind": "xml", "options": ITEM,
         "path": str(evil.many_elements(tmp_path / "many.xml", 300_000)), "products": 2},
    ]
    results = measure_in_child("tests.security.bounded:read_source", cases, tmp_path)
    for case, result in zip(cases, results, strict=True):
        if "reason" in case:
            assert result["error"] and case["reason"] in result["error"], (case["label"], result)
        else:
            assert result["error"] is None and result["products"] == case["products"], (case["label"], result)
    peak = max(result["growth_mb"] for result in results)
    assert peak < MAX_GROWTH_MB, results


# --- through the product: an upload or a URL source whose sync fails with the reason -------------------------

def _zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def _sync(api: Any, worker: Any, source_id: int) -> dict[str, Any]:
    run = api.post(f"/api/v1/sources/{source_id}/sync").get_json()
    worker(["sync"])
    return api.get(f"/api/v1/sync-runs/{run['id']}").get_json()


@pytest.mark.parametrize(("filename", "kind", "content", "reason"), [
    # 400 MB from 0.4 MB: under werkzeug's 500 KB spooling threshold, so the test client keeps no temporary file
    ("products.csv.gz", "csv", lambda: evil.deflate_bomb(400 * evil.MIB, 31), "compression bomb"),
    ("products.zip", "xml", lambda: _zipped("feed.xml", (EVIL / "billion_laughs.xml").read_bytes()),
     "declares entities"),
    ("products.xml", "xml", lambda: (EVIL / "billion_laughs.xml").read_bytes(), "declares entities"),
    ("products.jsonl", "json", lambda: (EVIL / "deep_array.json").read_bytes(), "depth limit"),
], ids=["gzip-bomb", "zipped-billion-laughs", "billion-laughs", "deep-json"])
def test_an_evil_upload_ends_in_a_failed_sync_run_with_the_reason(logged_in, api, worker, filename, kind, content,
                                                                  reason):
    data = {"csrf_token": csrf_token(logged_in, "/sources/new"), "name": "Evil", "kind": kind, "via": "upload",
            "schedule": "0 2 * * *", "timezone": "UTC", "enabled": "1",
            "upload": (io.BytesIO(content()), filename)}
    created = logged_in.post("/sources/new", data=data, content_type="multipart/form-data")
    assert created.status_code == 302, created.get_data(as_text=True)[:500]
    source_id = max(source["id"] for source in api.get("/api/v1/sources").get_json()["sources"])
    run = _sync(api, worker, source_id)
    assert run["status"] == "failed" and reason in run["error"], run


def test_a_url_source_answering_a_gzip_bomb_fails_its_sync_with_the_reason(api, worker, bomb_server):
    bomb_server.bodies = {"/products.csv": (evil.nested_gzip_bomb(10 * 1024 * evil.MIB), "gzip, gzip")}
    answer = api.post("/api/v1/sources", json={
        "name": "Bomb", "kind": "csv", "location": f"http://127.0.0.1:{bomb_server.server_port}/products.csv"})
    assert answer.status_code == 201, answer.get_json()
    run = _sync(api, worker, answer.get_json()["id"])
    assert run["status"] == "failed" and "compression bomb" in run["error"], run
