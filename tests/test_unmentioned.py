"""A question naming what the documents never mention is refused, saying what; a misspelt name is not."""
from qa.answering import NOT_FOUND
from qa.lexical import tokenize
from qa.unmentioned import (Vocabulary, identifier_like, name_like_words, one_edit_apart, quoted, setting_names,
                            unmentioned_names)


def test_names_are_the_words_written_as_names_or_identifiers():
    assert name_like_words("How do I authenticate with NTLM or Kerberos using httpx?") == ["NTLM", "Kerberos"]
    assert name_like_words("What should a Dockerfile look like?") == ["Dockerfile"]
    assert name_like_words("Where is sshd_config read from, and what does TLS1.3 need?") == ["sshd_config", "TLS1.3"]
    assert name_like_words("What is the boiling point of mercury?") == []  # the first word is capitalised as usual
    assert name_like_words("OAuth with a client?") == ["OAuth"]  # a capital past the first letter: a name
    assert name_like_words('"Who directs the Secretariat?"') == ["Secretariat"]  # a quote before its first word
    for question in ["Q: When was it founded?", "Thanks. Who directs it?", "I lost a file. How do I restore it?",
                     "(How often does it run?)", "1. Where is it based?", "HOW DO I RESTORE A FILE?",
                     "How Do I Restore A File?", "What's new in v2?"]:
        assert name_like_words(question) == [], question  # sentence starts, capitals, title case, short versions


def test_one_edit_apart():
    assert one_edit_apart("leage", "league") and one_edit_apart("braodcast", "broadcast")
    assert one_edit_apart("primier", "premier") and one_edit_apart("cors", "cors")
    assert not one_edit_apart("kerberos", "cerberus") and not one_edit_apart("ntlm", "html")


def test_unmentioned_names_are_looked_up_as_terms_accents_folded_and_misspellings_forgiven():
    vocabulary = Vocabulary(set(tokenize(["Hervé served the Premier League with httpx.Client and Kubernetes"])[0]))
    assert unmentioned_names("Does httpx.Client support NTLM or Kerberos?", vocabulary) == ("NTLM", "Kerberos")
    assert unmentioned_names("When did Herve serve?", vocabulary) == ()  # accents folded
    assert unmentioned_names("Who won the Primier Leage?", vocabulary) == ()  # one edit from a known word
    assert unmentioned_names("Is JWT like JIT?", Vocabulary({"jit"})) == ("JWT",)  # too short to be a misspelling
    assert unmentioned_names("Is OAuth auth?", Vocabulary({"auth"})) == ("OAuth",)
    assert unmentioned_names("Is it in the Straße?", Vocabulary(set(tokenize(["Strasse"])[0]))) == ()  # case folded
    made_up = " ".join(f"Zq{i}xv" for i in range(300))  # many names: 12 are looked up, 3 named
    assert unmentioned_names(f"Does {made_up} work?", Vocabulary({"work"})) == tuple(f"Zq{i}xv" for i in range(12))
    assert quoted(unmentioned_names(f"Does {made_up} work?", Vocabulary({"work"}))).count("\u201c") == 3
    assert unmentioned_names("Who uses NTLM?", None) == ()
    assert quoted(("NTLM", "Kerberos", "JWT")) == "\u201cNTLM\u201d, \u201cKerberos\u201d or \u201cJWT\u201d"
    assert [identifier_like(n) for n in ("NTLM", "OAuth", "sshd_config", "TLS1.3", "Ubuntu")] == [True] * 4 + [False]


def test_names_of_the_askers_setting_are_told_from_the_subject():
    assert setting_names("I'm on macOS with an M1 MacBook - how do I install it?") == {"macOS", "MacBook"}
    assert setting_names("Our team uses IntelliJ IDEA; how do I debug?") == {"IntelliJ", "IDEA"}
    assert setting_names("How can I test my FastAPI app?") == {"FastAPI"}  # a possessive
    assert setting_names("How do I authenticate with NTLM against our Windows IIS server?") == {"Windows", "IIS"}
    assert setting_names("We are behind an AWS load balancer (ALB). How do I see the client IP?") >= {"AWS", "ALB"}
    for question in ["How do I use JWT tokens?", "Does Ubuntu or Debian or Fedora support NTLM?",
                     'How do I add "Sign in with Google" (OAuth) to a Flask app?']:
        assert setting_names(question) == set(), question


def test_a_question_naming_what_the_documents_never_mention_is_refused_saying_so(assistant):
    answer = assistant.ask("How does the OSCE sign in with OAuth tokens?")
    assert answer.abstained and answer.citations == () and answer.confidence == 0.0
    assert answer.answer == NOT_FOUND[:-1] + ": they never mention \u201cOAuth\u201d."
    # a capitalised word the documents never use may be the asker's setting: answered from the rest, with a notice
    answer = assistant.ask("I live in Ohio. How does the OSCE work with police forces?")
    assert not answer.abstained and "police forces" in answer.answer
    assert answer.notice == "The documents never mention \u201cOhio\u201d; this is what they say about the rest of " \
                            "the question."
    # an identifier of the asker's setting is named in a notice too; the subject's identifiers are named first
    answer = assistant.ask("Using my iPad, how does the OSCE work with police forces?")
    assert not answer.abstained and "police forces" in answer.answer and "\u201ciPad\u201d" in answer.notice
    answer = assistant.ask("Does Ubuntu or Debian or Fedora support NTLM?")
    assert answer.abstained and answer.answer.startswith(NOT_FOUND[:-1] + ": they never mention \u201cNTLM\u201d, ")
    # a misspelt name is not taken for a new one
    assert unmentioned_names("Who directs the Secretariatt in Viena?", assistant.vocabulary(assistant.index)) == ()


def test_the_check_can_be_turned_off(assistant, default_index, embedder):  # assistant: the index is built
    from qa.assistant import Assistant
    from qa.config import build_config

    from conftest import DEFAULT_DATA

    off = Assistant(build_config({"QA_CHECK_NAMES": "0"}, data_dir=DEFAULT_DATA, index_dir=default_index))
    off.embedder = embedder
    assert off.vocabulary(off.index) is None
    answer = off.ask("What is the capital of Australia?")  # the documents never name it: the scores refuse it
    assert answer.abstained and answer.answer == NOT_FOUND
