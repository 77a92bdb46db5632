"""Names in a question that the documents never mention: "How do I authenticate with NTLM?" over docs that
never say "NTLM" is not answered by them, however much else of the question they share.

A name is a word of the question written as names and identifiers are (a capital letter past the start of the
question: "NTLM", "Kerberos", "OAuth"; or a digit, "_", "." or "/": "sshd_config", "TLS1.3"). It is unmentioned
when none of its BM25 terms is in the index's vocabulary, with accents folded, and it is not one edit away from a
word that is (a misspelt name, "Primier League", is the documents' name misspelt, not a new one). Vocabulary holds
the lookups; unmentioned_names is the check.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection

from .lexical import tokenize

_WORD = re.compile(r"\w[\w./-]*\w|\w")
TYPO_MIN_CHARS = 5  # a shorter word one edit away from a known one is a different word ("JWT" / "JIT")


def folded(text: str) -> str:
    """The text without accents: "Hervé" -> "Herve"."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def name_like_words(question: str) -> list[str]:
    """The words of the question written as names or identifiers are (see the module's docstring)."""
    first = len(question) - len(question.lstrip())
    out = []
    for m in _WORD.finditer(question):
        word = m.group()
        if len(word) < 2 or not any(c.isalpha() for c in word):
            continue
        marked = any(c.isupper() for c in word[1:]) or any(c.isdigit() or c in "_./" for c in word)
        if marked or (word[0].isupper() and m.start() != first):  # "What ..." is capitalised as sentences are
            out.append(word)
    return out


def one_edit_apart(a: str, b: str) -> bool:
    """Equal, or one insertion, deletion, substitution or swap of neighbours apart."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1:]


class Vocabulary:
    """An index's BM25 terms (a dict or set, looked up as it is); accents folded and a by-length lookup for near
    misses are built on first need (a question with a name the terms do not hold as written)."""

    def __init__(self, terms: Collection[str]):
        self.terms = terms
        self._folded: set[str] | None = None
        self._by_length: dict[int, list[str]] | None = None

    def knows(self, word: str) -> bool:
        """Is one of the word's BM25 terms in the vocabulary, accents folded, or a misspelling of one?"""
        terms = tokenize([word])[0]
        if not terms or any(t in self.terms for t in terms):
            return True
        if self._folded is None:
            self._folded = {folded(t) for t in self.terms}
        forms = {folded(t) for t in terms} | {folded(word.lower())}
        if forms & self._folded:
            return True
        return any(self._near(f) for f in forms if len(f) >= TYPO_MIN_CHARS)

    def _near(self, form: str) -> bool:
        if self._by_length is None:
            by_length: dict[int, list[str]] = {}
            for t in self._folded or ():
                by_length.setdefault(len(t), []).append(t)
            self._by_length = by_length
        return any(one_edit_apart(form, t) for n in (len(form) - 1, len(form), len(form) + 1)
                   for t in self._by_length.get(n, ()))


def unmentioned_names(question: str, vocabulary: Vocabulary | None) -> tuple[str, ...]:
    """The question's names that the documents never mention, in the question's order, each once ((): none, or
    no vocabulary to look in)."""
    if vocabulary is None:
        return ()
    return tuple(dict.fromkeys(w for w in name_like_words(question) if not vocabulary.knows(w)))


def never_mentioned(names: tuple[str, ...]) -> str:
    """ "they never mention “NTLM” or “Kerberos”" """
    quoted = [f"\u201c{n}\u201d" for n in names]
    return "they never mention " + (" or ".join([", ".join(quoted[:-1]), quoted[-1]]) if len(quoted) > 1
                                    else quoted[0])
