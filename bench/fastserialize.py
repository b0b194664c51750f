"""moto's response serializer for the benchmark's moto server, without the pure work it repeats.

For every member of every structure it answers, moto's serializer builds six alias-provider
objects and asks each for the attribute names the member might have on moto's object (the same
answer each time for one class, shape and key), joins the path of shape names so far and matches
it against every response transformer of the service (the same answer for one path). Here both
are remembered: the names per (picker, class, explicit alias, shape, parent shape, key), the
transformer per path. The values are still read from moto's objects on every call, in the same
order. And the XML is written by a plain emitter of xmltodict's own rules (``xml_unparse``) rather
than through xmltodict's SAX generator, which validates every tag name again at each element;
anything outside the plain case (comments, namespace maps, other iterables, pretty printing) goes
to xmltodict itself. What moto answers is unchanged (tests/test_bench.py compares the answers with
stock moto's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import xmltodict

_ABSENT = object()
#: transformer matches remembered per service before the memo starts afresh (JSON maps put data
#: keys into paths, so the paths seen are not bounded by the model alone)
_MAX_PATHS = 50_000


def faster_serializer() -> None:
    """Patch moto's ``ResponseSerializer.get_value`` to remember what depends only on the model."""
    from moto.core import serialize as s

    original = s.ResponseSerializer.get_value
    plain = (s.AttributePicker, s.XFormedAttributePicker)
    defaults = s.DEFAULT_ALIAS_PROVIDERS
    missing = s.MISSING
    read = s.get_value
    names: dict[tuple[Any, ...], tuple[str, ...]] = {}
    matches: dict[int, tuple[Any, dict[str, Any]]] = {}

    def transformer(transformers: dict[str, Any], key_path: str) -> Any:
        """The first transformer whose path ends ``key_path`` (moto's own rule), or None."""
        seen = matches.get(id(transformers))
        if seen is None or seen[0] is not transformers:
            seen = matches[id(transformers)] = (transformers, {})
        memo = seen[1]
        found = memo.get(key_path, _ABSENT)
        if found is _ABSENT:
            found = next((fn for path, fn in transformers.items() if key_path.endswith(path)), None)
            if len(memo) >= _MAX_PATHS:
                memo.clear()
            memo[key_path] = found
        return found

    def get_value(self: Any, value: Any, key: str, shape: Any) -> Any:
        picker = self._value_picker
        if type(picker) not in plain or picker.alias_providers is not defaults:
            return original(self, value, key, shape)
        # ExplicitAlias reads the object's Meta: looked at live, and part of the memo's key
        aliases = getattr(getattr(value, "Meta", None), "serialization_aliases", None)
        explicit = aliases[key] if aliases is not None and key in aliases else _ABSENT
        if explicit is not _ABSENT and not isinstance(explicit, str):
            return original(self, value, key, shape)
        memo_key = (type(picker), value.__class__, explicit, shape, getattr(shape, "parent", _ABSENT), key)
        keys = names.get(memo_key)
        if keys is None:
            context = s.AttributePickerContext(obj=value, key=key, shape=shape)
            keys = names[memo_key] = tuple(picker.get_possible_keys(context))
        found = None
        indexed = hasattr(value, "__getitem__")
        for possible in keys:  # moto's utils.get_value, its test of the object made once
            if "." in possible:
                got = read(value, possible, missing)
            elif indexed:
                try:
                    got = value[possible]
                except (KeyError, IndexError, TypeError, AttributeError):
                    got = missing
            else:
                got = getattr(value, possible, missing)
            if got is not missing:
                found = got
                break
        if picker.response_transformers:
            fn = transformer(picker.response_transformers, ".".join(self.path) + "." + key)
            if fn is not None:
                found = fn(found)
        return found

    s.ResponseSerializer.get_value = get_value  # type: ignore[method-assign]
    s.xmltodict = _XmlToDict(xml_unparse(xmltodict.unparse))  # type: ignore[assignment]


class _XmlToDict:
    """What moto's serializer module calls of xmltodict: ``unparse``, the plain case answered here."""

    def __init__(self, unparse: Callable[..., Any]) -> None:
        self.unparse = unparse


class _Unusual(Exception):
    """Input the plain emitter leaves to xmltodict (raised before anything is consumed)."""


_ONE = (str, bytes, bytearray, memoryview, dict)  # iterables xmltodict emits as one element
_XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
_valid_names: set[str] = set()


def _checked(name: Any, kind: str) -> None:
    """xmltodict's name check, once per name (it is a pure function of the name)."""
    if name not in _valid_names:
        xmltodict._validate_name(name, kind)  # raises as xmltodict does
        _valid_names.add(name)


def _text(value: Any) -> str:
    return xmltodict._convert_value_to_string(value)  # type: ignore[no-any-return]


class _Emitter:
    """xmltodict's ``_emit`` with its defaults (``@`` attributes, ``#text`` data, no namespaces,
    no preprocessor, not pretty) and XMLGenerator's output, into a list of strings."""

    def __init__(self, short_empty_elements: bool) -> None:
        self.parts: list[str] = []
        self.short = short_empty_elements
        self.pending = False  # a start tag written without its ">" yet (short empty elements)

    def emit(self, key: Any, value: Any, depth: int, full_document: bool) -> None:
        if key == "#comment":
            raise _Unusual
        _checked(key, "element")
        if not isinstance(value, (list, tuple)):
            if hasattr(value, "__iter__") and not isinstance(value, _ONE):
                raise _Unusual  # a generator or set: xmltodict's own way, before anything is read
            value = [value]
        if full_document and depth == 0 and len(value) > 1:
            raise _Unusual  # xmltodict raises "document with multiple roots"
        write = self.parts.append
        for v in value:
            if v is None:
                v = {}
            elif not isinstance(v, (dict, str)):
                v = _text(v)  # a number, bytes, or even a nested list: its text, as xmltodict does
            if isinstance(v, str):
                v = {"#text": v}
            cdata = None
            attrs: list[tuple[str, str]] = []
            children = []
            for ik, iv in v.items():
                if ik == "#text":
                    cdata = None if iv is None else _text(iv)
                    continue
                if isinstance(ik, str) and ik.startswith("@"):
                    if ik == "@xmlns" and isinstance(iv, dict):
                        raise _Unusual
                    iv = "" if iv is None else iv if isinstance(iv, str) else _text(iv)
                    _checked(ik[1:], "attribute")
                    attrs.append((ik[1:], iv))  # a repeated name keeps its first place, last value
                    continue
                if isinstance(iv, list) and not iv:
                    continue
                children.append((ik, iv))
            if self.pending:
                write(">")
            write("<" + key)
            for name, attr in dict(attrs).items():
                write(f" {name}={quoteattr(attr)}")
            if self.short:
                self.pending = True
            else:
                write(">")
                self.pending = False
            for child_key, child_value in children:
                self.emit(child_key, child_value, depth + 1, full_document)
            if cdata:
                if self.pending:
                    write(">")
                    self.pending = False
                write(escape(cdata))
            if self.pending:
                write("/>")
                self.pending = False
            else:
                write(f"</{key}>")


def xml_unparse(original: Callable[..., Any]) -> Callable[..., Any]:
    """``xmltodict.unparse`` answering the plain case itself (same text), the rest by ``original``."""

    def unparse(input_dict: Any, output: Any = None, encoding: str = "utf-8", full_document: bool = True,
                short_empty_elements: bool = False, comment_key: str = "#comment", **kwargs: Any) -> Any:
        plain = (output is None and encoding == "utf-8" and comment_key == "#comment"
                 and not kwargs.get("pretty") and set(kwargs) <= {"pretty"} and isinstance(input_dict, dict))
        if plain:
            emitter = _Emitter(short_empty_elements)
            try:
                for key, value in input_dict.items():
                    emitter.emit(key, value, 0, full_document)
                if full_document and len(input_dict) != 1:
                    raise _Unusual  # xmltodict raises: a document has exactly one root
            except _Unusual:
                pass
            else:
                return (_XML_DECLARATION if full_document else "") + "".join(emitter.parts)
        return original(input_dict, output, encoding, full_document, short_empty_elements, comment_key,
                        **kwargs)

    return unparse
