"""Helpers every API module shares: JSON body parsing, validation into the error shape, pagination."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pydantic
from flask import request

from webapp.schemas.errors import ApiError, error_list, problem
from webapp.schemas.json_types import EXACT_JSON

M = TypeVar("M", bound=pydantic.BaseModel)


def json_body() -> Any:
    """The parsed JSON body; a body that is not JSON is a 400 in the API's error shape."""
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, [problem([], "request body must be JSON (Content-Type: application/json)")])
    return data


def validate(model: type[M], data: Any) -> M:
    """The body as `model`, typed exactly as JSON (`true`, not `"yes"`: forms convert, API clients do not)."""
    try:
        return model.model_validate(data, context=EXACT_JSON)
    except pydantic.ValidationError as exc:
        raise ApiError(422, error_list(exc)) from None


@contextmanager
def state_conflicts(*fields: str) -> Iterator[None]:
    """A refusal that concerns only these fields is about what the server holds (an id that names nothing, a
    slug already taken), not about the body's shape, which the OpenAPI document describes: 409, so a client
    knows the same body may succeed later. Only for fields whose every refusal is of that sort: where a field
    can also be malformed (a destination's credentials), the service tells the two apart itself."""
    try:
        yield
    except ApiError as exc:
        if exc.status == 422 and exc.errors and all(
                error["path"].split(".", 1)[0] in fields for error in exc.errors):
            raise ApiError(409, exc.errors) from None
        raise


def not_found(what: str) -> ApiError:
    return ApiError(404, [problem([], f"{what} not found")])


def flag(name: str) -> bool:
    return request.args.get(name, "").lower() in ("1", "true", "yes")


def int_arg(name: str, default: int, minimum: int = 1, maximum: int = 1000) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, [problem([name], "must be a whole number")]) from None
    if not minimum <= value <= maximum:
        raise ApiError(422, [problem([name], f"must be between {minimum} and {maximum}")])
    return value
