"""Lexical retrieval: BM25 (bm25s, Lucene variant) over the chunks' text, with English stopwords
removed and Snowball stems, saved beside the vectors as bm25/ plus the store ids it covers. Words written
with a bracketed mnemonic letter, as command cheat sheets do ("E[x]tract", "[c]reate"), count as the plain
word (plain_words), to BM25 here and to the model's tokenizer (reading_plain_words)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .errors import IndexCorrupt

BM25_DIR = "bm25"
IDS_FILE = "ids.npy"
TOKENIZER = "bm25s-en-snowball-v2"  # recorded in the manifest: a change means a rebuild (v2: plain_words)
# One or two letters in brackets inside a word or at its start, before lower-case letters: a mnemonic
# ("E[x]tract", "g[z]ipped", "[f]ile"), never a link ("[x](url)"), a task box ("[x] done"), a footnote ("[1]")
# or an index in code ("row[i]": nothing follows it; "Lis[t]" stays as it is for the same reason).
_MNEMONIC = re.compile(r"(?<=[A-Za-z])\[([A-Za-z]{1,2})\](?=[a-z])|(?<![\w\]])\[([A-Za-z]{1,2})\](?=[a-z])")


def plain_words(text: str) -> str:
    """The text with mnemonic brackets inside words dropped: "E[x]tract a [f]ile" -> "Extract a file"."""
    return _MNEMONIC.sub(lambda m: m.group(1) or m.group(2), text) if "[" in text else text


# Mnemonics for the model's tokenizer, after its own normalizer (for the packaged model: lower-casing and accent
# stripping, so "[A]PI" and "é[a]b" count here though plain_words keeps them): the brackets are deleted, so every
# other character keeps its offset ("[f]ile" reads as "file", its word piece starting at the "f").
_BEFORE = r"(?:[a-z]|[^\w\]])"  # before the "[": a letter, or neither a word character nor "]"
_MNEMONIC_BRACKETS = (rf"(?:(?<={_BEFORE})|^)\[(?=[a-z]{{1,2}}\][a-z])"
                      rf"|(?:(?<={_BEFORE}\[[a-z])|(?<=^\[[a-z])|(?<={_BEFORE}\[[a-z]{{2}})|(?<=^\[[a-z]{{2}}))"
                      rf"\](?=[a-z])")


def reading_plain_words(tokenizer):
    """The model's tokenizer (tokenizers.Tokenizer), changed to read mnemonic words as plain words, much as
    plain_words writes them, so that the encoder and the reader see "extract a file" in "E[x]tract a [f]ile";
    offsets stay into the text given."""
    from tokenizers import Regex, normalizers

    steps = [tokenizer.normalizer] if tokenizer.normalizer is not None else []
    tokenizer.normalizer = normalizers.Sequence(steps + [normalizers.Replace(Regex(_MNEMONIC_BRACKETS), "")])
    return tokenizer


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: list[str], stemmer=None) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize([plain_words(t) for t in texts], stopwords="en", stemmer=stemmer or _stemmer(),
                          return_ids=False, show_progress=False)


class Bm25Index:
    """BM25 scores of a query against every chunk; ids[i] is the store id of the i-th scored chunk."""

    def __init__(self, model, ids: np.ndarray):
        self.model = model
        self.ids = ids
        self.stemmer = _stemmer()
        self.position = {int(v): p for p, v in enumerate(ids)}  # store id -> row of scores()

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, texts: list[str], ids: list[int], known: dict[str, list[str]] | None = None) -> "Bm25Index":
        """known: the tokens of some of the texts (by text), worked out before (while a build embedded them)."""
        import bm25s

        known = known or {}
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        found = {**known, **dict(zip(missing, tokenize(missing)))} if missing else known
        model = bm25s.BM25()
        # an empty token list would be dropped by bm25s and shift every later row: give it a placeholder
        model.index([found[t] or ["\0"] for t in texts], show_progress=False)
        return cls(model, np.asarray(ids, dtype=np.int64))

    def terms(self) -> dict[str, int]:
        """Every term the index holds (stemmed, as tokenize gives them), with its column."""
        return self.model.vocab_dict

    def scores(self, query: str) -> np.ndarray:
        """One BM25 score per chunk, in the order of self.ids (all zero when no query term is known)."""
        vocab = self.model.vocab_dict
        tokens = [t for t in tokenize([query], self.stemmer)[0] if t in vocab]
        if not tokens:
            return np.zeros(len(self.ids), dtype=np.float32)
        return self.model.get_scores(tokens)

    def top(self, query: str, depth: int):
        """(the store ids of the `depth` best chunks with a positive score, a lookup: store id -> score)."""
        scores = self.scores(query)
        if not len(scores):
            return [], lambda i: 0.0
        best = np.argpartition(-scores, min(depth, len(scores) - 1))[:depth]
        position = self.position
        return ([int(self.ids[i]) for i in best if scores[i] > 0],
                lambda i: float(scores[position[i]]) if i in position else 0.0)

    def save(self, folder: Path) -> None:
        self.model.save(str(folder / BM25_DIR))
        np.save(folder / BM25_DIR / IDS_FILE, self.ids)

    @classmethod
    def load(cls, folder: Path) -> "Bm25Index":
        import bm25s

        try:
            model = bm25s.BM25.load(str(folder / BM25_DIR), mmap=False)
            ids = np.load(folder / BM25_DIR / IDS_FILE, allow_pickle=False)
        except (OSError, ValueError, KeyError, EOFError) as e:
            raise IndexCorrupt(f"cannot read the BM25 index in {folder}: {str(e).splitlines()[0][:200]}") from None
        index = cls(model, ids)
        if model.scores["num_docs"] != len(ids):
            raise IndexCorrupt(f"the BM25 index in {folder} covers {model.scores['num_docs']} chunks "
                               f"but lists {len(ids)}")
        return index
