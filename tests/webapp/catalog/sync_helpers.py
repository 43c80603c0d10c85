"""Helpers for sync tests that need a big generated catalog and a real worker process."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REDIS_URL
from tests.processes import LOCAL_FAKES


def big_csv(rows: int, title: str = "Thing", skip: int = 0) -> bytes:
    """A CSV catalog of `rows` products (ids p<skip>..), each row distinct."""
    lines = ["id,title,link,image_link,price,description"]
    lines += [f"p{i},{title} {i},https://shop.test/p{i},https://shop.test/p{i}.jpg,{(i % 97) + 1}.99,Nice {i}"
              for i in range(skip, skip + rows)]
    return ("\n".join(lines) + "\n").encode()


def shoprelay_process(app, *args: str) -> subprocess.Popen:  # noqa: ANN001
    """`shoprelay <args>` as its own process against the test's database and Redis."""
    env = dict(os.environ) | {
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": REDIS_URL,
        "SHOPRELAY_INSTANCE_PATH": app.instance_path, "SECRET_KEY": "test-secret",
        "SHOPRELAY_ENCRYPTION_KEY": app.config["ENCRYPTION_KEY"], "SHOPRELAY_LOG_LEVEL": "WARNING",
        "SHOPRELAY_FETCH_TIMEOUT": "120", "SHOPRELAY_ALLOW_PRIVATE_URLS": LOCAL_FAKES,
    }
    # SHOPRELAY_TEST_CHILD_LOG: a file collecting the children's stderr (to see why one misbehaved).
    with open(os.environ.get("SHOPRELAY_TEST_CHILD_LOG", os.devnull), "ab") as log:  # the child keeps a copy
        return subprocess.Popen([sys.executable, "-m", "webapp.cli", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)


def worker_process(app, queue: str) -> subprocess.Popen:  # noqa: ANN001
    """`shoprelay worker -q <queue>` against the test's database and Redis."""
    return shoprelay_process(app, "worker", "-q", queue)
