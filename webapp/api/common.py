"""Helpers every API module shares: JSON body parsing, validation into the error shape, pagination."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic
from flask import request

from webapp.schemas.errors import ApiError, error_list, problem

M = TypeVar("M", bound=pydantic.BaseModel)


def json_body() -> Any:
    """The parsed JSON body; a body that is not JSON is a 400 in the API's error shape."""
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, [problem([], "request body must be JSON (Content-Type: application/json)")])
    return data


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ApiError(422, error_list(exc)) from None


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
