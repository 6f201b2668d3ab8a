"""A text file's encoding decided from the whole file, and the lines that do not fit it.

The first bytes only propose an encoding (:func:`ingestion.detect.text_encoding`). This module
decides it from every line:

1. a file that is valid UTF-8 throughout and holds no NUL byte is read as it is (one fast pass in
   blocks, no copy);
2. otherwise each line is classified: a line with a NUL byte is bad (binary debris); of the lines
   that are not plain ASCII, those valid as UTF-8 are counted against those that are not. When
   UTF-8 lines are at least as many as the others that read as text in a code page
   (:func:`_plausible`), the file is UTF-8 and every line that does not decode as
   UTF-8 is bad; else the file is in a single-byte code page (the guess for its non-UTF-8 lines,
   Windows-1252 by default), and the lines that do not decode in it, or that are valid multi-byte
   UTF-8 (they would come out garbled, ``MÃ¼ller``), are bad;
3. a bad line is never decoded by a guess: its reader quarantines it with its line number, its
   bytes (undecodable ones as ``\\xNN``) and the reason, which shows how the line would read in the
   other encoding.

UTF-16 and UTF-32 files (by BOM or by their zero bytes) are transcoded whole, strictly.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path

BLOCK = 1 << 20
_WIDE = ("utf-16", "utf-32")
_UTF8 = ("utf-8", "utf-8-sig", "ascii")


@dataclass
class BadLine:
    line: int  # 1-based physical line
    raw: str
    reason: str


@dataclass
class TextPlan:
    """How to read a text file: ``encoding`` for its good lines, ``bad`` lines by number."""

    encoding: str
    bad: dict[int, BadLine] = field(default_factory=dict)
    clean_utf8: bool = False  # readable as it is: nothing to transcode or blank out
    note: str = ""

    @property
    def wide(self) -> bool:
        return codecs.lookup(self.encoding).name.startswith(_WIDE)


def plan_text(path: Path, guess: str | None) -> TextPlan:
    """Decide the encoding of ``path`` from the whole file (see the module docstring)."""
    guess = guess or "utf-8"
    if codecs.lookup(guess).name.startswith(_WIDE):
        return TextPlan(guess)
    if _clean_utf8(path):
        return TextPlan("utf-8-sig" if guess == "utf-8-sig" else "utf-8", clean_utf8=True)
    good, wrong, plausible, samples = 0, 0, 0, bytearray()
    with open(path, "rb") as handle:
        for raw in handle:
            if b"\x00" in raw or raw.isascii():
                continue
            try:
                raw.decode("utf-8")
                good += 1
            except UnicodeDecodeError:
                wrong += 1
                if _plausible(raw):
                    plausible += 1
                    if len(samples) < 65536:
                        samples += raw
    if good >= plausible:
        encoding = "utf-8-sig" if guess == "utf-8-sig" else "utf-8"
    else:
        encoding = _codepage(bytes(samples), guess)
    plan = TextPlan(encoding)
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            reason = _problem(raw, encoding)
            if reason:
                plan.bad[number] = BadLine(number, _shown(raw, encoding), reason)
    if wrong and encoding.startswith("utf-8"):
        plan.note = f"utf-8 ({wrong} line(s) not valid UTF-8 quarantined)"
    elif good and not encoding.startswith("utf-8"):
        plan.note = f"{encoding} ({good} line(s) valid only as UTF-8 quarantined)"
    return plan


_SYMBOLS = set("€£¥§°±µ·×÷«»–—‘’‚“”„…¢©®™¹²³¼½¾")


def _plausible(raw: bytes) -> bool:
    """The line reads as text in Windows-1252: each run of non-ASCII characters touches an ASCII
    letter (``Müller``, ``Zoë``) or is a common symbol (``€``, ``°``). Stray bytes (``\xff\xfe,7``)
    are not text in any code page and do not make a file single-byte."""
    text = raw.decode("cp1252", errors="replace").strip()
    runs = re.finditer(r"[^\x00-\x7f]+", text)
    for run in runs:
        chars = run.group()
        if all(c in _SYMBOLS for c in chars):
            continue
        before = text[run.start() - 1:run.start()]
        after = text[run.end():run.end() + 1]
        if not ((before.isascii() and before.isalpha()) or (after.isascii() and after.isalpha())):
            return False
        if "\ufffd" in chars:
            return False
    return True


def _clean_utf8(path: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        with open(path, "rb") as handle:
            while block := handle.read(BLOCK):
                if b"\x00" in block:
                    return False
                if block.isascii() and not decoder.getstate()[0]:
                    continue  # ASCII is UTF-8 (and nothing of a character is pending)
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _codepage(samples: bytes, guess: str) -> str:
    from ingestion.detect import text_encoding

    name = codecs.lookup(guess).name
    if not name.startswith("utf"):
        return guess
    found = text_encoding(samples) if samples else None
    if found and not codecs.lookup(found).name.startswith("utf"):
        return found
    return "cp1252"


def _problem(raw: bytes, encoding: str) -> str:
    if b"\x00" in raw:
        return f"a NUL byte at column {raw.index(0) + 1}: binary data in a text line"
    if raw.isascii():
        return ""
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as exc:
        other = _other_reading(raw, "cp1252" if encoding.startswith("utf-8") else "utf-8")
        return (f"not valid {codecs.lookup(encoding).name} (byte {raw[exc.start]:#04x} at column "
                f"{exc.start + 1}){other}")
    if not encoding.startswith("utf-8"):
        try:
            as_utf8 = raw.decode("utf-8")
        except UnicodeDecodeError:
            return ""
        return (f"valid UTF-8 in a {encoding} file: as UTF-8 it reads {as_utf8.strip()[:80]!r}, as "
                f"{encoding} {raw.decode(encoding).strip()[:80]!r}")
    return ""


def _other_reading(raw: bytes, encoding: str) -> str:
    try:
        return f"; as {encoding} it reads {raw.decode(encoding).strip()[:80]!r}"
    except UnicodeDecodeError:
        return ""


def _shown(raw: bytes, encoding: str) -> str:
    text = raw.decode(encoding if not encoding.startswith("utf-8") else "utf-8", errors="backslashreplace")
    return text.replace("\x00", "\\x00").strip("\r\n")[:4000]


def head_text(path: Path, plan: TextPlan, limit: int) -> str:
    """The first ``limit`` bytes as text, whole lines only, bad lines blank (line numbers kept)."""
    with open(path, "rb") as handle:
        raw = handle.read(limit)
    lines = raw.split(b"\n")
    if len(raw) == limit and len(lines) > 1:
        lines = lines[:-1]
    out = []
    for number, line in enumerate(lines, start=1):
        if number in plan.bad:
            out.append("")
        else:
            out.append(line.decode(plan.encoding, errors="ignore"))
    return "\n".join(out).lstrip("\ufeff") + ("\n" if lines else "")


def write_utf8(path: Path, plan: TextPlan, target: Path, marker: str) -> None:
    """Copy ``path`` to ``target`` in UTF-8, each bad line replaced by ``marker`` (a line the
    reader is sure to reject, so that it keeps its place and is counted)."""
    if codecs.lookup(plan.encoding).name.startswith(_WIDE):
        decoder = codecs.getincrementaldecoder(plan.encoding)(errors="strict")
        with open(path, "rb") as src, open(target, "w", encoding="utf-8", newline="") as dst:
            while block := src.read(BLOCK):
                dst.write(decoder.decode(block))
            dst.write(decoder.decode(b"", final=True))
        return
    encoding = "utf-8" if plan.encoding == "utf-8-sig" else plan.encoding
    with open(path, "rb") as src, open(target, "w", encoding="utf-8", newline="") as dst:
        for number, raw in enumerate(src, start=1):
            if number in plan.bad:
                dst.write(marker + ("\r\n" if raw.endswith(b"\r\n") else "\n" if raw.endswith(b"\n") else ""))
            else:
                text = raw.decode(encoding)
                dst.write(text.lstrip("\ufeff") if number == 1 else text)
