"""Domain exceptions. Each carries one line a user can act on; the CLI and web turn them into messages."""


class QAError(Exception):
    """Base of every error the assistant reports to its user."""


class EmptyCorpus(QAError):
    """The data folder holds no readable text."""


class IndexMissing(QAError):
    """No index has been built at the given folder."""


class IndexMismatch(QAError):
    """The index was built with other settings (model, dimension, format) than this run uses."""


class IndexCorrupt(QAError):
    """The index files disagree with their manifest or cannot be read."""


class IndexBusy(QAError):
    """Another build holds the index folder's lock."""


class BadQuestion(QAError):
    """The question is empty or otherwise unusable."""


class ModelUnavailable(QAError):
    """The embedding model cannot be loaded."""


class ServerUnavailable(QAError):
    """The web server cannot listen where it was told to (a busy port, an unknown address)."""


class NotReady(QAError):
    """The assistant is still starting (building or loading the index) and did not become ready in time."""
