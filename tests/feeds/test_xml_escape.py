"""The string escaping behind the XML feeds: hostile text must always give a well-formed document."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from feeds.writers.xml_escape import (
    clean_text,
    escape_markup,
    escape_text,
    has_forbidden,
    is_safe_element_name,
)
from tests.feeds.writer_helpers import parse_xml, product, write

ALLOWED_CONTROLS = {"\t", "\n", "\r"}
# Short strings take the regex path, long ones the byte path: both must behave the same.
PADDINGS = ["", "x" * 150]


def round_trip(text: str) -> str:
    """Escape `text` into an element, parse it strictly and return what a reader gets back."""
    document = f"<a>{escape_text(text)}</a>".encode()
    element = etree.fromstring(document, etree.XMLParser(recover=False))
    return element.text or ""


def allowed_part(text: str) -> str:
    """What XML 1.0 can carry of `text`: the characters a correct writer keeps."""
    return "".join(char for char in text if _allowed(ord(char)))


def _allowed(code: int) -> bool:
    return (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF)


@pytest.mark.parametrize("padding", PADDINGS)
def test_every_c0_control_character_is_dropped_except_tab_newline_and_cr(padding: str) -> None:
    text = padding + "".join(chr(code) for code in range(0x20)) + "end"

    parsed = round_trip(text)

    assert parsed == padding + "\t\n\rend"  # CR survives because it is written as &#13;
    assert has_forbidden(text)
    assert clean_text(text) == padding + "\t\n\rend"


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("text", [
    "]]>", "a & b", "<script>alert('x')</script>", 'say "hi"', "it's", "&amp; already escaped",
    "<![CDATA[ nested ]]>", "--><!--", "&#0; &#x1F;",
])
def test_markup_characters_round_trip_unchanged(text: str, padding: str) -> None:
    assert round_trip(padding + text) == padding + text


def test_markup_characters_become_entities() -> None:
    assert escape_text("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;"
    assert escape_markup("a\rb") == "a&#13;b"


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("text", [
    "Emoji 😀👍🏽 and flags 🇺🇦", "עברית עם ניקוד", "العربية \u200fمع علامة", "mixed RTL\u202eevil\u202c",
    "中文 日本語 한국어", "zero\u200bwidth", "astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
])
def test_unicode_text_round_trips(text: str, padding: str) -> None:
    assert round_trip(padding + text) == padding + text
    assert not has_forbidden(padding + text)


@pytest.mark.parametrize("padding", PADDINGS)
def test_lone_surrogates_and_noncharacters_are_dropped(padding: str) -> None:
    text = padding + "a\ud800b\udfffc\ud83d\ude00d\ufffee\uffff"

    assert has_forbidden(text)
    assert clean_text(text) == padding + "abcde"
    assert round_trip(text) == padding + "abcde"


def test_clean_text_returns_allowed_text_unchanged() -> None:
    text = "Plain text, ünïcode and 😀"
    assert clean_text(text) is text


@pytest.mark.parametrize(("name", "safe"), [
    ("color", True), ("_x", True), ("size.eu", True), ("material-type", True),
    ("1st", False), ("has space", False), ("g:id", False), ("xmlthing", False), ("", False),
    ("naïve", False), ("a<b", False),
])
def test_is_safe_element_name(name: str, safe: bool) -> None:
    assert is_safe_element_name(name) is safe


ANY_CHARACTER = st.characters(categories=["L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Cs", "Co", "Cn"])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ANY_CHARACTER))
def test_any_text_escapes_to_well_formed_xml_keeping_every_allowed_character(text: str) -> None:
    assert round_trip(text) == allowed_part(text)


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from(["klaviyo_xml", "google_rss"]),
       title=st.text(alphabet=ANY_CHARACTER, min_size=1),
       description=st.text(alphabet=ANY_CHARACTER, min_size=1, max_size=400),
       brand=st.text(alphabet=ANY_CHARACTER),
       categories=st.lists(st.text(alphabet=ANY_CHARACTER), max_size=3),
       extra=st.text(alphabet=ANY_CHARACTER))
def test_random_product_text_always_gives_a_parseable_feed(
        fmt: str, title: str, description: str, brand: str, categories: list[str], extra: str) -> None:
    item = product(title=title, description=description, brand=brand, categories=categories,
                   extras={"note": extra}, external_id="id-" + title[:20])
    with tempfile.TemporaryDirectory() as directory:
        result = write(fmt, [item], Path(directory), channel={"title": title})
        root = parse_xml(result.parts[0].path)

    if result.items_written:
        element = root.find("Product") if fmt == "klaviyo_xml" else root.find("channel/item")
        title_tag = "title" if fmt == "klaviyo_xml" else "{http://base.google.com/ns/1.0}title"
        expected = allowed_part(title).strip()
        if fmt == "google_rss":
            expected = expected[:150].rstrip()  # Google's title limit
        assert element.findtext(title_tag) == expected
    else:
        assert result.report["skipped"]  # only a title/description blank once cleaned is refused
