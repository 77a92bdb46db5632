"""Sentence splitting and chunking against the model's real tokenizer."""
import pytest

from qa.chunking import chunk_document, chunk_with_tokens, encoder_input, load_tokenizer, sentence_spans
from qa.embedding import resolve_model_path
from qa.reading import read_file
from qa.records import Document

from conftest import DEFAULT_FILE


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_model_path("all-MiniLM-L6-v2"))


def sentences(text):
    return [text[s:e] for s, e in sentence_spans(text)]


def test_sentences_split_at_ends_and_lines_but_not_abbreviations():
    text = "Dr. Smith went to Vienna, e.g. by train. It rained!  Then J. Doe left?\nNew line here\n\n“Quoted.” Last"
    assert sentences(text) == ["Dr. Smith went to Vienna, e.g. by train.", "It rained!", "Then J. Doe left?",
                               "New line here", "“Quoted.”", "Last"]


def test_markdown_and_list_markers_are_not_part_of_sentences():
    text = "# The Title\n\nIntro text. More.\n- item one\n  2. second item. Next.\n> quoted\n#tag stays\nIt costs 5. Then."
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "The Title", "Intro text.", "More.", "item one", "second item.", "Next.", "quoted", "#tag stays",
        "It costs 5.", "Then."]


def test_sentence_offsets_are_shifted_and_trimmed():
    assert sentence_spans("  One. Two.  ", offset=10) == [(12, 16), (17, 21)]
    assert sentence_spans("   \n\n ") == []


def check_invariant(doc, chunks, tokenizer, max_tokens):
    assert chunks, "no chunks"
    for c in chunks:
        assert c.text == doc.text[c.start:c.end]
        assert c.source == doc.source
        assert c.line == doc.text.count("\n", 0, c.start) + 1
        assert len(tokenizer.encode(c.text, add_special_tokens=False).ids) <= max_tokens
    covered = [(c.start, c.end) for c in chunks]
    for s, e in sentence_spans(doc.text):  # every sentence's text is inside some chunk
        assert any(a <= s and e <= b for a, b in covered) or any(a <= s < b for a, b in covered)


@pytest.mark.parametrize("max_tokens,overlap", [(254, 40), (200, 40), (64, 16), (32, 0)])
def test_chunks_are_exact_slices_within_the_window(tokenizer, max_tokens, overlap):
    doc = read_file(DEFAULT_FILE, "osce_overview.txt", warn=pytest.fail)
    chunks = chunk_document(doc, tokenizer, max_tokens, overlap)
    check_invariant(doc, chunks, tokenizer, max_tokens)
    assert chunks[0].start == 0 and chunks[-1].end == len(doc.text.rstrip())


def test_overlap_repeats_trailing_sentences(tokenizer):
    doc = read_file(DEFAULT_FILE, "osce_overview.txt", warn=pytest.fail)
    chunks = chunk_document(doc, tokenizer, 120, 40)
    assert any(b.start < a.end for a, b in zip(chunks, chunks[1:]))
    assert all(b.start > a.start for a, b in zip(chunks, chunks[1:]))


def test_a_sentence_longer_than_the_window_is_cut_into_windows(tokenizer):
    text = "Intro sentence here.\n" + " ".join(f"word{i} αβγ" for i in range(3000)) + "\nTail."
    doc = Document(source="long.txt", text=text, sha256="x")
    chunks = chunk_document(doc, tokenizer, 254, 32)
    check_invariant(doc, chunks, tokenizer, 254)
    assert len(chunks) > 20
    assert chunks[-1].text.endswith("Tail.")


def test_ids_are_stable_and_distinct(tokenizer):
    doc = read_file(DEFAULT_FILE, "osce_overview.txt", warn=pytest.fail)
    first = chunk_document(doc, tokenizer, 128, 32)
    second = chunk_document(doc, tokenizer, 128, 32)
    assert [c.id for c in first] == [c.id for c in second]
    assert len({c.id for c in first}) == len(first)


def test_crlf_and_bom_keep_offsets_into_the_decoded_text(tokenizer, tmp_path):
    path = tmp_path / "win.txt"
    path.write_bytes("\ufeffFirst line.\r\nSecond line é.\r\n".encode("utf-8"))
    doc = read_file(path, "win.txt", warn=pytest.fail)
    assert doc.text == "First line.\r\nSecond line é.\r\n"
    chunks = chunk_document(doc, tokenizer, 254, 0)
    check_invariant(doc, chunks, tokenizer, 254)
    assert path.read_bytes().decode("utf-8-sig")[chunks[0].start:chunks[0].end] == chunks[0].text


def test_the_chunkers_word_pieces_are_those_of_each_chunks_text(tokenizer):
    """The embedder runs these pieces instead of tokenizing the chunk again, so they must be the same,
    list markers between sentences and windows of an overlong sentence included."""
    text = (read_file(DEFAULT_FILE, "osce_overview.txt", warn=pytest.fail).text[:6000]
            + "\nOxygen gas (O\n2) is toxic. Gas is O\n2. It burns.\n- item one.\n  2. second item. Next.\n"
            + " ".join(f"word{i} αβγ" for i in range(700)) + "\nTail.")
    doc = Document(source="mixed.txt", text=text, sha256="x")
    pairs = chunk_with_tokens(doc, tokenizer, 120, 30)
    assert [c for c, _ in pairs] == chunk_document(doc, tokenizer, 120, 30)
    assert len(pairs) > 10
    for chunk, tokens in pairs:  # the encoder input: the title and heading path, then the chunk's text
        enc = tokenizer.encode(encoder_input(chunk), add_special_tokens=False)
        assert encoder_input(chunk) == "mixed\n" + chunk.text
        assert tokens.ids.tolist() == enc.ids
        assert tokens.offsets.tolist() == [list(o) for o in enc.offsets]


def test_dotted_abbreviations_and_acronyms_at_a_full_stop():
    def split(text):
        return [text[s:e] for s, e in sentence_spans(text)]

    assert split("It uses a bundle of certificates (a.k.a. CA bundle) from a CA. Next one.") == [
        "It uses a bundle of certificates (a.k.a. CA bundle) from a CA.", "Next one."]
    assert split("Meet at 5 p.m. on the day. Meet at 5 p.m. Then go.") == [
        "Meet at 5 p.m. on the day.", "Meet at 5 p.m.", "Then go."]
    assert split("Built ca. 1900 here. See No. 5 there.") == ["Built ca. 1900 here.", "See No. 5 there."]
    assert split("ACME INC. reported gains. SEE FIG. 3 now.") == ["ACME INC. reported gains.", "SEE FIG. 3 now."]
