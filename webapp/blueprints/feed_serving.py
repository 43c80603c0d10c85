"""Public feed URLs: GET|HEAD /feeds/<token>/<file> — the last published build, never a half-written file."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, send_file

from feeds.writers import FEED_FORMATS
from webapp.services.publishing.serving import check_basic_auth, choose_encoding, log_fetch, resolve

bp = Blueprint("feed_serving", __name__)


@bp.route("/feeds/<token>/<filename>", methods=["GET", "HEAD"])
def serve(token: str, filename: str) -> Response:
    feed, served = resolve(token, filename)
    if feed is None:
        return _error(404, "no feed at this URL (unknown or rotated token)")
    if not check_basic_auth(feed, request.authorization and request.authorization.username,
                            request.authorization and request.authorization.password):
        response = _error(401, "this feed needs HTTP basic auth")
        response.headers["WWW-Authenticate"] = 'Basic realm="shoprelay feed"'
        return _logged(feed.id, response)
    if served is None:
        return _logged(feed.id, _error(404, "this feed has not been published yet (its first build has not "
                                            "succeeded); nothing is served until a complete build exists"))
    encoding = choose_encoding(request.accept_encodings, served.gz_path is not None)
    if encoding is None:
        response = _error(406, "Accept-Encoding refuses both gzip and identity (the plain file)")
        response.headers["Vary"] = "Accept-Encoding"
        return _logged(feed.id, response)
    use_gzip = encoding == "gzip"
    path = served.gz_path if use_gzip else served.path
    etag = served.sha256[:40] + ("-gz" if use_gzip else "")  # each representation has its own strong ETag
    modified = served.finished_at.replace(microsecond=0)
    if _not_modified(etag, modified):  # answered without opening the file
        response = Response(status=304)
    elif request.method == "HEAD":
        response = Response(status=200, mimetype=FEED_FORMATS[feed.format].content_type)
        response.content_length = path.stat().st_size
    else:
        response = send_file(path, mimetype=FEED_FORMATS[feed.format].content_type, conditional=False,
                             max_age=0)
    response.set_etag(etag)
    response.last_modified = modified
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "no-cache"
    if use_gzip and response.status_code == 200:
        response.headers["Content-Encoding"] = "gzip"
    return _logged(feed.id, response)


def _not_modified(etag: str, modified) -> bool:  # noqa: ANN001
    """RFC 9110: If-None-Match wins; If-Modified-Since only counts when there is no If-None-Match."""
    if request.if_none_match:
        return request.if_none_match.contains(etag)
    since = request.if_modified_since
    return since is not None and modified <= since


def _error(status: int, message: str) -> Response:
    response = jsonify(errors=[{"path": "", "message": message}])
    response.status_code = status
    return response


def _logged(feed_id: int, response: Response) -> Response:
    size = 0 if request.method == "HEAD" or response.status_code == 304 else (response.content_length or 0)
    log_fetch(feed_id, request.path, request.method, response.status_code, size, request.user_agent.string,
              request.remote_addr)
    return response
