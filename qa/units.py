"""Answer units: what an answer may cite, built from a document's blocks (structure.py).

A document's text is first cut into atoms, spans that never overlap: the sentences of paragraphs, list items and
quotes, code blocks (in groups of whole lines), table rows. A unit is a run of consecutive atoms a person can act on:
  - a sentence;
  - a lead-in (a sentence ending in ":" or announcing "the following", "for example", "like this") together with
    the block it introduces (code, list, table, quote, paragraph), never the lead-in alone;
  - a list item with the code and sub-items nested under it (a cheat-sheet entry: its description and command);
  - a code block only together with the sentence before it, or, where it opens its section (nothing but a
    heading before it), with the sentence after it ("This turns on the debugger ...");
  - a table row.
Headings, link-only and image lines, front matter and include directives are context: never a unit.
Units stay within MAX_UNIT_CHARS, except by one code block; longer ones are cut at atom boundaries.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .records import Block

MAX_UNIT_CHARS = 600
CODE_GROUP_CHARS = 600  # a long code block is cut into atoms of whole lines of about this size
SHORT_ITEM_CHARS = 300  # a list item up to this long is one unit with what is nested under it
_LEAD_IN = re.compile(r"(?::|\.\.\.|\u2026|\b(?:the following|for example|for instance|like this|like so|as follows)[\s.,:]*)\s*$",
                      re.I)
TEXT_KINDS = ("paragraph", "item", "quote")


@dataclass(frozen=True)
class Atom:
    start: int
    end: int
    block: int  # index of its block


def sentence_atoms(text: str, blocks: list[Block], split) -> list[Atom]:
    """The atoms of the blocks, in order. split(text, start, end) -> sentence spans inside [start, end)."""
    out: list[Atom] = []
    for b, block in enumerate(blocks):
        if block.kind in TEXT_KINDS:
            out.extend(Atom(s, e, b) for s, e in split(text, block.start, block.end))
        elif block.kind == "code":
            out.extend(Atom(s, e, b) for s, e in _line_groups(text, block.start, block.end))
        elif block.kind == "row":
            out.append(Atom(block.start, block.end, b))
    return out


def _line_groups(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A code block as runs of whole lines of about CODE_GROUP_CHARS."""
    groups = []
    at = start
    while at < end:
        cut = end
        if end - at > CODE_GROUP_CHARS:
            newline = text.rfind("\n", at, at + CODE_GROUP_CHARS)
            cut = newline if newline > at else text.find("\n", at + CODE_GROUP_CHARS, end)
            cut = end if cut < 0 else cut
        piece = text[at:cut]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip("\n"))
            groups.append((at + lead, at + len(piece.rstrip())))
        at = cut + 1
    return groups


def answer_units(text: str, blocks: list[Block], atoms: list[Atom]) -> list[tuple[int, int]]:
    """Units as [first atom, last atom + 1) ranges over atoms, in order of their first atom."""
    by_block: dict[int, list[int]] = {}
    for i, atom in enumerate(atoms):
        by_block.setdefault(atom.block, []).append(i)
    units: set[tuple[int, int]] = set()

    def size(a: int, b: int) -> int:
        return atoms[b - 1].end - atoms[a].start

    def extend(a: int, b: int, limit: int) -> int:
        """The end of a unit from atom a taking atoms up to b while within limit characters (code atoms of the
        first code block taken whole)."""
        end = a + 1
        code_seen = False
        while end < b:
            kind = blocks[atoms[end].block].kind
            if kind == "code" and not code_seen:
                code_seen = True
                end += 1
                while end < b and atoms[end].block == atoms[end - 1].block:
                    end += 1
                continue
            if size(a, end + 1) - _code_chars(atoms, blocks, a, end + 1) > limit:
                break
            end += 1
        return end

    for b in sorted(by_block):
        block = blocks[b]
        mine = by_block[b]
        if block.kind == "row":
            units.add((mine[0], mine[-1] + 1))
            continue
        if block.kind == "code":
            nxt = _next_content(blocks, b)
            opens_section = b == 0 or blocks[b - 1].kind in ("heading", "context")
            if opens_section and nxt is not None and blocks[nxt].kind in TEXT_KINDS and by_block.get(nxt):
                end = extend(mine[0], by_block[nxt][0] + 1, MAX_UNIT_CHARS)  # the code, then what it does
                if end > by_block[nxt][0]:  # never the code alone (its sentence did not fit: no such unit)
                    units.add((mine[0], end))
            continue
        nxt = _next_content(blocks, b)
        following = by_block.get(nxt, []) if nxt is not None else []
        after = _nested_end(blocks, atoms, b, mine[-1] + 1) if block.kind == "item" else mine[-1] + 1
        lead_in = bool(_LEAD_IN.search(text[atoms[mine[-1]].start:atoms[mine[-1]].end]))
        for i in mine[:-1]:
            units.add((i, i + 1))
        last = mine[-1]
        if block.kind == "item" and size(mine[0], last + 1) <= SHORT_ITEM_CHARS:
            # the whole item, with the code and sub-items under it (and what its lead-in introduces)
            stop = max(after, following[-1] + 1 if lead_in and following else after)
            units.add((mine[0], extend(mine[0], stop, MAX_UNIT_CHARS)))
        elif lead_in and following:
            units.add((last, extend(last, following[-1] + 1, MAX_UNIT_CHARS)))
        elif following and blocks[nxt].kind == "code" and after == following[0]:
            units.add((last, extend(last, following[-1] + 1, MAX_UNIT_CHARS)))  # the code with the sentence before it
        else:
            units.add((last, last + 1))
        if block.kind == "item" and after > last + 1 and size(mine[0], last + 1) > SHORT_ITEM_CHARS:
            units.add((last, extend(last, after, MAX_UNIT_CHARS)))
    return sorted(units)


def _code_chars(atoms: list[Atom], blocks: list[Block], a: int, b: int) -> int:
    return sum(atoms[i].end - atoms[i].start for i in range(a, b) if blocks[atoms[i].block].kind == "code")


def _next_content(blocks: list[Block], b: int) -> int | None:
    """The block right after block b, when it is content of the same section (not a heading or context)."""
    if b + 1 < len(blocks) and blocks[b + 1].kind not in ("heading", "context"):
        return b + 1
    return None


def _nested_end(blocks: list[Block], atoms: list[Atom], b: int, start: int) -> int:
    """The atom after the content nested under list item b (its code, paragraphs and sub-items); the chunker
    keeps units within one section."""
    depth = blocks[b].depth
    end = start
    while end < len(atoms):
        other = blocks[atoms[end].block]
        if other.depth < depth or (other.kind == "item" and other.depth <= depth and atoms[end].block != b):
            break
        end += 1
    return end
