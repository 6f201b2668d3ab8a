"""From sources (files, folders, globs) to the data files to read, archives and compression undone.

Safety rules, each reported as a bad file with its reason rather than followed:

- a symlink inside an input folder that resolves outside that folder is refused;
- a zip member whose path is absolute or climbs with ``..`` is refused (zip-slip);
- an archive member or compressed file that expands more than :data:`MAX_RATIO` times its packed
  size (and beyond :data:`RATIO_FLOOR` bytes) is refused, checked while streaming, not trusted from
  the archive's header.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import hashlib
import itertools
import lzma
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ingestion.detect import COMPRESSED, detect
from ingestion.models import FileIssue, SourceSpec

MAX_RATIO = 200
RATIO_FLOOR = 64 * 1024 * 1024
MAX_DEPTH = 3
CHUNK = 1024 * 1024
_COMPRESSED_SUFFIX = {"gzip": ".gz", "bz2": ".bz2", "xz": ".xz", "zstd": ".zst"}


class Refused(Exception):
    """A file that must not be read; the message is the reason."""


@dataclass
class InputFile:
    """A readable data file: ``local`` is where it lies now (maybe unpacked into staging)."""

    source_index: int
    display: str
    local: Path
    kind: str
    encoding: str | None
    size: int
    hashing: Any  # the sha256 hex digest, or a Future of it (the file hashed while it is read)
    origin: Path
    member: str | None = None
    folder: str = ""
    notes: dict = field(default_factory=dict)
    forced_types: dict = field(default_factory=dict)  # the source's `types`

    @property
    def sha256(self) -> str:
        """The file's sha256 (lineage, fingerprints); waits for its hashing thread if need be."""
        if not isinstance(self.hashing, str):
            self.hashing = self.hashing.result()
        return self.hashing


@dataclass
class Discovery:
    files: list[InputFile] = field(default_factory=list)
    bad: list[FileIssue] = field(default_factory=list)
    skipped: list[FileIssue] = field(default_factory=list)


def discover(sources: list[SourceSpec], staging: Path) -> tuple[Discovery, list[str]]:
    """Expand every source; returns what was found and, per source, a problem (or "")."""
    found = Discovery()
    problems = []
    for index, source in enumerate(sources):
        paths, root, problem = _expand(source.path)
        problems.append(problem)
        for path in paths:
            display = _display(path, root)
            if path.name.startswith("."):
                found.skipped.append(FileIssue(path=display, reason="hidden file"))
                continue
            if root is not None and not _inside(path, root):
                found.bad.append(FileIssue(path=display, reason="refused: a symlink pointing outside "
                                           f"the input folder (to {path.resolve()})"))
                continue
            folder = str(path.parent.relative_to(root)) if root is not None else ""
            before = len(found.files)
            _visit(path, display, index, source.format, path, None, folder, staging, found, 0)
            for item in found.files[before:]:
                item.forced_types = dict(source.types)
    return found, problems


def _expand(path: Path) -> tuple[list[Path], Path | None, str]:
    text = str(path)
    if any(ch in text for ch in "*?["):
        base = Path(text.split("*")[0].split("?")[0].split("[")[0]).parent
        matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
        files = [p for p in matches if p.is_file()]
        return files, base, "" if files else f"no file matches {text}"
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not _in_hidden_dir(p, path))
        return files, path, "" if files else f"the folder {path} holds no files"
    if path.is_file():
        return [path], None, ""
    return [], None, f"no such file or folder: {path}"


def _in_hidden_dir(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts[:-1])


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _display(path: Path, root: Path | None) -> str:
    if root is None:
        return path.name
    try:
        return str(path.relative_to(root))
    except ValueError:
        return path.name


def _visit(local: Path, display: str, index: int, forced: str | None, origin: Path, member: str | None,
           folder: str, staging: Path, found: Discovery, depth: int) -> None:
    try:
        kind = detect(local, forced)
    except OSError as exc:
        found.bad.append(FileIssue(path=display, reason=f"cannot be read: {exc.strerror or exc}"))
        return
    if kind.kind == "skip":
        found.skipped.append(FileIssue(path=display, reason=kind.reason))
        return
    if depth >= MAX_DEPTH and (kind.kind in COMPRESSED or kind.kind == "zip"):
        found.bad.append(FileIssue(path=display, reason=f"refused: archives nested over {MAX_DEPTH} deep"))
        return
    if kind.kind in COMPRESSED:
        target = _staged(staging, display, _strip_suffix(local.name, kind.kind))
        try:
            _decompress(local, target, kind.kind)
        except Refused as exc:
            found.bad.append(FileIssue(path=display, reason=f"refused: {exc}"))
            return
        except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
            found.bad.append(FileIssue(path=display, reason=f"corrupt {kind.kind} data: {exc}"))
            return
        before = len(found.files)
        _visit(target, display, index, forced, origin, member, folder, staging, found, depth + 1)
        size, digest = _hash(local)  # lineage names the file as it is on disk, not its unpacked bytes
        for item in found.files[before:]:
            item.notes.setdefault("decompressed", kind.kind)
            if item.display == display:
                item.size, item.hashing = size, digest
        return
    if kind.kind == "zip":
        _visit_zip(local, display, index, forced, origin, folder, staging, found, depth)
        return
    if local == origin:  # the user's own file: hashed in a thread, beside its read
        size, digest = local.stat().st_size, worker("sha256").submit(lambda: _hash(local)[1])
    else:  # unpacked into staging (removed at the end of the run): hashed now
        size, digest = _hash(local)
    found.files.append(InputFile(index, display, local, kind.kind, kind.encoding, size, digest, origin,
                                 member, folder))


def _visit_zip(local: Path, display: str, index: int, forced: str | None, origin: Path, folder: str,
               staging: Path, found: Discovery, depth: int) -> None:
    try:
        archive = zipfile.ZipFile(local)
    except (zipfile.BadZipFile, OSError) as exc:
        found.bad.append(FileIssue(path=display, reason=f"not a readable zip archive: {exc}"))
        return
    with archive:
        for info in archive.infolist():
            name = info.filename
            shown = f"{display}!/{name}"
            if info.is_dir():
                continue
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                found.bad.append(FileIssue(path=shown, reason="refused: the member's path leaves the "
                                           "archive (absolute or '..')"))
                continue
            if any(p.startswith(".") or p == "__MACOSX" for p in parts):
                found.skipped.append(FileIssue(path=shown, reason="hidden file"))
                continue
            if info.flag_bits & 0x1:
                found.bad.append(FileIssue(path=shown, reason="encrypted zip member"))
                continue
            target = _staged(staging, shown, parts[-1])
            try:
                with archive.open(info) as src, open(target, "wb") as dst:
                    _copy_bounded(src, dst, info.compress_size)
            except Refused as exc:
                found.bad.append(FileIssue(path=shown, reason=f"refused: {exc}"))
                continue
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                found.bad.append(FileIssue(path=shown, reason=f"corrupt zip member: {exc}"))
                continue
            member = name if depth == 0 else f"{display}!/{name}"
            _visit(target, shown, index, forced, origin, member, folder, staging, found, depth + 1)


def _strip_suffix(name: str, kind: str) -> str:
    suffix = _COMPRESSED_SUFFIX[kind]
    if name.lower().endswith(suffix):
        return name[: -len(suffix)] or "data"
    return name + ".unpacked"


_counter = itertools.count(1)


def _staged(staging: Path, display: str, name: str) -> Path:
    folder = staging / "unpacked" / str(next(_counter))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / (Path(name).name or "data")


def _decompress(src_path: Path, target: Path, kind: str) -> None:
    packed = src_path.stat().st_size
    if kind == "gzip":
        opener = gzip.open(src_path, "rb")
    elif kind == "bz2":
        opener = bz2.open(src_path, "rb")
    elif kind == "xz":
        opener = lzma.open(src_path, "rb")
    else:
        import zstandard

        opener = zstandard.ZstdDecompressor().stream_reader(open(src_path, "rb"), closefd=True)
    with opener as src, open(target, "wb") as dst:
        _copy_bounded(src, dst, packed)


def _copy_bounded(src, dst, packed: int) -> None:
    limit = max(RATIO_FLOOR, MAX_RATIO * max(packed, 1))
    written = 0
    while True:
        block = src.read(CHUNK)
        if not block:
            return
        written += len(block)
        if written > limit:
            raise Refused(f"expands over {MAX_RATIO}x its packed size ({packed} bytes packed, "
                          f"over {written} bytes unpacked): a likely decompression bomb")
        dst.write(block)


_WORKERS: dict = {}


def worker(name: str):
    """A one-thread executor for whole-file work beside DuckDB's read (hashlib and bytes searches
    release the GIL on large blocks). One per process: a forked worker makes its own, since the
    parent's thread does not survive the fork."""
    import os

    key = (name, os.getpid())
    if key not in _WORKERS:
        from concurrent.futures import ThreadPoolExecutor

        _WORKERS[key] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"gristmill-{name}")
    return _WORKERS[key]


def _hash(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def cleanup(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
