"""Answers over the default corpus: the right sentence cited at its exact offsets, or a plain abstention."""
import pytest

from qa.answering import NOT_FOUND
from qa.errors import BadQuestion

from conftest import DEFAULT_FILE

SOURCE_TEXT = DEFAULT_FILE.read_bytes().decode("utf-8-sig")

ANSWERABLE = [
    ("Who directs the Secretariat?", "Under the direction of the Secretary General"),
    ("In which city is the Secretariat based?", "Based in Vienna"),
    ("Where is the OSCE Documentation Centre?", "Documentation Centre in Prague"),
    ("When was the Conflict Prevention Centre created?", "Created in 1990"),
    ("When did the OSCE commit to border security?", "In 2005, the OSCE committed itself"),
    ("What does the OSCE do about trafficking in human beings?", "Trafficking in human beings concerns"),
    ("How does the OSCE work with police forces?", "worked with police forces"),
]
UNANSWERABLE = ["What is the boiling point of mercury?", "Who won the football world cup in 2018?",
                "How do I bake sourdough bread?", "What is the capital of Australia?"]


@pytest.mark.parametrize("question,expected", ANSWERABLE)
def test_the_right_sentence_is_cited(assistant, question, expected):
    answer = assistant.ask(question)
    assert not answer.abstained
    assert expected in answer.citations[0].text
    assert "[1]" in answer.answer
    for c in answer.citations:
        assert c.source == "osce_overview.txt"
        assert SOURCE_TEXT[c.start:c.end] == c.text
        assert c.text in c.passage and c.passage_start <= c.start
        assert c.text.rstrip(".") in answer.answer


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_unrelated_questions_abstain(assistant, question):
    answer = assistant.ask(question)
    assert answer.abstained and answer.citations == ()
    # "... Australia?": the documents never name Australia, and the answer says so
    assert answer.answer == (NOT_FOUND if "Australia" not in question else
                             NOT_FOUND[:-1] + ": they never mention \u201cAustralia\u201d.")


def test_search_hits_are_exact_slices(assistant):
    hits = assistant.search("counter-terrorism", k=3)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score >= hits[1].score >= hits[2].score
    for h in hits:
        assert SOURCE_TEXT[h.chunk.start:h.chunk.end] == h.chunk.text


@pytest.mark.parametrize("question", ["", "   \n\t ", "\x00\x01"])
def test_an_empty_question_is_refused_without_searching(assistant, question):
    with pytest.raises(BadQuestion, match="Please type a question"):
        assistant.ask(question)


def test_a_long_question_is_trimmed_with_a_notice(assistant):
    answer = assistant.ask("Who directs the Secretariat? " + "x " * 3000)
    assert len(answer.question) == 2000
    assert "trimmed" in answer.notice
    assert answer.to_json()["notice"] == answer.notice


def test_a_bad_k_is_refused(assistant):
    for k in (0, -1, 10_000):
        with pytest.raises(BadQuestion, match="k must be between"):
            assistant.search("Vienna", k)


def test_ask_refuses_a_bad_k(assistant):
    with pytest.raises(BadQuestion, match="k must be between"):
        assistant.ask("Vienna", k=0)


def test_a_follow_up_reads_the_previous_question(assistant):
    assert assistant.ask("What does it do?").abstained  # alone, "it" is nothing
    follow = assistant.ask("What does it do?", history=["When was the Conflict Prevention Centre created?"])
    assert not follow.abstained and "Conflict Prevention Centre" in follow.answer
    follow = assistant.ask("Where is it based?", history=[{"role": "user", "content": "Who directs the Secretariat?"},
                                                          {"role": "assistant", "content": "Under the direction..."}])
    assert "Based in Vienna" in follow.citations[0].text


def test_sentences_without_a_full_stop_still_read_apart():
    from qa.answering import _with_marker

    assert _with_marker("Mandate and tasks", 1) == "Mandate and tasks [1]."
    assert _with_marker("Its tasks are:", 2) == "Its tasks are [2]."
    assert _with_marker("It is based in Vienna.", 3) == "It is based in Vienna [3]."
    assert _with_marker("Is it?", 4) == "Is it [4]?"


def test_a_sentence_leans_on_the_one_before_by_pronoun_or_by_name():
    from qa.answering import leans_on_previous

    before = "The Organization's main methods include the Conflict Prevention Centre."
    assert leans_on_previous("It also assists the Forum.", before)
    assert leans_on_previous("Created in 1990, the Centre now provides policy advice.", before)
    assert not leans_on_previous("Created in 1990, the Forum now provides policy advice.", before)
    assert not leans_on_previous("Borders are the first lines of a country's defence.", before)


def test_units_of_one_passage_are_cited_in_the_order_of_the_file():
    import numpy as np

    from qa.answering import _Candidate, in_file_order_within_a_passage
    from qa.records import Chunk, Hit

    text = "Proxy credentials go in the URL. For example:\n\n    with Client(proxy=url): ...\n\nOther text."
    proxies = Hit(rank=1, score=0.9, chunk=Chunk(id="p", source="proxies.md", start=100, end=100 + len(text),
                                                 line=1, text=text))
    other = Hit(rank=2, score=0.8, chunk=Chunk(id="o", source="other.md", start=0, end=10, line=1, text="Other one."))

    def unit(hit, start, end):
        return _Candidate(hit.chunk.source, start, end, 1, "x", hit, np.zeros(2))

    example, lead_in, elsewhere = unit(proxies, 133, 175), unit(proxies, 100, 132), unit(other, 0, 10)
    ordered = in_file_order_within_a_passage([(0.9, example), (0.8, elsewhere), (0.7, lead_in)])
    assert [c for _, c in ordered] == [lead_in, example, elsewhere]  # one passage's units together, in file order
    assert [s for s, _ in ordered] == [0.7, 0.9, 0.8]
