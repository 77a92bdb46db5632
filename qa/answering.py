"""Extractive answers: pick the answer units (units.py: a sentence, a lead-in with its code or list, a list item
with its command) of the top passages that answer the question, cite each one, and abstain when none does.
Units are scored by terms and vectors (score_sentences); the reader (reader.py), when on, re-reads the best few."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .chunking import encoder_prefix
from .embedding import Embedder
from .lexical import plain_words
from .reader import Reader, Reading
from .records import Answer, Citation, Hit
from .store import VectorStore
from .unmentioned import Vocabulary, identifier_like, quoted, setting_names, unmentioned_names

NOT_FOUND = "I couldn't find this in the documents."
SCORER_MIN_SCORE = 0.46  # without the reader: the score below which it abstains (2.8% of answerable even SQuAD)
MAX_SENTENCES = 3
# A sentence's answer score: SEMANTIC_WEIGHT * cosine with the question + (1 - SEMANTIC_WEIGHT) * its coverage
# of the question's key terms + PASSAGE_WEIGHT * its passage's retrieval score (+ TYPE_BONUS). Fitted on the
# even-numbered SQuAD 2.0 dev articles (bench/tune_answers.py); PASSAGE_WEIGHT raised from 0.3 with answer units,
# which lifted both the even SQuAD articles (answer accuracy 0.870 -> 0.881) and the tuning part of eval/docs.
SEMANTIC_WEIGHT = 0.5
PASSAGE_WEIGHT = 0.8
FOLLOW_MARGIN = 0.035  # further units must score within this of the best one (0.026, the same in raw units as
# before the passage weight rose, cost 0.006 answer accuracy on the even SQuAD articles)
MAX_CITED_CHARS = 600  # cited in one answer, not counting code blocks (the first unit is always cited)
SHORT_UNIT_WORDS = 5  # a unit of fewer words gets that share of its term coverage: a few words cannot win on it

_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset("""a about above after again against all am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
nor not now of off on once only or other our ours ourselves out over own same she should so some such than that
the their theirs them themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves tell please
know whats""".split())


_LEANING = re.compile(r"^(?:\W*\w+\W+){0,5}?(it|its|they|their|this|these|those|he|she|his|her)\b", re.I)
_DEFINITE = re.compile(r"^(?:\W*\w+\W+){0,11}?the ([A-Z]\w+)")  # "Created in 1990, the Centre now ..."


def leans_on_previous(sentence: str, previous: str) -> bool:
    """Does the sentence refer back to the one before: a pronoun early on, or "the X" for an X named there?"""
    if _LEANING.match(sentence):
        return True
    m = _DEFINITE.match(sentence)
    return bool(m) and stem(m.group(1).lower()) in key_terms(previous)
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b|\b(January|February|March|April|May|June|July|August|September|"
                   r"October|November|December)\b")
_NUMBER = re.compile(r"\d")
TYPE_BONUS = 0.10  # for a sentence holding the kind of fact the question asks for (a date, a number)
OFF_SUBJECT = 1.0  # taken from a unit that holds none of the words of the subject the question names (named_subject):
# as much as its whole term and vector score, so that it ranks below the units that speak of that subject
MAX_SCORE = 1 + PASSAGE_WEIGHT + TYPE_BONUS  # scores are divided by it, so that a confidence is at most 1


_STEMMER = None


def stem(word: str) -> str:
    """The English Snowball stem ('directs', 'direction' -> 'direct'; 'police' and 'policy' stay apart)."""
    global _STEMMER
    if _STEMMER is None:
        import Stemmer

        _STEMMER = Stemmer.Stemmer("english")
    return _STEMMER.stemWord(word)


def key_terms(text: str) -> set[str]:
    """Stems of the lower-cased content words (a cheat sheet's "E[x]tract" is "extract")."""
    return {stem(w) for w in (m.lower() for m in _WORD.findall(plain_words(text))) if w not in STOPWORDS}


def type_bonus(question: str, sentence: str) -> float:
    q = question.lower()
    if q.startswith("when") or "what year" in q or "which year" in q:
        return TYPE_BONUS if _YEAR.search(sentence) else 0.0
    if q.startswith(("how many", "how much")):
        return TYPE_BONUS if _NUMBER.search(sentence) else 0.0
    if _HOW_TO.match(q):  # "How do I ...?": the kind of answer that shows how is code or a command
        return TYPE_BONUS if _code_chars(sentence) or "``" in sentence else 0.0
    return 0.0


_HOW_TO = re.compile(r"(?:\W*\w+\W+){0,6}?(?:how (?:do|can|should|would) (?:i|we|you)|how to)\b")


@dataclass(frozen=True)
class _Candidate:
    source: str
    start: int
    end: int
    line: int
    text: str
    hit: Hit
    vector: np.ndarray


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _candidates(hits: list[Hit], store: VectorStore) -> list[_Candidate]:
    """Each answer unit of the hits once, with its stored vector; a sentence that leans on the one before it
    ("It also ...") is also offered together with that sentence, as one span."""
    seen = set()
    out = []
    for hit in hits:
        c = hit.chunk
        spans = c.units
        vectors = store.sentence_vectors(c)
        for i, (s, e) in enumerate(spans):
            units = [(s, e, vectors[i])]
            if i > 0 and spans[i - 1][1] <= s and not c.text[spans[i - 1][1] - c.start:s - c.start].count("\n\n") \
                    and leans_on_previous(c.text[s - c.start:e - c.start],
                                          c.text[spans[i - 1][0] - c.start:spans[i - 1][1] - c.start]):
                units.append((spans[i - 1][0], e, _unit(vectors[i - 1] + vectors[i])))
            for us, ue, vec in units:
                if (c.source, us, ue) in seen:
                    continue
                seen.add((c.source, us, ue))
                line = c.line + c.text.count("\n", 0, us - c.start)
                out.append(_Candidate(c.source, us, ue, line, c.text[us - c.start:ue - c.start], hit, vec))
    return out


def _same_words(a: str, b: str) -> bool:
    return a.split() == b.split()


def _code_chars(text: str) -> int:
    """Characters of fenced or indented code in a unit (which the cited-length budget does not count)."""
    fenced = sum(len(m) for m in re.findall(r"```.*?```|~~~.*?~~~", text, re.S))
    return fenced or sum(len(line) + 1 for line in text.split("\n") if line.startswith(("    ", "\t", "`")))


def shown_text(unit: str) -> str:
    """A cited unit as the answer shows it: one line, except a unit holding a block (a lead-in with its code or
    list), which keeps its line breaks."""
    return unit if "\n\n" in unit or "```" in unit or "\n    " in unit else " ".join(unit.split())


def _with_marker(sentence: str, n: int) -> str:
    if "\n" in sentence:
        return f"{sentence}\n[{n}]"
    if sentence.endswith((".", "!", "?")) and not sentence.endswith("..."):
        return f"{sentence[:-1]} [{n}]{sentence[-1]}"
    if sentence.endswith(("\u2026", "...")):
        return f"{sentence} [{n}]"
    return f"{sentence.rstrip(':;,')} [{n}]."  # a heading or list item: end it, so the next sentence reads apart


FOLLOWS_WITHIN = 250  # characters: a code example this close after the best unit, in its section, is cited with it


def _example_after(best: _Candidate, candidates: list[_Candidate]) -> _Candidate | None:
    """The unit with a code block that follows the best unit closely in its section (the sentence says what to
    do, the example after it shows how), when the best unit has no code of its own; it may open the next passage."""
    if _code_chars(best.text) or "\n\n" in best.text:
        return None
    after = [c for c in candidates if c.source == best.source and c.hit.chunk.section == best.hit.chunk.section and
             best.end <= c.start <= best.end + FOLLOWS_WITHIN and _code_chars(c.text)]
    return min(after, key=lambda c: c.start) if after else None


def _example_before(best: _Candidate, candidates: list[_Candidate]) -> _Candidate | None:
    """The unit ending in a code block right before the best unit, with only blank lines between them (the code
    first, then the sentence that explains it: "This enables debug mode ...", "Note that cookies are set on
    response objects."), when the best unit has no code of its own and none follows it closely (compose_answer
    asks for it on how-to questions only: a fact may sit under an unrelated example)."""
    if _code_chars(best.text) or "\n\n" in best.text:
        return None
    chunk = best.hit.chunk
    before = [c for c in candidates if c.source == best.source and chunk.start <= c.end <= best.start and
              not chunk.text[c.end - chunk.start:best.start - chunk.start].strip() and _ends_in_code(c.text)]
    return min(before, key=lambda c: c.start) if before else None


def _ends_in_code(text: str) -> bool:
    """Does the unit end in a code block (fenced, or indented lines after a blank line)?"""
    if text.rstrip().endswith(("```", "~~~")):
        return True
    lines = text.rstrip().split("\n")
    return len(lines) > 2 and lines[-1].startswith(("    ", "\t")) and "\n\n" in text


def heading_terms(hits: list[Hit]) -> dict[int, set[str]]:
    """The key terms of each hit's document title and heading path, by id of the hit (see unit_terms)."""
    return {id(h): key_terms(encoder_prefix(h.chunk)) for h in hits}


def named_subject(terms: set[str], hits: list[Hit], headings: dict[int, set[str]]) -> set[str]:
    """What the question is about, when it names it: the key terms of a hit's document title that the question
    holds whole ("... with wget?" names the page titled "wget") and that no hit of another document holds, in its
    text or heading path (a page titled "Templates" is not what a question about error templates is about when other
    pages speak of templates too). Empty when the hits are of one document, or the question names none of them."""
    titles = {h.chunk.source: key_terms(h.chunk.title) for h in hits}
    named = {source for source, t in titles.items() if t and t <= terms}
    if not named or len(named) == len(titles):
        return set()
    elsewhere = set().union(*(key_terms(h.chunk.text) | headings[id(h)] for h in hits if h.chunk.source not in named))
    return set().union(*(titles[s] for s in named if not titles[s] & elsewhere))


def unit_terms(cand: _Candidate, headings: dict[int, set[str]]) -> set[str]:
    """The key terms a unit covers: its own and those of its title and heading path (it is read under them)."""
    return key_terms(cand.text) | headings[id(cand.hit)]


def score_sentences(question: str, hits: list[Hit], embedder: Embedder, store: VectorStore,
                    query: str | None = None) -> list[tuple[float, _Candidate]]:
    """Every sentence of the hits with its answer score, best first. A question term counts as covered when the
    unit or its document title and heading path hold it (the unit is read under them, as the reader reads it).
    query: the question with its conversational context, when it differs (a follow-up)."""
    query = query or question
    candidates = _candidates(hits, store)
    if not candidates:
        return []
    vectors = np.stack([c.vector for c in candidates])
    semantic = vectors @ embedder.encode_cached([query])[0]
    terms = key_terms(query)
    if query != question:  # a follow-up: the context found the passages; the sentence must answer this question
        semantic = (semantic + vectors @ embedder.encode_cached([question])[0]) / 2
        terms = key_terms(question) or terms
    scored = []
    headings = heading_terms(hits)
    subject = named_subject(terms, hits, headings)
    for cand, sim in zip(candidates, semantic):
        covered = unit_terms(cand, headings)
        coverage = len(terms & covered) / len(terms) if terms else 0.0
        coverage *= min(1.0, len(_WORD.findall(cand.text)) / SHORT_UNIT_WORDS)
        off_subject = OFF_SUBJECT if subject and not subject & covered else 0.0
        score = (SEMANTIC_WEIGHT * float(sim) + (1 - SEMANTIC_WEIGHT) * coverage + PASSAGE_WEIGHT * cand.hit.score
                 + type_bonus(question, cand.text) - off_subject) / MAX_SCORE
        scored.append((score, cand))
    scored.sort(key=lambda pair: -pair[0])
    return scored


READ_UNITS = 8  # the reader reads up to this many units, the best by score_sentences: READ_FIRST in one batched
READ_FIRST = 4  # call, the rest in a second one only when none of the first is CLEAR and one of the rest could
CLEAR = 0.9  # still be cited (second_read_can_matter)
SPAN_SHARE = 0.7  # an answer span is kept when it is at most this share of its unit (else the unit is the answer)


def read_units(question: str, scored: list[tuple[float, _Candidate]], reader: Reader
               ) -> tuple[list[tuple[float, _Candidate]], dict[int, tuple[int, int]], list[_Candidate]]:
    """The best READ_UNITS units re-scored with the reader, best first: reader.weight x its probability that the unit
    answers + the rest x the unit's score (both 0-1; the weight is fitted with the threshold, bench/fit_reader.py;
    a long unit is read in windows, Reader.read); and the span
    the reader found in each (file offsets, by id of the candidate); and the units of the best READ_UNITS left unread
    (second_read_can_matter)."""
    top = [cand for _, cand in scored[:READ_UNITS]]
    texts = [encoder_prefix(c.hit.chunk) + c.text for c in top]
    readings = reader.read(question, texts[:READ_FIRST])
    w = reader.weight
    first = [_blend(w, r, score) for r, (score, _) in zip(readings, scored)]
    if len(texts) > READ_FIRST and max(r.probability for r in readings) < CLEAR and \
            second_read_can_matter(first, [s for s, _ in scored[READ_FIRST:READ_UNITS]], w):
        readings += reader.read(question, texts[READ_FIRST:])
    rescored = sorted(((_blend(w, r, score), c) for r, (score, c) in zip(readings, scored)), key=lambda pair: -pair[0])
    return rescored, _spans(top, readings), top[len(readings):]


def _spans(units: list[_Candidate], readings: list[Reading]) -> dict[int, tuple[int, int]]:
    """The answer span the reader found in each unit (file offsets, by id of the candidate), where one stands out
    inside the unit's own text (not its title and section in front) and is not most of it."""
    spans = {}
    for cand, r in zip(units, readings):
        prefix = len(encoder_prefix(cand.hit.chunk))
        if r.start >= prefix and r.end > r.start and r.end - r.start <= SPAN_SHARE * len(cand.text):
            spans[id(cand)] = (cand.start + r.start - prefix, cand.start + r.end - prefix)
    return spans


def _blend(weight: float, reading: Reading, score: float) -> float:
    """A read unit's answer score: weight x the reader's probability + the rest x its own score. (A unit too long
    for the reader's windows is blended all the same: kept at its own score, a long code example outranked every
    unit the reader had read, and was cited for questions the documents do not answer.)"""
    return weight * reading.probability + (1 - weight) * score


def second_read_can_matter(first: list[float], rest: list[float], weight: float) -> bool:
    """Whether reading the rest of the units could change the answer: one of them, read as well as can be
    (probability 1), would come within FOLLOW_MARGIN of the best first one (so it could be cited). Otherwise
    the answer is the same without that read, which is skipped."""
    best_possible = max(weight + (1 - weight) * s for s in rest)
    return best_possible >= max(first) - FOLLOW_MARGIN


def in_file_order_within_a_passage(chosen: list[tuple[float, _Candidate]]) -> list[tuple[float, _Candidate]]:
    """The chosen units, those of one passage together and in the order the file has them (a lead-in before the
    "For example:" after it); passages in the order of their best unit."""
    groups: dict[tuple[str, int], list[tuple[float, _Candidate]]] = {}
    for pair in chosen:
        groups.setdefault((pair[1].source, pair[1].hit.chunk.start), []).append(pair)
    return [pair for group in groups.values() for pair in sorted(group, key=lambda p: p[1].start)]


def compose_answer(question: str, hits: list[Hit], embedder: Embedder, store: VectorStore, min_score: float,
                   notice: str = "", query: str | None = None, reader: Reader | None = None,
                   vocabulary: Vocabulary | None = None) -> Answer:
    """The best 1-3 units, each followed by its [n] marker, or an abstention that cites nothing. With a reader the
    units are ranked by read_units' blend, which also decides abstention (min_score is then the reader's fitted
    threshold) and gives the answer spans; without one, score_sentences' score does. A question about an identifier
    the documents never mention (unmentioned.py; vocabulary: the index's terms) is refused, saying so, with
    confidence 0; other names they never mention (the asker's setting, a capitalised word) are named in a notice
    above an answer, or in the abstention."""
    names = unmentioned_names(question, vocabulary)
    setting = setting_names(question) if names else set()
    subject = tuple(sorted((n for n in names if n not in setting), key=lambda n: not identifier_like(n)))
    # (what the question is about, unlike "on macOS"; identifiers first, as the refusal names them)
    refused = f"{NOT_FOUND[:-1]}: they never mention {quoted(subject)}." if subject else NOT_FOUND
    if any(identifier_like(n) for n in subject):
        return Answer(question=question, answer=refused, abstained=True, citations=(), notice=notice, confidence=0.0)
    scored = score_sentences(question, hits, embedder, store, query)
    every = [c for _, c in scored]
    spans: dict[int, tuple[int, int]] = {}
    unread: list[_Candidate] = []
    if reader is not None and scored:
        scored, spans, unread = read_units(question, scored, reader)
    if not scored or scored[0][0] < min_score:
        return Answer(question=question, answer=refused, abstained=True, citations=(), notice=notice,
                      confidence=max(0.0, scored[0][0]) if scored else 0.0)  # below 0: every unit off the subject
    if names:  # answered from the rest of the question ("on Ubuntu", "my FastAPI app"), saying so
        notice = " ".join(filter(None, [notice, f"The documents never mention {quoted(names)}; this is what they "
                                                "say about the rest of the question."]))
    best = scored[0][0]
    chosen: list[tuple[float, _Candidate]] = []
    for score, cand in scored:
        if len(chosen) == MAX_SENTENCES or score < max(min_score, best - FOLLOW_MARGIN):
            break
        if any(_same_words(c.text, cand.text) for _, c in chosen):
            continue  # the same sentence in another file (a copy) says nothing new
        if chosen and sum(len(c.text) - _code_chars(c.text) for _, c in chosen) + len(cand.text) - \
                _code_chars(cand.text) > MAX_CITED_CHARS:
            continue
        overlap = [i for i, (_, c) in enumerate(chosen)
                   if c.source == cand.source and c.start < cand.end and cand.start < c.end]
        if not overlap:
            chosen.append((score, cand))
        elif len(overlap) == 1 and cand.start <= chosen[overlap[0]][1].start and chosen[overlap[0]][1].end <= cand.end:
            chosen[overlap[0]] = (chosen[overlap[0]][0], cand)  # a sentence and its pair both made the cut: cite the pair
    example = _example_after(chosen[0][1], every) if chosen else None
    earlier = _example_before(chosen[0][1], every) if chosen and example is None and \
        _HOW_TO.match(question.lower()) else None  # a how-to question: the code above the sentence shows how
    example = example or earlier
    if example is not None and any(example is c for c in unread):  # its span, which the skipped read would have found
        spans.update(_spans([example], reader.read(question, [encoder_prefix(example.hit.chunk) + example.text])))
    if example is not None and not any(c.source == example.source and c.start < example.end and example.start < c.end
                                       for _, c in chosen):
        chosen.insert(0 if earlier else 1, (chosen[0][0], example))  # in the order of the file
        del chosen[MAX_SENTENCES:]
    chosen = in_file_order_within_a_passage(chosen)
    citations = tuple(
        Citation(n=n, source=c.source, start=c.start, end=c.end, line=c.line, text=c.text,
                 passage=c.hit.chunk.text, passage_start=c.hit.chunk.start, score=score,
                 page=c.hit.chunk.page + c.hit.chunk.text.count("\f", 0, c.start - c.hit.chunk.start)
                 if c.hit.chunk.page else 0, section=c.hit.chunk.section,
                 answer_start=spans.get(id(c), (-1, -1))[0], answer_end=spans.get(id(c), (-1, -1))[1])
        for n, (score, c) in enumerate(chosen, start=1))
    parts = [_with_marker(shown_text(c.text), c.n) for c in citations]
    text = "".join(p if i == 0 else ("\n\n" if "\n" in p or "\n" in parts[i - 1] else " ") + p
                   for i, p in enumerate(parts))
    return Answer(question=question, answer=text, abstained=False, citations=citations, notice=notice,
                  confidence=best)
