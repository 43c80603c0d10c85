"""Secrets are compared in constant time: no `==` / `!=` on a password, token, signature or key in the code.

`==` on strings stops at the first differing character, so its timing tells an attacker how much of a guess
was right. The scan reads the syntax tree of every module; SQL expressions (`Model.column == value`, a lookup
by an index, not a byte-by-byte compare in Python) and comparisons with a literal or None are not checks of
a secret. A real exception is listed with its reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from webapp.security import create_api_key, find_api_key
from webapp.services.platform.crypto import encrypt_json
from webapp.services.publishing.serving import FeedTarget, check_basic_auth

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("webapp", "workers", "feeds")
SECRET_NAME = re.compile(r"(password|passwd|secret|token|signature|api_?key|key_hash|credential)", re.I)
ALLOWED = {
    # Rotation bookkeeping: is the previous signing secret a different one (both are ours, nothing is checked).
    ("workers/destinations/webhook.py", "previous != secrets[0]"),
}


def _names(node: ast.AST) -> str:
    return ast.unparse(node)


def _value_name(node: ast.AST) -> str:
    """What a side of a comparison is called: `feed.password` -> password, `secrets[0]` -> secrets,
    `adapter.account()` -> account, `x.encode()` -> x (a method call on a value keeps the value's name)."""
    while True:
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("encode", "decode", "strip", "lower", "upper"):
                node = func.value
                continue
            node = func
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Attribute):
            return node.attr
        elif isinstance(node, ast.Name):
            return node.id
        else:
            return ""


def _is_sql(node: ast.AST) -> bool:
    """`Feed.token`, `_KEYS.c.key_hash`: a column of a model or table (the database compares, by index)."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and (node.id[:1].isupper() or node.id.startswith("_"))


def _harmless(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) or _is_sql(node) or (
        isinstance(node, ast.Call) and _names(node.func) in ("len", "type", "bool", "isinstance"))


def _secret_comparisons(path: Path) -> list[str]:
    found = []
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, sides, sides[1:], strict=False):
            if not isinstance(op, ast.Eq | ast.NotEq) or _harmless(left) or _harmless(right):
                continue
            if SECRET_NAME.search(_value_name(left)) or SECRET_NAME.search(_value_name(right)):
                found.append(_names(ast.Compare(left, [op], [right])))
    return found


def test_no_secret_is_compared_with_equality():
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative:
                continue
            offenders += [f"{relative}: {text}" for text in _secret_comparisons(path)
                          if (relative, text) not in ALLOWED]
    assert not offenders, "compare secrets with hmac.compare_digest:\n" + "\n".join(offenders)


def test_the_scan_finds_an_equality_check_of_a_secret(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def check(given, expected_password):\n    return given == expected_password\n")
    assert _secret_comparisons(sample) == ["given == expected_password"]


@pytest.mark.parametrize(("username", "password", "ok"), [
    ("platform", "s3cret-pass", True), ("platform", "s3cret-pasS", False), ("platforM", "s3cret-pass", False),
    ("", "", False), (None, None, False), ("platform", "s3cret-pass-and-more", False),
])
def test_basic_auth_answers(app, username, password, ok):
    feed = FeedTarget(1, "klaviyo_xml", "platform", encrypt_json({"password": "s3cret-pass"}))
    assert check_basic_auth(feed, username, password) is ok


def test_api_keys_are_found_by_their_hash_only(app):
    _, plain = create_api_key("timing")
    assert find_api_key(plain) is not None
    assert find_api_key(plain[:-1] + ("A" if plain[-1] != "A" else "B")) is None
