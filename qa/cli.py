"""The command line: python -m qa index | search | ask | serve. Errors become one stderr line and an exit code."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Iterator

from .config import ConfigError, build_config
from .errors import BadQuestion, EmptyCorpus, QAError

EXIT_ERROR = 1
EXIT_USAGE = 2


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _k(value: str) -> int:
    from .assistant import MAX_K

    if not value.lstrip("-").isdigit() or not 1 <= int(value) <= MAX_K:
        raise argparse.ArgumentTypeError(f"k must be a whole number from 1 to {MAX_K}, got {value!r}")
    return int(value)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m qa", description="Ask questions of your documents; answers cite "
                                "the exact sentences. Settings also come from QA_DATA, QA_INDEX, QA_MODEL, QA_HOST, "
                                "QA_PORT (flags win).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(cmd: argparse.ArgumentParser, data: bool = False) -> None:
        cmd.add_argument("--index", metavar="DIR", help="index folder (default: index/, or QA_INDEX)")
        cmd.add_argument("--model", metavar="NAME", help="embedding model: the packaged all-MiniLM-L6-v2 "
                         "(default) or a local model folder")
        if data:
            cmd.add_argument("--data", metavar="DIR", help="folder of .txt/.md files (default: data/, or QA_DATA)")

    c = sub.add_parser("index", help="build the index from the data folder",
                       description="Read every .txt/.md file under the data folder, chunk, embed, and write the index.")
    common(c, data=True)
    c.add_argument("--quiet", action="store_true", help="no progress bar")

    for name, what in (("search", "the passages closest to QUERY"), ("ask", "an answer to QUESTION with citations")):
        c = sub.add_parser(name, help=f"print {what}", description=f"Print {what}.")
        c.add_argument("text", nargs="?", metavar=name == "search" and "QUERY" or "QUESTION")
        c.add_argument("--json", action="store_true", help="print JSON")
        c.add_argument("--batch", metavar="FILE", help="one per line from FILE ('-' for stdin); prints JSON lines")
        c.add_argument("-k", type=_k, default=None, help="number of passages " +
                       ("(default 5, or QA_TOP_K)" if name == "search" else "read to answer (default 5, or QA_TOP_K)"))
        common(c)

    c = sub.add_parser("serve", help="run the web app (same as python app.py)",
                       description="Serve the chat page; builds the index first when there is none.")
    c.add_argument("--host", help="address to bind (default 127.0.0.1, or QA_HOST)")
    c.add_argument("--port", type=int, help="port (default 7860, or QA_PORT)")
    c.add_argument("--allowed-origins", metavar="LIST", help="comma-separated origins that may call the API "
                   "and embed the chat (default *, or QA_ALLOWED_ORIGINS)")
    common(c, data=True)
    return p


def _lines(path: str) -> Iterator[str]:
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")
    with stream:
        for line in stream:
            if line.strip():
                yield line.rstrip("\n")


def _print_search(query: str, hits, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"query": query, "hits": [h.to_json() for h in hits]}, ensure_ascii=False))
        return
    for h in hits:
        c = h.chunk
        print(f"{h.rank}. {h.score:.3f}  {c.source}  line {c.line}, characters {c.start}-{c.end}")
        print("   " + " ".join(c.text.split())[:300])


def _print_answer(answer, as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer.to_json(), ensure_ascii=False))
        return
    if answer.notice:
        print(f"({answer.notice})")
    print(answer.answer)
    for c in answer.citations:
        print(f"[{c.n}] {c.source}, line {c.line}, characters {c.start}-{c.end}")


def _run(args: argparse.Namespace) -> int:
    config = build_config(os.environ, data_dir=getattr(args, "data", None), index_dir=args.index,
                          model=args.model, host=getattr(args, "host", None), port=getattr(args, "port", None),
                          allowed_origins=getattr(args, "allowed_origins", None))
    from .assistant import Assistant

    assistant = Assistant(config)
    if args.command == "index":
        report = assistant.build(_warn, progress=not args.quiet)
        skipped = f", {report.skipped} skipped" if report.skipped else ""
        print(f"indexed {_plural(report.files, 'file')} into {_plural(report.chunks, 'chunk')}{skipped} "
              f"in {report.seconds:.1f} s "
              f"-> {config.index_dir}")
        return 0
    if args.command == "serve":
        from .embedding import set_threads
        from .server import bind, serve

        sock = bind(config.host, config.port)  # before the (possibly long) first build: a busy port fails fast
        assistant.warm_up(build_if_missing=True, warn=_warn, progress=True)
        set_threads(config.threads)
        print(f"serving {_plural(len(assistant.index.store), 'chunk')} at http://{config.host}:{config.port} "
              f"(API docs at /docs, widget at /widget.js)", file=sys.stderr)
        serve(assistant, config, sock)
        return 0

    if (args.text is None) == (args.batch is None):
        raise ConfigError(f"give either a {args.command} text or --batch FILE")
    from .embedding import set_threads

    set_threads(config.threads)
    k = getattr(args, "k", None)
    if args.batch is None:
        if args.command == "search":
            _print_search(args.text, assistant.search(args.text, k), args.json)
        else:
            _print_answer(assistant.ask(args.text, k=k), args.json)
        return 0
    failures = 0
    for text in _lines(args.batch):
        try:
            if args.command == "search":
                _print_search(text, assistant.search(text, k), True)
            else:
                _print_answer(assistant.ask(text, k=k), True)
        except BadQuestion as e:
            failures += 1
            print(json.dumps({"query" if args.command == "search" else "question": text, "error": str(e)},
                             ensure_ascii=False))
        sys.stdout.flush()
    return EXIT_ERROR if failures else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except EmptyCorpus as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except QAError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
