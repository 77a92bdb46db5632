"""Domain exceptions. Each carries one line a user can act on; the CLI and web turn them into messages.

The command line prints the whole line (it names folders and the command that fixes things); web clients get
`public`, which names no file-system path: the operator finds the whole line in the server log."""

import logging

SEE_LOG = "the server's log says what to do."


class QAError(Exception):
    """Base of every error the assistant reports to its user."""
    public_message = ""  # what a web client is told, when the message names server paths

    @property
    def public(self) -> str:
        return self.public_message or str(self)


def told(e: QAError) -> str:
    """What a web client is told of e; when that hides the whole message, the server log gets it."""
    if e.public != str(e):
        logging.getLogger("qa.server").warning("%s", e)
    return e.public


def openai_error(message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict:
    """An error in OpenAI's shape, which its clients show to the user (the /v1 routes answer with it)."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class EmptyCorpus(QAError):
    """The data folder holds no readable text."""
    public_message = "There are no documents to answer from yet; " + SEE_LOG


class IndexMissing(QAError):
    """No index has been built at the given folder."""
    public_message = "The documents are not indexed yet; " + SEE_LOG


class IndexMismatch(QAError):
    """The index was built with other settings (model, dimension, format) than this run uses."""
    public_message = "The document index does not match this server's settings; " + SEE_LOG


class IndexCorrupt(QAError):
    """The index files disagree with their manifest or cannot be read."""
    public_message = "The document index cannot be read; " + SEE_LOG


class IndexUnwritable(QAError):
    """The index folder cannot be written: read-only, or its disk is full. The live build stays as it was."""
    public_message = "The document index cannot be updated; " + SEE_LOG


class IndexBusy(QAError):
    """Another build holds the index folder's lock."""
    public_message = "Another index build is running; wait for it to finish, then retry."


class BadQuestion(QAError):
    """The question is empty or otherwise unusable."""


class ModelUnavailable(QAError):
    """The embedding model cannot be loaded."""
    public_message = "The embedding model cannot be loaded; " + SEE_LOG


class ServerUnavailable(QAError):
    """The web server cannot listen where it was told to (a busy port, an unknown address)."""
    public_message = "The server cannot start; " + SEE_LOG


class NotReady(QAError):
    """The assistant is still starting (building or loading the index) and did not become ready in time."""


class Busy(QAError):
    """Every answering slot is taken and the wait for one ran out (the HTTP API answers 429: retry)."""
    public_message = "The assistant is busy; please retry in a moment."
