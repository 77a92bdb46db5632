"""qa: ask questions of your own documents, with answers that cite the exact sentences."""

__version__ = "0.1.0"
