"""Hostile and broken XML must end in a SourceError that says why, never in expansion or disclosure."""

from pathlib import Path

import pytest

from feeds.product import Product, SourceError
from feeds.readers import inspect_source, read_products

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss xmlns:g="http://base.google.com/ns/1.0"><channel>
<item><g:id>1</g:id><g:title>&lol9;</g:title></item><item><g:id>2</g:id><g:title>x</g:title></item>
</channel></rss>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss xmlns:g="http://base.google.com/ns/1.0"><channel>
<item><g:id>1</g:id><g:title>&xxe;</g:title></item><item><g:id>2</g:id><g:title>x</g:title></item>
</channel></rss>
"""

PARAMETER_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<rss><channel><item><id>1</id><title>x</title></item><item><id>2</id><title>y</title></item></channel></rss>
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "source.xml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("kind", ["xml", "google"])
@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY, PARAMETER_ENTITY],
                         ids=["billion-laughs", "external-entity", "parameter-entity"])
def test_entity_declarations_are_refused(tmp_path, kind, document):
    with pytest.raises(SourceError, match="declares entities") as raised:
        list(read_products(kind, write(tmp_path, document), options={"item_tag": "item"}))
    assert "root:" not in str(raised.value)  # nothing of /etc/passwd leaks into the message


def test_item_detection_refuses_entities_too(tmp_path):
    with pytest.raises(SourceError, match="declares entities"):
        inspect_source("xml", write(tmp_path, BILLION_LAUGHS), {})


def test_a_doctype_naming_an_external_dtd_is_read_without_fetching_it(tmp_path):
    document = ('<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
                '"http://127.0.0.1:9/rss-0.91.dtd"><rss><channel><item><id>1</id><title>Lamp</title></item>'
                "</channel></rss>")
    (lamp,) = read_products("xml", write(tmp_path, document))
    assert isinstance(lamp, Product) and lamp.title == "Lamp"


@pytest.mark.parametrize(("document", "fragment"), [
    ("<products><product><id>1</id></product>", "invalid XML"),
    ("<products><product><id>1</id></prodct></products>", "invalid XML"),
    ("this is not xml at all", "invalid XML"),
    ("<products><product><id>&undefined;</id></product></products>", "invalid XML"),
])
def test_malformed_xml_is_a_source_error_with_the_parser_message(tmp_path, document, fragment):
    with pytest.raises(SourceError, match=fragment):
        list(read_products("xml", write(tmp_path, document), options={"item_tag": "product"}))


def test_xml_without_repeating_items_is_explained(tmp_path):
    with pytest.raises(SourceError, match="no repeating element"):
        inspect_source("xml", write(tmp_path, "<catalog>empty</catalog>"), {})
