"""Training the reader (reader.py) from the packaged all-MiniLM-L6-v2: `python -m qa.train_reader`.

Data (SQuAD, CC BY-SA 4.0; see qa/models/README.md): ../shared/train/*.json and the even-numbered articles of
../shared/eval/squad_v2_dev. The last even articles, enough for FIT_QUESTIONS answerable and as many unanswerable
questions, are kept out of training for fitting the threshold (bench/fit_reader.py); odd articles are never read.

Pairs are (question, unit) with the unit a sentence of the paragraph, as the chunker cuts it (half the time
together with the sentence before it when it leans on that one, as the answerer offers it), sometimes with the
article title in front as the answerer puts a passage's title and section: the sentence holding the answer
(label 1, with the answer's start and end word piece), and the failures seen in answers: the other sentence of the
paragraph that shares most words with the question, another one at random, the best-matching sentences of an
unanswerable question's own paragraph (up to UNANSWERABLE_NEGATIVES), the answer's own sentence read against the
question with one shared name swapped for one the paragraph never uses (SWAP_SHARE of them), and the article's title
alone standing in for a heading (label 0).

The model is the first LAYERS transformer layers of the packaged model with two heads, trained with its word
embeddings frozen: the exported file leaves them out and reader.py takes them from the packaged model at load time.
Seeded and single-process: the same data and seed give the same weights on the same machine.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .answering import STOPWORDS, key_terms, leans_on_previous
from .chunking import sentence_spans
from .config import ROOT
from .evaluation import auroc
from .reader import INPUTS, MODEL_FILE, OUTPUTS, manifest_path, pair_row

LAYERS = 6
MAX_TOKENS = 96
FIT_QUESTIONS = 800
UNANSWERABLE_NEGATIVES = 6
SWAP_SHARE = 0.5  # answerable questions that also give a swapped-word question (swapped()) read against the answer  # sentences of an unanswerable question's own paragraph read as not answering it
SHARED = ROOT.parent / "shared"


@dataclass(frozen=True)
class Pair:
    question: str
    unit: str  # what the reader reads after the question: [title > ] sentence
    label: int
    answer: tuple[int, int] | None  # character span of the answer inside `unit`
    group: str  # the question's id: pairs of one question are scored together in the held-out metrics


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    title: str
    context: str
    answer: tuple[int, int] | None  # character span in context; None: unanswerable


def _official(path: Path) -> list[Question]:
    out = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                span = None
                if not qa.get("is_impossible") and qa["answers"]:
                    a = qa["answers"][0]
                    span = (a["answer_start"], a["answer_start"] + len(a["text"]))
                out.append(Question(qa["id"], qa["question"], article["title"], para["context"], span))
    return out


def _dev_articles(folder: Path) -> dict[int, list[Question]]:
    """Questions of the even-numbered dev articles, by article number; answers located by first occurrence."""
    corpus = {}
    for line in (folder / "corpus.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        corpus[row["id"]] = row
    queries = {json.loads(line)["id"]: json.loads(line)["text"] for line in (folder / "queries.jsonl").open()}
    answers = {json.loads(line)["id"]: json.loads(line)["answers"] for line in (folder / "answers.jsonl").open()}
    para = {}
    for name in ("qrels.tsv", "qrels_unanswerable.tsv"):
        for line in list((folder / name).open())[1:]:
            qid, pid, _ = line.rstrip("\n").split("\t")
            para[qid] = pid
    unanswerable = set((folder / "unanswerable.txt").read_text().split())
    out: dict[int, list[Question]] = {}
    for qid, text in queries.items():
        pid = para.get(qid)
        if pid is None or int(pid[1:3]) % 2:
            continue  # odd articles are held out for reporting
        doc = corpus[pid]
        span = None
        if qid not in unanswerable:
            for gold in answers.get(qid, []):
                at = doc["text"].find(gold)
                if gold and at >= 0:
                    span = (at, at + len(gold))
                    break
            if span is None:
                continue
        out.setdefault(int(pid[1:3]), []).append(Question(qid, text, doc["title"], doc["text"], span))
    return out


def split_questions(shared: Path) -> tuple[list[Question], list[Question], list[int]]:
    """(training questions, threshold-fitting questions, the fitting part's article numbers)."""
    train = _official(shared / "train" / "squad_v2_train_part.json") + _official(shared / "train" /
                                                                                  "squad_v1_dev_extra.json")
    articles = _dev_articles(shared / "eval" / "squad_v2_dev")
    fit, fit_articles = [], []
    for number in sorted(articles, reverse=True):
        if sum(q.answer is not None for q in fit) >= FIT_QUESTIONS and sum(q.answer is None for q in fit) >= FIT_QUESTIONS:
            train.extend(articles[number])
        else:
            fit.extend(articles[number])
            fit_articles.append(number)
    return train, fit, sorted(fit_articles)


_NAME = re.compile(r"\b[A-Z][a-z]{2,}\b")
_WORD = re.compile(r"\b[a-z]{5,}\b")


def word_pools(questions: list[Question]) -> tuple[list[str], list[str]]:
    """Capitalized words (names) and long lower-case words of the training paragraphs, sorted (deterministic)."""
    names, words = set(), set()
    for context in {q.context for q in questions}:
        names.update(_NAME.findall(context))
        words.update(_WORD.findall(context))
    return sorted(names), sorted(words)


def swapped(q: Question, unit: str, pools: tuple[list[str], list[str]], rng: random.Random) -> str | None:
    """The question with one of the names it shares with the unit replaced by a name the paragraph never uses:
    the unit no longer answers it ("Who directs the Secretariat?" -> "Who directs the Tribunal?")."""
    shared = [m for m in _NAME.finditer(q.text) if m.start() > 0 and m.group().lower() not in STOPWORDS and
              m.group() in unit]
    if not shared:
        return None
    m = rng.choice(shared)
    pool = pools[0]
    for _ in range(10):
        other = rng.choice(pool)
        if other.lower() not in q.context.lower():
            return q.text[:m.start()] + other + q.text[m.end():]
    return None


def pairs_of(q: Question, rng: random.Random, pools: tuple[list[str], list[str]] | None = None) -> list[Pair]:
    sentences = sentence_spans(q.context)
    terms = key_terms(q.text)
    title = q.title.replace("_", " ")
    prefix = f"{title}\n" if rng.random() < 0.5 else ""
    out = []
    gold = None
    if q.answer is not None:
        holding = [i for i, (s, e) in enumerate(sentences) if s <= q.answer[0] < e]
        if not holding:
            return []
        gold = holding[0]
        s, e = sentences[gold]
        if q.answer[1] > e:  # an answer across sentences: read them together
            e = next((e2 for s2, e2 in sentences if s2 < q.answer[1] <= e2), e)
        if gold and rng.random() < 0.5 and leans_on_previous(q.context[s:e], q.context[slice(*sentences[gold - 1])]):
            s = sentences[gold - 1][0]
        unit = prefix + q.context[s:e]
        shift = len(prefix) - s
        out.append(Pair(q.text, unit, 1, (q.answer[0] + shift, q.answer[1] + shift), q.id))
        other = swapped(q, q.context[s:e], pools, rng) if pools and rng.random() < SWAP_SHARE else None
        if other:
            out.append(Pair(other, unit, 0, None, q.id + "-swapped"))
    others = [i for i in range(len(sentences)) if i != gold]
    ranked = sorted(others, key=lambda i: (-len(terms & key_terms(q.context[slice(*sentences[i])])), i))
    chosen = ranked[:1] if gold is not None else ranked[:UNANSWERABLE_NEGATIVES]
    rest = [i for i in others if i not in chosen]
    if rest and rng.random() < 0.5:
        chosen.append(rng.choice(rest))
    for i in chosen:
        s, e = sentences[i]
        if i and rng.random() < 0.5 and leans_on_previous(q.context[s:e], q.context[slice(*sentences[i - 1])]):
            s = sentences[i - 1][0]  # offered with the sentence it leans on, as the answerer offers it
        out.append(Pair(q.text, prefix + q.context[s:e], 0, None, q.id))
    if rng.random() < 0.1:
        out.append(Pair(q.text, title, 0, None, q.id))
    return out


def encode(tokenizer, pairs: list[Pair], max_tokens: int):
    """Token ids, type ids and the answer's start/end word piece (0, 0 when none or cut off) of each pair."""
    rows = []
    for p in pairs:
        u = tokenizer.encode(p.unit, add_special_tokens=False)
        ids, base, kept = pair_row(tokenizer.encode(p.question, add_special_tokens=False).ids, u.ids, max_tokens)
        types = [0] * base + [1] * (len(ids) - base)
        start = end = 0
        if p.answer is not None:
            inside = [i for i, (s, e) in enumerate(u.offsets[:kept]) if s < p.answer[1] and e > p.answer[0]]
            if inside:
                start, end = base + inside[0], base + inside[-1]
        rows.append((ids, types, start, end))
    return rows


def _batches(rows, labels, batch_size: int, rng: random.Random):
    """Batches of similar length (fast on CPU), in shuffled order."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for i in range(0, len(order), pool):
        block = sorted(order[i:i + pool], key=lambda j: len(rows[j][0]))
        batches.extend(block[k:k + batch_size] for k in range(0, len(block), batch_size))
    rng.shuffle(batches)
    return batches


def _tensors(rows, idx):
    import torch

    width = max(len(rows[j][0]) for j in idx)
    ids = torch.zeros((len(idx), width), dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for r, j in enumerate(idx):
        n = len(rows[j][0])
        ids[r, :n] = torch.tensor(rows[j][0])
        types[r, :n] = torch.tensor(rows[j][1])
        mask[r, :n] = 1
    return ids, types, mask


def _reader_net():
    import torch

    class ReaderNet(torch.nn.Module):
        """The transformer from word vectors on, an answer logit from [CLS], and start/end logits per word piece
        (those of the question and of padding held at -10000)."""

        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder
            self.word_embeddings = encoder.embeddings.word_embeddings
            hidden = encoder.config.hidden_size
            self.answer = torch.nn.Linear(hidden, 1)
            self.span = torch.nn.Linear(hidden, 2)

        def forward(self, word_vectors, attention_mask, token_type_ids):
            h = self.encoder(inputs_embeds=word_vectors, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state
            logit = self.answer(h[:, 0]).squeeze(-1)
            ends = self.span(h)
            outside = (token_type_ids * attention_mask) == 0
            return (logit, ends[..., 0].masked_fill(outside, -10000.0), ends[..., 1].masked_fill(outside, -10000.0))

    return ReaderNet


def quantize(fp32: Path, target: Path) -> None:
    """onnxruntime's dynamic quantization of the MatMul weights to int8, per output channel."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it logs a pre-processing hint
    try:
        quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
    finally:
        root.setLevel(level)


def export_reader(net, out: Path, info: dict, int8: bool = True) -> Path:
    """reader.onnx (word vectors, mask and type ids in; answer logit, start and end logits out; int8 weights
    unless int8=False) and reader.json (how it was made, its sha256: reader.py checks it on load)."""
    import warnings

    import torch


    out.mkdir(parents=True, exist_ok=True)
    target = out / MODEL_FILE
    tmp = target.with_suffix(".tmp.onnx")
    net = net.eval()
    sample_ids = torch.ones((2, 16), dtype=torch.long)
    types = torch.zeros_like(sample_ids)
    types[:, 8:] = 1
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (net.word_embeddings(sample_ids), torch.ones_like(sample_ids), types), str(tmp),
                          input_names=INPUTS, output_names=OUTPUTS, opset_version=17, dynamo=False,
                          dynamic_axes={"word_vectors": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"},
                                        "token_type_ids": {0: "batch", 1: "tokens"},
                                        "answer_logit": {0: "batch"}, "start_logits": {0: "batch", 1: "tokens"},
                                        "end_logits": {0: "batch", 1: "tokens"}})
    if int8:
        quantize(tmp, target)
        tmp.unlink()
    else:
        tmp.replace(target)
    info = dict(info, file=MODEL_FILE, precision="int8" if int8 else "fp32", sha256=hashlib.sha256(target.read_bytes()).hexdigest(),
                bytes=target.stat().st_size)
    manifest_path(out).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return target


def build_model(model_path: Path, layers: int):
    import torch
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(str(model_path))
    encoder.encoder.layer = encoder.encoder.layer[:layers]
    encoder.config.num_hidden_layers = layers
    net = _reader_net()(encoder)
    net.word_embeddings.weight.requires_grad_(False)
    torch.nn.init.zeros_(net.answer.bias)
    return net


def score_pairs(net, rows, batch_size: int = 64):
    """The answer logit of each row (no gradient)."""
    import torch

    out = np.zeros(len(rows), dtype=np.float32)
    order = sorted(range(len(rows)), key=lambda j: len(rows[j][0]))
    net.eval()
    with torch.inference_mode():
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            ids, types, mask = _tensors(rows, idx)
            logit, _, _ = net(net.word_embeddings(ids), mask, types)
            out[idx] = logit.numpy()
    return out


def heldout_metrics(pairs: list[Pair], logits: np.ndarray) -> dict:
    """Per question: is the best-scored unit the answer's, and how well the best logit tells answerable from not."""
    best: dict[str, tuple[float, int]] = {}
    answerable = set()
    for p, z in zip(pairs, logits):
        if p.label:
            answerable.add(p.group)
        if p.group not in best or z > best[p.group][0]:
            best[p.group] = (float(z), p.label)
    pos = [z for g, (z, _) in best.items() if g in answerable]
    neg = [z for g, (z, _) in best.items() if g not in answerable]
    right = sum(label for g, (_, label) in best.items() if g in answerable)
    return {"questions": len(best), "unit_accuracy": round(right / max(len(pos), 1), 4),
            "auroc": round(auroc(pos, neg), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.train_reader", description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=SHARED, help="folder with train/ and eval/ (../shared)")
    parser.add_argument("--out", type=Path, default=ROOT / "qa" / "models", help="where reader.onnx and reader.json go")
    parser.add_argument("--layers", type=int, default=LAYERS)
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    parser.add_argument("--pairs", type=int, default=0, help="use at most this many training pairs (0: all)")
    parser.add_argument("--epochs", type=float, default=1.25)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: every core)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda where a GPU is lent")
    parser.add_argument("--precision", default="int8", choices=["int8", "fp32"],
                        help="weights of the exported file (int8: a quarter of the size)")
    args = parser.parse_args(argv)

    import torch

    from .embedding import resolve_model_path
    from .config import DEFAULT_MODEL
    from .chunking import load_tokenizer

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    train_q, fit_q, fit_articles = split_questions(args.shared)
    pools = word_pools(train_q)
    train = [p for q in train_q for p in pairs_of(q, rng, pools)]
    rng.shuffle(train)
    if args.pairs:
        train = train[:args.pairs]
    fit = [p for q in fit_q for p in pairs_of(q, random.Random(args.seed + 1))]
    print(f"training pairs {len(train)} ({sum(p.label for p in train)} answer), from {len(train_q)} questions; "
          f"held out for the threshold: articles {fit_articles}, {sum(q.answer is not None for q in fit_q)} "
          f"answerable and {sum(q.answer is None for q in fit_q)} unanswerable questions", file=sys.stderr)
    model_path = resolve_model_path(DEFAULT_MODEL)
    tokenizer = load_tokenizer(model_path)
    rows = encode(tokenizer, train, args.max_tokens)
    fit_rows = encode(tokenizer, fit, args.max_tokens)
    net = build_model(model_path, args.layers).to(args.device)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    labels = [p.label for p in train]
    steps_per_epoch = (len(rows) + args.batch_size - 1) // args.batch_size
    total = max(1, int(steps_per_epoch * args.epochs))
    warmup = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    bce = torch.nn.BCEWithLogitsLoss()
    ce = torch.nn.CrossEntropyLoss(reduction="none")
    step, t0 = 0, time.time()
    while step < total:
        for idx in _batches(rows, labels, args.batch_size, rng):
            if step >= total:
                break
            net.train()
            ids, types, mask = (t.to(args.device) for t in _tensors(rows, idx))
            y = torch.tensor([labels[j] for j in idx], dtype=torch.float32, device=args.device)
            starts = torch.tensor([rows[j][2] for j in idx], device=args.device)
            ends = torch.tensor([rows[j][3] for j in idx], device=args.device)
            logit, start_logits, end_logits = net(net.word_embeddings(ids), mask, types)
            has_span = (y > 0) & (starts > 0)
            loss = bce(logit, y)
            if has_span.any():
                span = (ce(start_logits, starts) + ce(end_logits, ends)) / 2
                loss = loss + 0.5 * span[has_span].mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 50 == 0 or step == total:
                rate = step * args.batch_size / (time.time() - t0)
                print(f"step {step}/{total} loss {loss.item():.3f} {rate:.1f} pairs/s", file=sys.stderr, flush=True)
    net = net.to("cpu")
    metrics = heldout_metrics(fit, score_pairs(net, fit_rows))
    print(f"held out (threshold part, gold paragraph): {json.dumps(metrics)}", file=sys.stderr)
    info = {"layers": args.layers, "max_tokens": args.max_tokens, "seed": args.seed, "training_pairs": len(train),
            "training_questions": len(train_q), "fit_articles": fit_articles, "epochs": args.epochs,
            "lr": args.lr, "batch_size": args.batch_size, "train_seconds": round(time.time() - t0),
            "heldout_gold_paragraph": metrics}
    path = export_reader(net, args.out, info, int8=args.precision == "int8")
    print(f"wrote {path} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
