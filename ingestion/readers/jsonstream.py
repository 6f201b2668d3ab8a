"""The elements of a top-level JSON array, parsed one at a time with bounded memory.

``json.load`` of a whole document holds every element as Python objects at once (a 264 MB array of
2M records peaked at 1.9 GB). :func:`array_elements` decodes the file incrementally and yields one
element at a time, so memory is bounded by the largest element, not the file. An element nested
deeper than :data:`MAX_NESTING` levels (or deeper than Python's parser can go) is yielded as a
:class:`TooDeep` marker with its raw text, so that it can be quarantined while the others load.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass

MAX_NESTING = 64
CHUNK = 1 << 20
MAX_ELEMENT = 256 << 20
_WS = " \t\r\n"


class BadJson(ValueError):
    """The document is not valid JSON (the message says where)."""


@dataclass
class TooDeep:
    """An element nested too deeply to be flattened: its raw text (cut) and why."""

    raw: str
    reason: str


def nesting(value, limit: int = MAX_NESTING) -> int:
    """Depth of ``value`` (a scalar is 0), counted up to ``limit + 1`` without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)) and item:
            if depth + 1 > deepest:
                deepest = depth + 1
                if deepest > limit:
                    return deepest
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


class _Buffer:
    def __init__(self, handle, encoding: str) -> None:
        self.handle = handle
        self.decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self.text, self.pos, self.eof, self.offset = "", 0, False, 0

    def more(self, at_least: int = 0) -> bool:
        if self.eof:
            return False
        block = self.handle.read(max(CHUNK, at_least))
        try:
            text = self.decoder.decode(block, final=not block)
        except UnicodeDecodeError as exc:
            raise BadJson(f"not valid {exc.encoding} near byte {self.handle.tell() - len(block) + exc.start}") from None
        if not block:
            self.eof = True
        self.offset += self.pos
        self.text = self.text[self.pos:] + text
        self.pos = 0
        return True

    def skip_ws(self) -> str:
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""


def array_elements(handle, encoding: str = "utf-8") -> Iterator[object]:
    """Yield the elements of the JSON array in binary ``handle`` (positioned anywhere before its
    ``[``). Raises :class:`BadJson` when the document is not one valid array."""
    buf = _Buffer(handle, encoding)
    decoder = json.JSONDecoder()
    if buf.skip_ws() == "\ufeff":
        buf.pos += 1
    if buf.skip_ws() != "[":
        raise BadJson("not a JSON array")
    buf.pos += 1
    first = True
    while True:
        ch = buf.skip_ws()
        if ch == "]" and first:
            buf.pos += 1
            break
        if not first:
            if ch == "]":
                buf.pos += 1
                break
            if ch != ",":
                raise BadJson(f"expected ',' or ']' at character {buf.offset + buf.pos}")
            buf.pos += 1
            buf.skip_ws()
        first = False
        yield _element(buf, decoder)
    if buf.skip_ws():
        raise BadJson(f"extra data after the array at character {buf.offset + buf.pos}")


def _element(buf: _Buffer, decoder: json.JSONDecoder):
    while True:
        try:
            value, end = decoder.raw_decode(buf.text, buf.pos)
        except RecursionError:
            end = _value_end(buf)
            raw = buf.text[buf.pos:end]
            buf.pos = end
            return TooDeep(raw[:4000], "nested deeper than Python's JSON parser allows")
        except json.JSONDecodeError as exc:
            if len(buf.text) - buf.pos > MAX_ELEMENT:
                raise BadJson(f"{exc.msg} at character {buf.offset + exc.pos} (or an element over "
                              f"{MAX_ELEMENT >> 20} MB)") from None
            if buf.more(len(buf.text) - buf.pos):  # doubles only for one huge element
                continue  # the element goes on in the next block
            raise BadJson(f"{exc.msg} at character {buf.offset + exc.pos}") from None
        if end >= len(buf.text) and buf.more():
            continue  # a number may go on in the next block
        raw_start = buf.pos
        buf.pos = end
        depth = nesting(value)
        if depth > MAX_NESTING:
            return TooDeep(buf.text[raw_start:end][:4000], f"nested {depth}+ levels deep (more than "
                           f"{MAX_NESTING})")
        return value


def _value_end(buf: _Buffer) -> int:
    """Where the value at ``buf.pos`` ends, found by counting brackets outside strings."""
    depth, i, in_string = 0, buf.pos, False
    while True:
        text = buf.text
        while i < len(text):
            ch = text[i]
            if in_string:
                if ch == "\\":
                    i += 1
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch in "[{":
                depth += 1
            elif ch in "]}":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        start = buf.pos
        if not buf.more(len(buf.text) - buf.pos):
            raise BadJson("unterminated array or object")
        i -= start  # the buffer was compacted to start at the old position
