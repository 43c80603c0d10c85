"""Shared by the feed build tests: clients that read and close file responses, and "build now"."""

import pytest
from flask.testing import FlaskClient

from webapp.services.publishing.builds import BuildAlreadyRunning, request_build, run_build


class BufferedClient(FlaskClient):
    """Reads and closes file responses like a WSGI server does (no dangling file handles in tests)."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


@pytest.fixture(autouse=True)
def buffered_clients(app):  # noqa: ANN001, ANN201
    app.test_client_class = BufferedClient


def build_now(feed):  # noqa: ANN001, ANN201
    """Build now; a catalog change may already have queued one (then run that one)."""
    try:
        build = request_build(feed, enqueue=False)
    except BuildAlreadyRunning as exc:
        build = exc.build
    return run_build(build.id)
