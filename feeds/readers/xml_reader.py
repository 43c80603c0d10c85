"""Generic XML sources: one repeating element per product, its children as columns.

Parsing is hardened for files from the internet: no entity expansion, no DTD loading, no network, no
huge-tree mode, and any document that declares entities (billion laughs, XXE) is refused outright.
Items are cleared as soon as they are read, so memory stays flat however large the file is.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from feeds.product import RowProblem, SourceError

BUILTIN_MAPPING = None
_DETECT_ELEMENTS = 5000
_LINK_ATTRIBUTES = ("href", "src", "url", "value")
_PROLOG_BYTES = 256 * 1024
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY\s+(?:%\s+)?([^\s\"'>]+)")


def local_name(tag: Any) -> str:
    """"{namespace}name" -> "name"; comments and processing instructions give ""."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def safe_iterparse(path: Path, events: tuple[str, ...] = ("end",),
                   follow: Callable[[Any], None] | None = None) -> Iterator[tuple[str, Any]]:
    """lxml iterparse with every risky feature off; a DOCTYPE declaring entities raises SourceError.

    The DOCTYPE is read before lxml sees the file: recent libxml2 stops a billion-laughs document with its
    own amplification error before the first element, and the user should hear the real reason either way.
    """
    with path.open("rb") as handle:
        _refuse_declared_entities(handle.read(_PROLOG_BYTES))
        handle.seek(0)
        if follow is not None:  # how far the read is (ReadStats.follow)
            follow(handle)
        context = etree.iterparse(handle, events=events, resolve_entities=False, no_network=True,
                                  load_dtd=False, huge_tree=False, remove_comments=True, remove_pis=True)
        checked = False
        try:
            for event, element in context:
                if not checked:
                    _refuse_entities(element)
                    checked = True
                yield event, element
        except etree.XMLSyntaxError as exc:
            raise SourceError(f"invalid XML: {exc}") from None


def _refuse_declared_entities(head: bytes) -> None:
    """Refuse a DOCTYPE whose internal subset declares entities, from the file's first bytes."""
    start = head.find(b"<!DOCTYPE")
    if start < 0:
        return
    end = head.find(b"]>", start)
    subset = head[start:end if end >= 0 else len(head)]
    names = [match.decode("utf-8", "replace") for match in _ENTITY_DECLARATION.findall(subset)]
    if names:
        _entities_refused(names)


def _refuse_entities(element: Any) -> None:
    """The same refusal from the parsed DOCTYPE, for encodings the byte scan cannot read (UTF-16)."""
    dtd = element.getroottree().docinfo.internalDTD
    entities = list(dtd.iterentities()) if dtd is not None else []
    if entities:
        _entities_refused([entity.name for entity in entities])


def _entities_refused(names: list[str]) -> None:
    listed = ", ".join(names[:3])
    raise SourceError(f"the XML declares entities ({listed}) in its DOCTYPE; entity declarations are "
                      f"refused because they are used for entity-expansion and file-disclosure attacks")


def release(element: Any) -> None:
    """Free an item already read, and the siblings before it, so the tree never grows."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def detect_item_tag(path: Path) -> str:
    """The shallowest repeating element with children (rss/channel/item -> "item").

    With a single item nothing repeats; then the shallowest element whose children are all leaves wins.
    """
    counts: Counter[tuple[int, str]] = Counter()
    flat: set[tuple[int, str]] = set()
    depth = 0
    seen = 0
    for event, element in safe_iterparse(path, ("start", "end")):
        if event == "start":
            depth += 1
            continue
        depth -= 1
        seen += 1
        if depth > 0 and len(element):
            key = (depth, local_name(element.tag))
            counts[key] += 1
            if all(len(child) == 0 for child in element):
                flat.add(key)
        if seen >= _DETECT_ELEMENTS:
            break
    if not counts:
        raise SourceError("the XML has no repeating element with child elements to read products from")
    candidates = [key for key, count in counts.items() if count > 1] or list(flat) or list(counts)
    return min(candidates, key=lambda key: (key[0], -counts[key]))[1]


def detect_options(path: Path, options: dict[str, Any]) -> dict[str, Any]:
    detected = dict(options)
    if not detected.get("item_tag"):
        detected["item_tag"] = detect_item_tag(path)
    return detected


def element_row(item: Any) -> dict[str, Any]:
    """An item as a flat dict: attributes, leaf children as text, nested children as "child.sub".

    A name seen more than once becomes a list of its values.
    """
    row: dict[str, Any] = {local_name(key): value for key, value in item.attrib.items()}
    for child in item:
        name = local_name(child.tag)
        if not name:
            continue
        if len(child):
            for grandchild in child:
                if local_name(grandchild.tag):
                    _add(row, f"{name}.{local_name(grandchild.tag)}", leaf_text(grandchild))
        else:
            _add(row, name, leaf_text(child))
    return row


def leaf_text(element: Any) -> str:
    """Text of a leaf element, or its link-like attribute when it has no text (<link href="..."/>)."""
    value = (element.text or "").strip()
    if not value:
        value = next((element.get(a) for a in _LINK_ATTRIBUTES if element.get(a)), "") or ""
    return value.strip()


def _add(row: dict[str, Any], name: str, value: str) -> None:
    if name not in row:
        row[name] = value
    elif isinstance(row[name], list):
        row[name].append(value)
    else:
        row[name] = [row[name], value]


def iter_items(path: Path, item_tags: str | tuple[str, ...],
               follow: Callable[[Any], None] | None = None) -> Iterator[Any]:
    """Each complete item element (by local name), released once the caller has moved on; elements outside
    any item are released too, so a file of millions of other elements cannot grow the tree either."""
    wanted = (item_tags,) if isinstance(item_tags, str) else item_tags
    for _, element in safe_iterparse(path, ("end",), follow):
        if local_name(element.tag) in wanted:
            yield element
            release(element)
        elif not any(local_name(ancestor.tag) in wanted for ancestor in element.iterancestors()):
            release(element)


def iter_rows(path: Path, options: dict[str, Any],
              stats: Any = None) -> Iterator[tuple[int, dict[str, Any] | RowProblem]]:
    follow = stats.follow if stats is not None else None
    for number, item in enumerate(iter_items(path, options["item_tag"], follow), start=1):
        yield number, element_row(item)
