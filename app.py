"""The web app on the default corpus: python app.py (settings from QA_* variables, as in `python -m qa serve`)."""
import sys

from qa.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve"]))
