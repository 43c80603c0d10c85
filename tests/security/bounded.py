"""Hostile or huge inputs read in a child process whose peak memory is measured (ru_maxrss after imports):
the readers' memory bound is proved by the process that did the reading, not guessed from inside pytest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

_CHILD = """
import importlib, json, resource, sys
from feeds.product import SourceError

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

module, name = sys.argv[1].split(":")
read = getattr(importlib.import_module(module), name)
cases, folder = json.loads(sys.argv[2]), sys.argv[3]
base = rss_mb()
results = []
for case in cases:
    outcome = {"label": case["label"], "error": None}
    try:
        outcome.update(read(case, folder))
    except SourceError as exc:
        outcome["error"] = str(exc)
    except BaseException as exc:
        outcome["error"] = f"UNEXPECTED {type(exc).__name__}: {exc}"
    outcome["growth_mb"] = rss_mb() - base
    results.append(outcome)
print(json.dumps(results))
"""


def measure_in_child(reader: str, cases: list[dict[str, Any]], folder: Path, timeout: float = 120) -> list[dict]:
    """Each case through `reader` ("module:function", called with the case and `folder`) in one fresh
    interpreter; per case its outcome, `error` (a SourceError's text) and `growth_mb` (peak RSS growth so far)."""
    child = subprocess.run([sys.executable, "-c", _CHILD, reader, json.dumps(cases), str(folder)], cwd=ROOT,
                           capture_output=True, text=True, timeout=timeout, check=False)
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout)


# -- what the children read with (imported in the child only) --

def read_source(case: dict[str, Any], folder: str) -> dict[str, Any]:
    """A catalog source file through read_products, or a URL through the fetcher."""
    from feeds.fetch import fetch_to_file
    from feeds.product import RowProblem
    from feeds.readers import read_products

    if "url" in case:
        fetch_to_file(case["url"], folder + "/download", max_bytes=case.get("max_bytes", 2 * 1024 ** 3))
        return {}
    items = list(read_products(case["kind"], case["path"], options=case.get("options")))
    return {"products": sum(1 for item in items if not isinstance(item, RowProblem))}


def read_import(case: dict[str, Any], folder: str) -> dict[str, Any]:
    """An order import file through the importer's reader: the records it refuses, listed."""
    from webapp.services.orders.imports import read_records

    invalid = [record["__invalid__"][:200] for record in read_records(Path(case["path"]))
               if isinstance(record, dict) and "__invalid__" in record]
    return {"invalid": invalid}
