"""What a file is, read from its first bytes rather than its name, and how its text is encoded."""

from __future__ import annotations

import codecs
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

SAMPLE_BYTES = 256 * 1024

COMPRESSED = {"gzip", "bz2", "xz", "zstd"}
_MAGIC = [
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PAR1", "parquet"),
    (b"ARROW1", "arrow"),
    (b"\xff\xff\xff\xff", "arrow"),  # Arrow IPC stream (continuation marker)
    (b"SQLite format 3\x00", "sqlite"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "excel"),  # OLE2: legacy .xls
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # empty zip
]
# Recognised but not data: skipped with this reason.
_NOT_DATA = [
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive (not supported: repack it as .zip or .tar.gz)"),
    (b"Rar!", "a RAR archive (not supported: repack it as .zip)"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "an executable"),
]
_DOC_SUFFIXES = {".md", ".rst", ".html", ".htm", ".xml", ".yaml", ".yml", ".toml", ".ini", ".cfg",
                 ".py", ".sql", ".log", ".pdf", ".doc", ".docx", ".ppt", ".pptx"}
_TEXT_DATA_SUFFIXES = {".csv", ".tsv", ".tab", ".txt", ".dat", ".psv", ".json", ".jsonl", ".ndjson"}
_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]


# Western single-byte code pages a guess may land on for text that is really Windows-1252.
_LATIN = {"iso8859-1", "iso8859-15", "cp1252", "cp850", "cp437", "cp858"}


# Bytes that text does not hold (C0 controls but tab, newlines, form feed, escape): above this
# share of a sample (and more than BINARY_FLOOR of them) the file is binary.
_CONTROL = [b for b in range(32) if b not in (9, 10, 11, 12, 13, 27)]
BINARY_SHARE = 0.01
BINARY_FLOOR = 8


@dataclass(frozen=True)
class Detected:
    """``kind`` is a format name, a compression, ``zip``, or ``skip`` (with ``reason``)."""

    kind: str
    reason: str = ""
    encoding: str | None = None


def head(path: Path, n: int = SAMPLE_BYTES) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(n)


def detect(path: Path, forced: str | None = None) -> Detected:
    """The kind of ``path`` from its content; ``forced`` (a format name) wins for data files."""
    sample = head(path)
    if not sample:
        return Detected("skip", "empty file")
    for magic, kind in _MAGIC:
        if sample.startswith(magic):
            if kind == "zip":
                kind = _zip_kind(path)
            if kind in COMPRESSED or kind == "zip":
                return Detected(kind)
            return Detected(forced or kind)
    for magic, what in _NOT_DATA:
        if sample.startswith(magic):
            return Detected("skip", f"not data: {what}")
    encoding = text_encoding(sample)
    if encoding is None:
        return Detected("skip", "not data: binary content of an unknown kind")
    if forced:
        return Detected(forced, encoding=encoding)
    suffix = path.suffix.lower()
    if suffix in _DOC_SUFFIXES:
        return Detected("skip", f"not data: a {suffix} document")
    text = sample.decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    if text[:1] in "[{":
        return Detected(_json_kind(text, suffix), encoding=encoding)
    if suffix in _TEXT_DATA_SUFFIXES or _looks_delimited(text):
        return Detected("csv", encoding=encoding)
    return Detected("skip", "not data: text without a consistent delimiter")


def text_encoding(sample: bytes) -> str | None:
    """The encoding of a text sample, or None when it looks binary.

    A BOM decides; zero bytes in every other place make UTF-16; more than :data:`BINARY_SHARE`
    control bytes make it binary (None); else strict UTF-8 (a sequence cut at the sample's end is allowed); else
    charset-normalizer's best guess, where Latin-1 is read as its superset cp1252 when possible.
    """
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    if b"\x00" in sample[:4096] and _looks_utf16(sample):
        return "utf-16"
    if _controls(sample) > max(BINARY_FLOOR, BINARY_SHARE * min(len(sample), 65536)):
        return None  # binary: a text file with a stray NUL or two is read, those lines quarantined
    sample = sample.replace(b"\x00", b"")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    if _mostly_utf8(sample):
        return "utf-8"  # a few lines in another encoding: the reader quarantines them
    from charset_normalizer import from_bytes

    best = from_bytes(sample[:65536]).best()
    if best is None:
        return "utf-8"  # text (few control bytes) of no clear encoding: decided line by line
    name = codecs.lookup(best.encoding).name
    # On short samples the guess often lands on a sibling single-byte code page (mac-iceland,
    # cp1250, iso8859-15...). Windows-1252 is by far the likeliest for exports: prefer it for Mac
    # guesses, and whenever it reads the sample exactly as the guess does.
    try:
        as_1252 = sample.decode("cp1252")
    except UnicodeDecodeError:
        as_1252 = None
    if as_1252 is not None and (name.startswith("mac-") or name in _LATIN or _same(sample, name, as_1252)):
        return "cp1252"
    if name.startswith("mac-") or name in _LATIN:
        return "latin-1"
    return name


def _mostly_utf8(sample: bytes) -> bool:
    good = bad = 0
    for line in sample.split(b"\n")[:-1] or [sample]:
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            good += 1
        except UnicodeDecodeError:
            bad += 1
    return good > bad


def _controls(sample: bytes) -> int:
    part = sample[:65536]
    return sum(part.count(bytes([b])) for b in _CONTROL)


def _same(sample: bytes, encoding: str, text: str) -> bool:
    try:
        return sample.decode(encoding) == text
    except (UnicodeDecodeError, LookupError):
        return False


def _looks_utf16(sample: bytes) -> bool:
    even, odd = sample[0:2048:2], sample[1:2048:2]
    return even.count(0) > len(even) * 0.4 or odd.count(0) > len(odd) * 0.4


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "xl/workbook.xml" in names or "xl/workbook.bin" in names:
                return "excel"
            if "mimetype" in names and b"opendocument.spreadsheet" in archive.read("mimetype"):
                return "excel"
    except zipfile.BadZipFile:
        return "zip"  # reported as a bad archive when opened
    return "zip"


def _json_kind(text: str, suffix: str) -> str:
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) >= 2 and lines[0].lstrip().startswith("{"):
        try:
            json.loads(lines[0])
            return "jsonl"  # a whole object on the first line, more lines follow
        except ValueError:
            pass
    return "json"


def _looks_delimited(text: str) -> bool:
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if len(lines) < 2:
        return False
    for delim in (",", ";", "\t", "|"):
        counts = [ln.count(delim) for ln in lines[1:]]
        if counts and min(counts) >= 1 and max(counts) == min(counts):
            return True
    return False
