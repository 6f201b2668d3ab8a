"""Where a grid's header is: title rows above it are skipped, a missing header is noticed.

Shared by the delimited-text and the Excel readers: both hand over the first rows of a grid as lists
of strings (empty cells as ``""``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_NUMBERISH = re.compile(r"^[\s+\-(]*[$€£¥]?\s*[\d.,' ]+\s*[%€$£¥)]?\s*$")
_DATEISH = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")


@dataclass(frozen=True)
class Layout:
    """``header_index``: index of the header row in the sample (or of the first data row)."""

    width: int
    header_index: int
    has_header: bool
    consistency: float

    def title_rows(self, rows: list[list[str]]) -> list[str]:
        return [" ".join(str(c) for c in r if c).strip() for r in rows[: self.header_index] if _filled(r)]


def _filled(row: list[str]) -> int:
    return sum(1 for c in row if c is not None and str(c).strip() != "")


def find_layout(rows: list[list[str]]) -> Layout | None:
    """The layout of a grid sample: its width, where the header is, how regular the rows are.

    The width is the most common count of fields among the rows below the first third of the
    sample (title rows sit at the top). The header is the first row of that width with at least
    two filled cells (a one-cell row above a wide grid is a title). It is a header unless one of
    its cells reads as a number or a date.
    """
    filled = [i for i, r in enumerate(rows) if _filled(r) > 0]
    if not filled:
        return None
    nonblank = [rows[i] for i in filled]
    tail = nonblank[len(nonblank) // 3:] or nonblank
    width = Counter(len(r) for r in tail).most_common(1)[0][0]
    consistency = sum(1 for r in tail if len(r) == width) / len(tail)
    need = min(2, width)
    pos = next((k for k, r in enumerate(nonblank) if len(r) == width and _filled(r) >= need), 0)
    candidate = nonblank[pos]
    has_header = all(not _NUMBERISH.match(str(c)) and not _DATEISH.match(str(c))
                     for c in candidate if str(c).strip())
    if has_header and pos + 1 < len(nonblank):
        nxt = nonblank[pos + 1]
        # the same text in every cell of the next row as in the candidate: no header after all
        has_header = not all(str(a).strip() == str(b).strip() for a, b in zip(candidate, nxt))
    return Layout(width, filled[pos], has_header, consistency)


SENTENCE_WORDS = 5


def _sentence(cell: object) -> bool:
    return len(str(cell).split()) >= SENTENCE_WORDS


def not_tabular(rows: list[list[str]], layout: Layout) -> str:
    """Why a grid sample is prose rather than a table ("" when it is a table).

    Prose is text whose lines mostly hold sentences (a cell of five words or more in at least
    half the non-blank lines, titles included) and that is either one column, or a grid where
    fewer than half the rows from the header on have the grid's width, or fewer than 80% while the
    would-be header is itself a sentence (headers are names, not sentences). A ragged but wordless
    file, or a table of reviews with a few unquoted commas, is a table whose odd lines are
    quarantined."""
    lines = [r for r in rows if _filled(r)]
    body = [r for r in rows[layout.header_index:] if _filled(r)]
    if not body:
        return ""
    regular = sum(1 for r in body if len(r) == layout.width) / len(body)
    sentences = sum(1 for r in lines if any(_sentence(c) for c in r if str(c).strip())) / len(lines)
    if sentences < 0.5:
        return ""
    if layout.width == 1:
        return "not tabular: one column of sentences (prose), not a table"
    header_is_sentence = any(_sentence(c) for c in body[0] if str(c).strip())
    if regular < 0.5 or (regular < 0.8 and header_is_sentence):
        return "not tabular: lines of sentences with no consistent number of fields (prose)"
    return ""
