"""Names in a question that the documents never mention: "How do I authenticate with NTLM?" over docs that
never say "NTLM" is not answered by them, however much else of the question they share.

A name is a word of the question written as names and identifiers are: capitalised where a sentence does not
start ("NTLM", "Kerberos", "OAuth"), or holding a digit, "_", "." or "/" and at least three letters ("sshd_config",
"TLS1.3"). A question in capitals or in title case marks no word by its capitals, and question words ("How",
"Which") never are names. A name is unmentioned when none of its BM25 terms is in the index's vocabulary, with
case and accents folded, and it is not one edit away from a term that is (a misspelt name, "Primier League", is the
documents' name misspelt, not a new one; both words of five letters or more). Vocabulary holds the lookups;
unmentioned_names is the check. An identifier (identifier_like: "NTLM", "OAuth", "sshd_config") is what a question
is about, unless it stands where the asker's setting does (setting_names: "I'm on macOS", "my FastAPI app"); a word
that is only capitalised may be either ("on Ubuntu"). answering.py refuses on an unmentioned identifier of the
subject and names the others in a notice.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection

from .lexical import tokenize

_WORD = re.compile(r"\w[\w./-]*\w|\w")
TYPO_MIN_CHARS = 5  # a word one edit from a known one is its misspelling when both have this many letters
# (shorter: a different word, "JWT" / "JIT", "OAuth" / "auth")
MAX_NAMES = 12  # name-like words looked up per question (a question of made-up words costs no more)
MAX_QUOTED = 3  # an answer names at most these
_SETTING_CUES = frozenset("on behind under".split())  # "... on macOS?", "... behind Cloudflare?"
_ASKING = frozenset("""what how why where when who whom which whose can could should would do does did is are will
may""".split())  # the words a question opens with
_POSSESSIVES = frozenset("my our your their".split())  # "my FastAPI app"
_BETWEEN = frozenset("a an the this that".split())
NEVER_NAMES = _ASKING | frozenset("""shall might must was were am has have had please thanks thank hi hello hey ok
okay yes no and or but if then so i""".split())  # capitalised as sentences start, never names


def folded(text: str) -> str:
    """The text in lower case without accents: "Hervé" -> "herve", "Straße" -> "strasse"."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def _starts_a_sentence(question: str, at: int) -> bool:
    """Does the word at `at` open the question or a sentence of it ("Thanks. How ...", "1. How", "Q: When")?"""
    i = at - 1
    while i >= 0 and not question[i].isalpha() and question[i] not in ".!?:;\n":
        i -= 1
    return i < 0 or question[i] in ".!?:;\n"


def name_like_words(question: str) -> list[str]:
    """The words of the question written as names or identifiers are (see the module's docstring)."""
    words = list(_WORD.finditer(question))
    lettered = [m.group() for m in words if sum(c.isalpha() for c in m.group()) >= 3]
    title_case = len(lettered) >= 3 and all(w[0].isupper() for w in lettered)
    by_capitals = not title_case and any(c.islower() for c in question)  # not "HOW DO I ...", "How Do I ..."
    out = []
    for m in words:
        word = m.group()
        letters = sum(c.isalpha() for c in word)
        if letters < 2 or word.casefold() in NEVER_NAMES:
            continue
        marked = letters >= 3 and any(c.isdigit() or c in "_./" for c in word)
        capitalised = by_capitals and (any(c.isupper() for c in word[1:]) or (
            word[0].isupper() and not _starts_a_sentence(question, m.start())))
        if marked or capitalised:
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
    """An index's BM25 terms (a dict or set, looked up as it is); folded and indexed for near misses on first need
    (a question with a name the terms do not hold as written)."""

    def __init__(self, terms: Collection[str]):
        self.terms = terms
        self._folded: set[str] | None = None
        # (length, first or last letter) -> folded terms: two words one edit apart (5+ letters) share one of them
        self._ends: dict[tuple[int, str, str], list[str]] | None = None

    def unknown(self, words: list[str]) -> list[str]:
        """The words none of whose BM25 terms is in the vocabulary, as written or folded, nor one edit from one."""
        out = []
        for word, terms in zip(words, tokenize(words)):
            if not terms or any(t in self.terms for t in terms):
                continue
            forms = {folded(t) for t in terms} | {folded(word)}
            if forms & self._folded_terms() or any(self._near(f) for f in forms if len(f) >= TYPO_MIN_CHARS):
                continue
            out.append(word)
        return out

    def _folded_terms(self) -> set[str]:
        if self._folded is None:
            self._folded = {folded(t) for t in self.terms}
        return self._folded

    def _near(self, form: str) -> bool:
        if self._ends is None:
            ends: dict[tuple[int, str, str], list[str]] = {}
            for t in self._folded_terms():
                if len(t) >= TYPO_MIN_CHARS:
                    ends.setdefault((len(t), "first", t[0]), []).append(t)
                    ends.setdefault((len(t), "last", t[-1]), []).append(t)
            self._ends = ends
        return any(one_edit_apart(form, t) for n in (len(form) - 1, len(form), len(form) + 1)
                   for key in ((n, "first", form[0]), (n, "last", form[-1])) for t in self._ends.get(key, ()))


def unmentioned_names(question: str, vocabulary: Vocabulary | None) -> tuple[str, ...]:
    """The question's names (of its first MAX_NAMES) that the documents never mention, in the question's order, each
    once ((): none, or no vocabulary to look in)."""
    if vocabulary is None:
        return ()
    words = list(dict.fromkeys(name_like_words(question)))[:MAX_NAMES]
    return tuple(vocabulary.unknown(words)) if words else ()


def setting_names(question: str) -> set[str]:
    """The names that stand where the asker's setting does, not the subject: in what comes before the question
    itself ("I'm on macOS with an M1 MacBook - how do I ...", "Our team uses IntelliJ; how ..."); after "on",
    "behind" or "under", or a possessive ("how do I test my FastAPI app"), other names and articles between; and an
    abbreviation in brackets of the words before it ("AWS load balancer (ALB)")."""
    words = [(m.group(), m.start()) for m in _WORD.finditer(question)]
    names = set(name_like_words(question))
    asked = next((i for i, (w, at) in enumerate(words) if w.casefold() in _ASKING and _opens_a_clause(question, at)),
                 0)
    out = {w for w, _ in words[:asked] if w in names}
    for i, (word, at) in enumerate(words[asked:], start=asked):
        if word not in names:
            continue
        j = i - 1
        while j >= 0 and (words[j][0] in names or words[j][0].casefold() in _BETWEEN):
            j -= 1
        before = words[j][0].casefold() if j >= 0 else ""
        initials = "".join(w[0] for w, _ in words[max(0, i - len(word)):i]).casefold()
        glossed = word.isupper() and question[at - 1:at] == "(" and initials == word.casefold()
        if before in _SETTING_CUES or before in _POSSESSIVES or glossed:
            out.add(word)
    return out


def _opens_a_clause(question: str, at: int) -> bool:
    i = at - 1
    while i >= 0 and question[i] in " \t\"'(":
        i -= 1
    return i < 0 or question[i] in ".!?;:,\n\u2014\u2013-"


def identifier_like(name: str) -> bool:
    """A capital past the first letter, or a digit, "_", "." or "/": "NTLM", "OAuth", "sshd_config" (not "Ubuntu")."""
    return any(c.isupper() for c in name[1:]) or any(c.isdigit() or c in "_./" for c in name)


def quoted(names: tuple[str, ...]) -> str:
    """ "“NTLM” or “Kerberos”", "“a”, “b” or “c”" (the first MAX_QUOTED) """
    marked = [f"\u201c{n}\u201d" for n in names[:MAX_QUOTED]]
    return " or ".join([", ".join(marked[:-1]), marked[-1]]) if len(marked) > 1 else marked[0]
