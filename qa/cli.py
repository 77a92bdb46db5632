"""The command line: qa (or python -m qa) index | search | ask | serve | mcp | eval. Errors become one stderr line
and an exit code."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Iterator

from .config import BACKENDS, DEVICES, ENGINES, INDEX_TYPES, READERS, STORES, ConfigError, build_config
from .errors import BadQuestion, EmptyCorpus, IndexBusy, IndexUnwritable, QAError

EXIT_ERROR = 1
EXIT_USAGE = 2


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _k(value: str) -> int:
    from .assistant import MAX_K

    if not value.lstrip("-").isdigit() or not 1 <= int(value) <= MAX_K:
        raise argparse.ArgumentTypeError(f"k must be a whole number from 1 to {MAX_K}, got {value!r}")
    return int(value)


def _k_any(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return int(value)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    prog = "qa" if os.path.basename(sys.argv[0]) == "qa" else "python -m qa"  # as it was started
    p = argparse.ArgumentParser(prog=prog, description="Ask questions of your documents; answers cite "
                                "the exact sentences. Settings also come from QA_DATA, QA_INDEX, QA_MODEL, QA_HOST, "
                                "QA_PORT, QA_TOP_K, QA_MIN_SCORE, QA_ALLOWED_ORIGINS, QA_MAX_CONCURRENT, "
                                "QA_ADMIN_TOKEN, QA_ACCESS_TOKEN, QA_PUBLIC_WIDGET, QA_CACHE, QA_BACKEND, QA_DEVICE, QA_INDEX_TYPE, "
                                "QA_FLAT_LIMIT and QA_READER (flags win).")
    p.add_argument("--version", action="version", version=f"qa {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(cmd: argparse.ArgumentParser, data: bool = False) -> None:
        cmd.add_argument("--index", metavar="DIR", help="index folder (default: index/, or QA_INDEX)")
        cmd.add_argument("--model", metavar="NAME", help="embedding model: the packaged all-MiniLM-L6-v2 "
                         "(default) or a local model folder")
        cmd.add_argument("--store", choices=STORES, help="where the index lives: faiss (files in --index, default) or "
                         "milvus (a collection named after --index on --milvus-uri; QA_STORE)")
        cmd.add_argument("--milvus-uri", metavar="URI", help="Milvus server, Zilliz Cloud or Milvus Lite server, "
                         "e.g. http://127.0.0.1:19530 (QA_MILVUS_URI; a token in QA_MILVUS_TOKEN)")
        cmd.add_argument("--backend", choices=BACKENDS, help="encoder: onnx-int8, onnx or torch; a new index gets "
                         "onnx-int8 where the CPU has int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI, AMX), "
                         "else whichever of onnx-int8 and onnx runs faster here (timed once per machine); an "
                         "existing index keeps its own unless another is asked for (QA_BACKEND)")
        if data:
            cmd.add_argument("--index-type", choices=INDEX_TYPES, help="FAISS index: flat (exact), ivf, or auto: "
                             "flat up to --flat-limit chunks, ivf beyond (default auto, or QA_INDEX_TYPE)")
            cmd.add_argument("--device", choices=DEVICES, help="where builds run the encoder: auto (a CUDA GPU when "
                             "torch can use one, with the torch encoder; default), cpu, or cuda (questions then "
                             "encoded on it too) (QA_DEVICE)")
            cmd.add_argument("--engine", choices=ENGINES, help="how files are read, chunked and embedded: local "
                             "(default) or ray, on a Ray cluster (QA_ENGINE)")
            cmd.add_argument("--ray-address", metavar="ADDR", help="the Ray cluster: auto, ray://host:10001; default: "
                             "a local one on 127.0.0.1 (QA_RAY_ADDRESS)")
            cmd.add_argument("--flat-limit", type=int, metavar="N", help="chunks up to which auto stays exact "
                             "(default 200000, or QA_FLAT_LIMIT)")
            cmd.add_argument("--data", metavar="DIR", help="folder of .txt/.md/.rst/.html/.pdf/.docx/.jsonl files, "
                             "or one such file (default: data/, or QA_DATA)")

    c = sub.add_parser("index", help="build the index from the data folder",
                       description="Bring the index up to date with the data folder (.txt, .md, .rst, .html, .pdf, "
                       ".docx, .jsonl): new and changed files are read, chunked and embedded, deleted ones removed; "
                       "unchanged files are left alone.")
    common(c, data=True)
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.add_argument("--watch", action="store_true", help="stay running and re-index (incrementally) whenever files "
                   "under the data folder change")
    c.add_argument("--full", action="store_true", help="rebuild from scratch (default: only new, changed and "
                   "deleted files are processed)")

    for name, what in (("search", "the passages closest to QUERY"), ("ask", "an answer to QUESTION with citations")):
        c = sub.add_parser(name, help=f"print {what}", description=f"Print {what}.")
        c.add_argument("text", nargs="?", metavar=name == "search" and "QUERY" or "QUESTION")
        c.add_argument("--json", action="store_true", help="print JSON")
        c.add_argument("--batch", metavar="FILE", help="one per line from FILE ('-' for stdin); prints JSON lines")
        c.add_argument("-k", type=_k, default=None, help="number of passages " +
                       ("(default 5, or QA_TOP_K)" if name == "search" else "read to answer (default 5, or QA_TOP_K)"))
        if name == "ask":
            _reader_flags(c)
        common(c)

    c = sub.add_parser("eval", help="measure retrieval, answers and abstention on a BEIR-layout dataset",
                       description="Index DATASET_DIR/corpus.jsonl with the same pipeline (cached by content "
                       "hash under .cache/, or QA_CACHE) and report Recall@1/5/k, MRR@k, nDCG@k (document level), "
                       "answer accuracy and abstention (when answers.jsonl / unanswerable.txt exist), and timings.")
    c.add_argument("dataset", metavar="DATASET_DIR")
    c.add_argument("-k", type=_k, default=10, help="cut-off of MRR, nDCG and the last recall (default 10)")
    c.add_argument("--queries", metavar="FILE", help="another queries file, e.g. queries_train.jsonl")
    c.add_argument("--qrels", metavar="FILE", help="another qrels file, e.g. qrels_train.tsv")
    c.add_argument("--limit", type=_k_any, metavar="N", help="a deterministic slice: every n-th query, N in all")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    c.add_argument("--cache", metavar="DIR", help="where evaluation indexes are kept (default .cache/)")
    c.add_argument("--model", metavar="NAME", help="embedding model (default: the packaged all-MiniLM-L6-v2)")
    c.add_argument("--backend", choices=BACKENDS, help="encoder (default: the one chosen for this CPU, as qa index)")
    _reader_flags(c)

    c = sub.add_parser("mcp", help="serve the documents to an MCP client over stdio",
                       description="An MCP server on stdin/stdout with the tools search_documents and ask_documents "
                       "(the web app serves the same tools at /mcp). Brings the index up to date first; progress "
                       "and errors go to stderr.")
    _reader_flags(c)
    common(c, data=True)

    c = sub.add_parser("serve", help="run the web app (same as python app.py)",
                       description="Serve the chat page; builds the index first when there is none.")
    c.add_argument("--host", help="address to bind (default 127.0.0.1, or QA_HOST)")
    c.add_argument("--port", type=int, help="port (default 7860, or QA_PORT)")
    c.add_argument("--allowed-origins", metavar="LIST", help="comma-separated origins that may call the API "
                   "and embed the chat (default *, or QA_ALLOWED_ORIGINS)")
    _reader_flags(c)
    common(c, data=True)
    return p


def _reader_flags(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--reader", metavar="|".join(READERS) + "|DIR", help="onnx: the shipped reader model picks the "
                     "answer and decides when the documents do not say (default); none: term and vector scores; "
                     "DIR: a folder with another reader.onnx and reader.json (QA_READER)")
    cmd.add_argument("--min-score", type=float, metavar="P", help="confidence (0-1) below which it answers that "
                     "the documents do not say (default: the answerer's fitted threshold, or QA_MIN_SCORE)")
    cmd.add_argument("--no-name-check", dest="check_names", action="store_false", default=None,
                     help="do not look the question's names up in the documents (by default an identifier they never "
                     "mention, such as NTLM, refuses the question, naming it, and a capitalised word they never "
                     "mention is named in a notice; QA_CHECK_NAMES=0)")


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
        page = f"page {c.page}, " if c.page else ""
        print(f"[{c.n}] {c.source}, {page}line {c.line}, characters {c.start}-{c.end}")


def _print_build(report, config, stream=sys.stderr) -> None:
    skipped = f", {report.skipped} skipped" if report.skipped else ""
    if not report.changed:
        print(f"nothing changed since the last build: {_plural(report.files, 'file')}, "
              f"{_plural(report.chunks, 'chunk')} -> {config.index_dir}", file=stream)
        return
    if report.incremental:
        print(f"files: {report.added} added, {report.updated} updated, {report.removed} removed, "
              f"{report.unchanged} unchanged{skipped}; chunks: {report.chunks_added} added, "
              f"{report.chunks_removed} removed", file=stream)
    print(f"indexed {_plural(report.files, 'file')} into {_plural(report.chunks, 'chunk')}{skipped} "
          f"in {report.seconds:.1f} s -> {config.index_dir}", file=stream)
    if report.backend_reason:
        print(f"encoder: {report.backend}, chosen for this machine: {report.backend_reason}", file=stream)
    if report.chunks_reused:
        print(f"{report.chunks_reused} of the {_plural(report.chunks_added, 'chunk')} added took the vectors of an "
              "identical passage (title and headings included) instead of being embedded again", file=stream)
    if report.unindexed:
        print(f"also in {config.data_dir}: {report.unindexed}", file=stream)


def _watch(assistant, config, quiet: bool) -> None:
    """Re-index whenever files under the data folder change (debounced); errors are reported, not fatal."""
    from watchfiles import watch

    from .reading import IGNORE_FILE, SUFFIXES

    def relevant(_change, path: str) -> bool:
        inside = path[len(str(config.data_dir)):]
        return (path.lower().endswith(SUFFIXES) and "/." not in inside) or inside == "/" + IGNORE_FILE

    print(f"watching {config.data_dir} for changes (Ctrl-C to stop)", flush=True)
    for changes in watch(config.data_dir, watch_filter=relevant, debounce=1000, raise_interrupt=False):
        print(f"{_plural(len(changes), 'change')} under {config.data_dir}; re-indexing", flush=True)
        try:
            _print_build(assistant.build(_warn, progress=not quiet), config, sys.stdout)
        except QAError as e:
            print(f"error: {e}", file=sys.stderr)
        sys.stdout.flush()


def _eval(args: argparse.Namespace, config) -> int:
    from pathlib import Path

    from .assistant import Assistant
    from .evaluation import evaluate, load_dataset, take

    dataset = take(load_dataset(Path(args.dataset).expanduser().resolve(),
                                Path(args.queries).expanduser() if args.queries else None,
                                Path(args.qrels).expanduser() if args.qrels else None), args.limit)
    report = evaluate(Assistant, config, dataset, args.k, config.cache_dir / "eval", _warn, progress=not args.quiet)
    if args.json:
        print(json.dumps(report.to_json()))
        return 0
    print(f"{report.dataset}: {report.queries} queries, k={report.k}")
    for part in ("retrieval", "answers", "abstention", "timings"):
        values = getattr(report, part)
        if values:
            print(f"  {part:<11}" + "  ".join(f"{name} {value}" for name, value in values.items()))
    return 0


def _prepare(assistant, config) -> None:
    """Up to date with the data folder before answering: nothing to do when nothing changed, an incremental
    build when files did, a full one when there is no index or it is from another version or model. An index
    that cannot be updated (read-only, or another process is building it) is served as it is."""
    from .indexing import index_exists

    try:
        _print_build(assistant.build(_warn, progress=True), config)
    except (IndexUnwritable, IndexBusy) as e:
        if not index_exists(config):
            raise
        _warn(f"{e}; serving the index as it is")
    assistant.set_threads(config.threads)
    assistant.warm_up(warn=_warn)


def _run(args: argparse.Namespace) -> int:
    config = build_config(os.environ, data_dir=getattr(args, "data", None), index_dir=getattr(args, "index", None),
                          cache_dir=getattr(args, "cache", None),
                          model=args.model, host=getattr(args, "host", None), port=getattr(args, "port", None),
                          allowed_origins=getattr(args, "allowed_origins", None), backend=args.backend,
                          index_type=getattr(args, "index_type", None), flat_limit=getattr(args, "flat_limit", None),
                          store=getattr(args, "store", None), milvus_uri=getattr(args, "milvus_uri", None),
                          engine=getattr(args, "engine", None), ray_address=getattr(args, "ray_address", None),
                          reader=getattr(args, "reader", None), min_score=getattr(args, "min_score", None),
                          device=getattr(args, "device", None), check_names=getattr(args, "check_names", None))
    from .assistant import Assistant

    if args.command == "eval":
        return _eval(args, config)
    assistant = Assistant(config)
    if args.command == "index":
        _print_build(assistant.build(_warn, progress=not args.quiet, full=args.full), config, sys.stdout)
        if args.watch:
            _watch(assistant, config, quiet=args.quiet)
        return 0
    if args.command == "serve":
        from .server import bind, serve

        sock = bind(config.host, config.port)  # before the (possibly long) first build: a busy port fails fast
        print(f"starting at http://{config.host}:{config.port} (API docs at /docs, widget at /widget.js)",
              file=sys.stderr, flush=True)

        def prepare() -> None:
            _prepare(assistant, config)
            print(f"ready: {_plural(len(assistant.index.store), 'chunk')} at http://{config.host}:{config.port}",
                  file=sys.stderr, flush=True)

        serve(assistant, config, sock, prepare=prepare)
        return 0

    if args.command == "mcp":
        from .mcp_server import build_mcp

        _prepare(assistant, config)  # reports on stderr: stdout carries the protocol
        build_mcp(assistant).run("stdio")
        return 0

    if (args.text is None) == (args.batch is None):
        what = "query" if args.command == "search" else "question"
        raise ConfigError(f"give either a {what} or --batch FILE")
    assistant.set_threads(config.threads)
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
    except UnicodeDecodeError as e:
        print(f"error: {getattr(args, 'batch', None) or 'input'} is not UTF-8 text (byte {e.start})", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:  # a path that is a file where a folder is needed, unreadable, missing, read-only...
        where = f": {e.filename}" if e.filename else ""
        print(f"error: {e.strerror or e}{where}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
