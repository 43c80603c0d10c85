"""Download a source URL to a file: conditional GET, size cap while streaming, atomic replace.

Every failure a user can fix (timeout, refused connection, HTTP error, too large, too many redirects)
becomes a SourceError whose message says what happened, so a failed sync explains itself.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import orjson

from feeds.decompress import Budget, decode_content
from feeds.product import SourceError
from feeds.redaction import redact as mask_secrets

USER_AGENT = "shoprelay/0.1 (catalog fetch)"
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
ACCEPT_ENCODING = "gzip, deflate"  # what feeds.decompress undoes within bounds (httpx would also offer br/zstd)
_ERROR_BODY_CHARS = 300


@dataclass(slots=True)
class FetchResult:
    """What a fetch did; on 304 `not_modified` is True and the file at `path` was left as it was."""

    not_modified: bool
    path: Path
    etag: str | None
    last_modified: str | None
    bytes: int
    sha256: str | None
    status: int


def redact(url: str | httpx.URL) -> str:
    """The URL without user:password, for messages."""
    parts = urlsplit(str(url))
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc))


@contextlib.contextmanager
def _masked(url: str, basic_auth: tuple[str, str] | None, headers: dict[str, str] | None) -> Iterator[None]:
    """Errors leave without the credentials: a server's error page may echo the request, headers included."""
    secrets = [basic_auth[1] if basic_auth else None, *(headers or {}).values(), urlsplit(url).password]
    try:
        yield
    except SourceError as exc:
        masked = mask_secrets(str(exc), secrets)
        if masked == str(exc):
            raise
        raise SourceError(masked) from None


def _megabytes(limit: int) -> str:
    return f"{limit / (1024 * 1024):g}"


@contextlib.contextmanager
def _client(client: httpx.Client | None, timeout: float) -> Iterator[httpx.Client]:
    if client is not None:
        yield client
        return
    with httpx.Client(timeout=httpx.Timeout(timeout)) as owned:
        yield owned


@contextlib.contextmanager
def _open(client: httpx.Client, url: str, *, headers: dict[str, str], auth: tuple[str, str] | None,
          timeout: float, max_redirects: int) -> Iterator[httpx.Response]:
    """GET with redirects followed by hand (capped, credentials dropped when the host changes)."""
    _check_scheme(url)
    current = httpx.URL(url)
    origin = current.host
    for _ in range(max_redirects + 1):
        sent = dict(headers)
        if auth is not None and current.host == origin:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            sent["Authorization"] = f"Basic {token}"
        request = client.build_request("GET", current, headers=sent, timeout=httpx.Timeout(timeout))
        response = _send(client, request)
        if response.is_redirect and "location" in response.headers:
            response.close()
            current = current.join(response.headers["location"])
            _check_scheme(str(current))
            continue
        try:
            yield response
        finally:
            response.close()
        return
    raise SourceError(f"{redact(url)} redirected more than {max_redirects} times")


def _check_scheme(url: str) -> None:
    if urlsplit(url).scheme not in ("http", "https"):
        raise SourceError(f"only http and https URLs can be fetched, not {redact(url)!r}")


def _send(client: httpx.Client, request: httpx.Request) -> httpx.Response:
    try:
        return client.send(request, stream=True, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise _transport_error(exc, request.url) from None


def _transport_error(exc: httpx.HTTPError, url: httpx.URL) -> SourceError:
    where = redact(url)
    if isinstance(exc, httpx.TimeoutException):
        return SourceError(f"timed out fetching {where} ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError):
        return SourceError(f"could not connect to {where}: {exc}")
    return SourceError(f"fetching {where} failed: {type(exc).__name__}: {exc}")


def _raise_for_status(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = next(response.iter_text(), "")[:_ERROR_BODY_CHARS].strip()
    except (httpx.HTTPError, UnicodeDecodeError):
        body = ""
    detail = f": {body}" if body else ""
    raise SourceError(f"{redact(response.request.url)} answered HTTP {response.status_code} "
                      f"{response.reason_phrase}{detail}")


def _check_declared_size(response: httpx.Response, max_bytes: int) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise SourceError(f"source is larger than the {_megabytes(max_bytes)} MB cap "
                          f"(Content-Length {declared})")


def _chunks(response: httpx.Response, budget: int, max_bytes: int) -> Iterator[bytes]:
    """The decoded body, stopping with SourceError once it passes the cap. Decoded here, not by httpx, which
    asks zlib for everything at once: a gzip (or gzip-in-gzip) bomb is stopped slice by slice, by size and ratio."""
    what = f"source {redact(response.request.url)}"
    limit = Budget(budget, what)
    encoding = response.headers.get("content-encoding", "")
    try:
        yield from decode_content(response.iter_raw(), encoding, limit)
    except SourceError:
        if limit.produced > budget:
            raise SourceError(f"source is larger than the {_megabytes(max_bytes)} MB cap") from None
        raise
    except httpx.HTTPError as exc:
        raise _transport_error(exc, response.request.url) from None


def _write_atomically(dest: Path, chunks: Iterator[bytes]) -> tuple[int, str]:
    """Write to a temp file beside `dest`, then rename, so readers never see half a file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    return size, digest.hexdigest()


def _request_headers(headers: dict[str, str] | None, etag: str | None,
                     last_modified: str | None) -> dict[str, str]:
    merged = {"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING, **(headers or {})}
    if etag:
        merged["If-None-Match"] = etag
    if last_modified:
        merged["If-Modified-Since"] = last_modified
    return merged


def fetch_to_file(url: str, dest: Path, *, etag: str | None = None, last_modified: str | None = None,
                  basic_auth: tuple[str, str] | None = None, headers: dict[str, str] | None = None,
                  max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = 30.0, max_redirects: int = 5,
                  client: httpx.Client | None = None) -> FetchResult:
    """Download `url` into `dest` unless the server says it has not changed since `etag`/`last_modified`.

    Args:
        timeout: seconds allowed for connecting and for each read (not for the whole download).
        client: a pooled client to reuse; one is created (and closed) when None.
    """
    dest = Path(dest)
    with _masked(url, basic_auth, headers), _client(client, timeout) as http, _open(
        http, url, headers=_request_headers(headers, etag, last_modified), auth=basic_auth,
        timeout=timeout, max_redirects=max_redirects,
    ) as response:
        if response.status_code == 304:
            return FetchResult(True, dest, response.headers.get("etag", etag),
                               response.headers.get("last-modified", last_modified), 0, None, 304)
        _raise_for_status(response)
        _check_declared_size(response, max_bytes)
        size, sha256 = _write_atomically(dest, _chunks(response, max_bytes, max_bytes))
        return FetchResult(False, dest, response.headers.get("etag"), response.headers.get("last-modified"),
                           size, sha256, response.status_code)


def _next_page_url(response: httpx.Response, url: str, page: int) -> str | None:
    """The Link rel="next" URL; None when Link headers are used and there is no next; else page=N+1."""
    if response.headers.get("link"):
        link = response.links.get("next", {}).get("url")
        return str(response.request.url.join(link)) if link else None
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "page"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("page", str(page + 1))])))


def fetch_shopify_pages(url: str, dest: Path, *, basic_auth: tuple[str, str] | None = None,
                        headers: dict[str, str] | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                        timeout: float = 30.0, max_redirects: int = 5, client: httpx.Client | None = None,
                        max_pages: int = 200) -> FetchResult:
    """Fetch every page of a Shopify-style products.json into `dest`, one page object per line.

    Stops at the first page without products. More than `max_pages` pages is an error rather than a
    silently truncated catalog (a partial catalog would remove the missing products downstream).
    """
    dest = Path(dest)
    budget = max_bytes
    request_headers = _request_headers(headers, None, None)

    def pages(http: httpx.Client) -> Iterator[bytes]:
        nonlocal budget
        page_url, page = url, 1
        while True:
            if page > max_pages:
                raise SourceError(f"{redact(url)} has more than {max_pages} pages of products")
            with _open(http, page_url, headers=request_headers, auth=basic_auth, timeout=timeout,
                       max_redirects=max_redirects) as response:
                _raise_for_status(response)
                _check_declared_size(response, budget)
                body = b"".join(_chunks(response, budget, max_bytes))
                budget -= len(body)
                products = _page_products(body, page_url)
                if not products:
                    return
                yield orjson.dumps({"products": products}) + b"\n"
                next_url = _next_page_url(response, page_url, page)
                if next_url is None:
                    return
                page_url, page = next_url, page + 1

    with _masked(url, basic_auth, headers), _client(client, timeout) as http:
        size, sha256 = _write_atomically(dest, pages(http))
    return FetchResult(False, dest, None, None, size, sha256, 200)


def _page_products(body: bytes, url: str) -> list[object]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SourceError(f"{redact(url)} did not answer JSON: {exc.msg}") from None
    products = document.get("products") if isinstance(document, dict) else None
    if not isinstance(products, list):
        raise SourceError(f"{redact(url)} answered JSON without a \"products\" list")
    return products
