"""Test clients that read and close file responses, for tests that fetch published feed files."""

import pytest
from flask.testing import FlaskClient


class BufferedClient(FlaskClient):
    """Reads and closes file responses like a WSGI server does (no dangling file handles in tests)."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


@pytest.fixture(autouse=True)
def buffered_clients(app):  # noqa: ANN001, ANN201
    app.test_client_class = BufferedClient
