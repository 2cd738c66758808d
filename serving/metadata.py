"""Client JSON that the service stores and echoes (``X-Metadata``): validated once, before anything is logged.

A JSON document from a client is checked for size and nesting depth *before* it is parsed
(Python's parser recurses, and a 1 KB header nested 2,000 deep exhausts the stack), then for
what a verdict log can hold and every reader can read back: an object of at most
``MAX_ITEMS`` entries in all, short printable keys, strings of bounded length, finite numbers,
booleans and nulls, arrays and objects nested at most ``MAX_DEPTH`` deep. The same rules apply
when old rows are read back, so a row written before them cannot break a page of the log.
"""

from __future__ import annotations

import json
import math
from typing import Any

from inspection.errors import DefectscopeError

MAX_CHARS = 4096
MAX_DEPTH = 4  # {"a": {"b": [1]}} is depth 3
MAX_ITEMS = 64  # keys and array elements, counted over the whole document
MAX_KEY = 64
MAX_STRING = 512
MAX_INT = 2**53  # what every JSON reader (JavaScript's included) holds exactly
MAX_PROCESS_KEYS = 32
MAX_PROCESS_STRING = 64


class MetadataError(DefectscopeError):
    """Client JSON that the service will not store; the message says which rule it broke."""


def nesting_depth(text: str) -> int:
    """Deepest bracket nesting of a JSON text, outside string literals; no parsing, no recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _unicode(text: str) -> bool:
    """JSON's \\uXXXX escapes can make lone surrogates, which no UTF-8 writer (SQLite, the answer) takes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _no_constants(name: str) -> Any:
    raise MetadataError(f"{name} is not a number JSON allows: send finite numbers only")


class _Checker:
    def __init__(self, what: str) -> None:
        self.what = what
        self.items = 0

    def check(self, value: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise MetadataError(f"{self.what} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            for key, item in value.items():
                self._count()
                if not key or len(key) > MAX_KEY or not key.isprintable() or not _unicode(key):
                    raise MetadataError(f"{self.what} keys must be 1-{MAX_KEY} printable characters, not {key[:40]!r}")
                self.check(item, depth + 1)
        elif isinstance(value, list):
            for item in value:
                self._count()
                self.check(item, depth + 1)
        elif isinstance(value, str):
            if len(value) > MAX_STRING:
                raise MetadataError(f"{self.what} strings may hold at most {MAX_STRING} characters")
            if not _unicode(value):
                raise MetadataError(f"{self.what} strings must be valid Unicode (a lone surrogate such as \\ud800 "
                                    "is not)")
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            if abs(value) > MAX_INT:
                raise MetadataError(f"{self.what} integers must lie within +-2**53")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise MetadataError(f"{self.what} numbers must be finite")
        else:  # json.loads makes nothing else; a caller passing Python objects made a mistake
            raise MetadataError(f"{self.what} holds a {type(value).__name__}, which JSON cannot carry")

    def _count(self) -> None:
        self.items += 1
        if self.items > MAX_ITEMS:
            raise MetadataError(f"{self.what} holds more than {MAX_ITEMS} keys and array items in all")


def check_object(value: Any, what: str = "metadata") -> dict[str, Any]:
    """``value`` if it is a JSON object within the rules above; else MetadataError."""
    if not isinstance(value, dict):
        raise MetadataError(f'{what} must be a JSON object, e.g. {{"lot": "A17"}}')
    _Checker(what).check(value, 1)
    return value


def parse_object(raw: str, what: str = "metadata") -> dict[str, Any]:
    """Parse and check client JSON text (a header or query value)."""
    if len(raw) > MAX_CHARS:
        raise MetadataError(f"{what} is longer than {MAX_CHARS} characters")
    if nesting_depth(raw) > MAX_DEPTH:
        raise MetadataError(f"{what} is nested more than {MAX_DEPTH} levels deep")
    try:
        value = json.loads(raw, parse_constant=_no_constants)
    except (json.JSONDecodeError, RecursionError):
        raise MetadataError(f'{what} is not valid JSON: send an object, e.g. {{"lot": "A17"}}') from None
    return check_object(value, what)


def check_process(value: dict[str, Any], what: str = "process") -> dict[str, Any]:
    """A part's process parameters: a flat object of numbers, short strings, booleans and nulls
    (what an analysis can use: {"belt_speed": 1.2, "tool_id": "T3"}); nested values are refused."""
    if len(value) > MAX_PROCESS_KEYS:
        raise MetadataError(f"{what} holds {len(value)} parameters; at most {MAX_PROCESS_KEYS} are kept per part")
    for key, v in value.items():
        if isinstance(v, dict | list):
            raise MetadataError(f"{what} parameter {key[:40]!r} must be a number, a string, true/false or null, "
                                "not a nested value")
        if isinstance(v, str) and len(v) > MAX_PROCESS_STRING:
            raise MetadataError(f"{what} parameter {key[:40]!r} is longer than {MAX_PROCESS_STRING} characters")
    return value


def parse_process(raw: str) -> dict[str, Any]:
    """Parse and check a part's process parameters (the X-Process header or ``process`` query value)."""
    return check_process(parse_object(raw, "process"))


def read_back(stored: str | None) -> dict[str, Any] | None:
    """A logged metadata column for a reader: rows that break today's rules read as a marker, not an error."""
    if not stored:
        return None
    try:
        return parse_object(stored) if len(stored) <= MAX_CHARS else {"_unreadable": "metadata too large"}
    except MetadataError as exc:
        return {"_unreadable": str(exc)}
