"""`minibert explain "text"`: one text's walk from string to label, with the model's own numbers at each step.

The steps are the seed notebooks' (tokenizer -> encoder -> classification head -> softmax -> id2label), and
the encoder is opened up block by block with `output_hidden_states=True` and `output_attentions=True`:

    tokens, input_ids, attention_mask                     tokenizer(text)                      [T]
    embeddings                                            hidden_states[0]                     [T, C]
    block i: output, norms, [CLS]'s strongest key/head    hidden_states[i + 1], attentions[i]  [T, C], [H, T, T]
    [CLS] vector                                          last_hidden_state[0, 0]              [C]
    classifier input: pre_classifier + ReLU               model.py's linear + ReLU             [C]
      (BERT checkpoints: the pooler, tanh(dense(cls)))    model.py's pooler
    logits, softmax, argmax, id2label                     model(...).logits                    [L]

`explain()` computes everything into an `Explanation` (no printing), `format_explanation()` turns it into
text, `attention_figure()`/`plot_attention()` draw every head's attention map (needs matplotlib:
pip install "minibert[plot]").
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .hub import DEFAULT_CHECKPOINT, CheckpointNotFoundError
from .kernels import softmax
from .model import linear, pooler
from .modeling import BertForSequenceClassification, DistilBertForSequenceClassification
from .tokenizer import AutoTokenizer, DistilBertTokenizer

PLOT_EXTRA = 'pip install "minibert[plot]"'
DESCRIPTION = """Walk one text through the model as the seed notebooks do, printing the model's own values:
tokens and ids, attention mask, embeddings, each block's output (shape, norms) and the token [CLS]
attends to most in each head, the [CLS] vector, the classifier's input, logits, softmax and the label.
--plot also draws every block's and head's attention map."""
FIRST_VALUES = 8  # how many leading values of the [CLS] and classifier-input vectors are printed
MAX_PLOT_TOKENS = 64  # beyond this the token labels of a map cannot be read (and the image gets huge)


@dataclass
class Block:
    """One transformer block's output for the explained text (batch row 0)."""

    hidden_state: np.ndarray  # [T, C]: the block's output, hidden_states[i + 1][0]
    attentions: np.ndarray  # [H, T, T]: softmax weights, query (row) over key (column), attentions[i][0]
    norm: float  # Frobenius norm of hidden_state: sqrt of the sum of all T x C squares
    cls_norm: float  # Euclidean (L2) norm of the [CLS] row, hidden_state[0]
    cls_top: list[tuple[int, float]]  # per head: (key position [CLS] attends to most, its weight)


@dataclass
class Explanation:
    """Every value `minibert explain` prints, as the model computed it (dtype of the model: float32 or float64)."""

    text: str
    tokens: list[str]  # [T], including [CLS] and [SEP]
    input_ids: np.ndarray  # [T] int64
    attention_mask: np.ndarray  # [T] int64, all ones: a single text has no padding
    special: list[bool]  # [T]: True for tokens the tokenizer added ([CLS], [SEP])
    embeddings: np.ndarray  # [T, C]: hidden_states[0][0], word + position embedding after LayerNorm
    embeddings_norm: float  # Frobenius norm of embeddings
    blocks: list[Block]  # one per layer
    cls: np.ndarray  # [C]: last_hidden_state[0, 0], the classification head's input
    classifier_input: np.ndarray  # [C]: DistilBERT: ReLU(pre_classifier(cls)), after the ReLU; BERT: the pooler's
    classifier_input_step: str  # how classifier_input was computed, in words
    logits: np.ndarray  # [L]
    probs: np.ndarray  # [L]: softmax(logits)
    label_id: int  # argmax of probs
    label: str  # config.id2label[label_id]
    id2label: dict[int, str]


Classifier = DistilBertForSequenceClassification | BertForSequenceClassification


def load(
    model: str | os.PathLike = DEFAULT_CHECKPOINT,
    *,
    revision: str | None = None,
    backend: str | None = None,
    dtype: str = "float32",
) -> tuple[Classifier, DistilBertTokenizer]:
    """The classification model and its tokenizer from a hub id or a local checkpoint directory."""
    import minibert

    clf = minibert.AutoModelForSequenceClassification.from_pretrained(
        model, revision=revision, backend=backend, dtype=dtype
    )
    return clf, AutoTokenizer.from_pretrained(model, revision=revision)


def explain(text: str, model: Classifier, tokenizer: DistilBertTokenizer) -> Explanation:
    """Run one text through tokenizer and model, keeping every intermediate the model produces."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}: {text!r}")
    params = getattr(model, "params", {})
    if "classifier" not in params or not ("pre_classifier" in params or "pooler" in params):
        raise ValueError(
            "explain walks a sequence-classification head (DistilBERT: pre_classifier, ReLU, classifier; BERT: "
            f"pooler, classifier); {type(model).__name__} has none. Pass a model from "
            "AutoModelForSequenceClassification"
        )
    enc = tokenizer(text, truncation=True, return_tensors="np")  # [1, T]; cut to the model's 512 positions
    out = model(**enc, output_hidden_states=True, output_attentions=True)
    ids, mask = enc["input_ids"][0], enc["attention_mask"][0]

    blocks = []
    for hidden, weights in zip(out.hidden_states[1:], out.attentions, strict=True):
        h, a = hidden[0], weights[0]  # [T, C], [H, T, T]
        top = a[:, 0, :].argmax(axis=-1)  # [H]: for each head, the key that the [CLS] query weights most
        blocks.append(
            Block(h, a, _norm(h), _norm(h[0]), [(int(k), float(a[i, 0, k])) for i, k in enumerate(top)])
        )

    # The head, step by step with model.py's own functions (classification_head / bert_classification_head do
    # the same in one go); the logits are the model's output, so they are exactly what the pipeline would score.
    cls = out.hidden_states[-1][:, 0]  # [1, C]
    if "pre_classifier" in params:  # DistilBERT
        pre = model.ops.relu(linear(cls, params["pre_classifier"], model.ops))  # [1, C], after the ReLU
        step = "pre_classifier, after the ReLU: ReLU(pre_classifier(cls))"
    else:  # BERT: the pooler (trained on next-sentence prediction) feeds the classifier
        pre = pooler(out.hidden_states[-1], params["pooler"], model.ops)  # [1, C], after the tanh
        step = "BERT's pooler, after the tanh: tanh(pooler.dense(cls))"
    logits = out.logits[0]
    probs = softmax(logits, axis=-1)
    label_id = int(probs.argmax())
    special_ids = set(tokenizer.all_special_ids)
    return Explanation(
        text=text,
        tokens=tokenizer.convert_ids_to_tokens(ids.tolist()),
        input_ids=ids,
        attention_mask=mask,
        special=[int(i) in special_ids for i in ids],
        embeddings=out.hidden_states[0][0],
        embeddings_norm=_norm(out.hidden_states[0][0]),
        blocks=blocks,
        cls=cls[0],
        classifier_input=pre[0],
        classifier_input_step=step,
        logits=logits,
        probs=probs,
        label_id=label_id,
        label=model.config.id2label[label_id],
        id2label=dict(model.config.id2label),
    )


def _norm(x: np.ndarray) -> float:
    # Frobenius (for a vector: Euclidean) norm, summed in float64 so the printed norm adds no float32 rounding
    return float(np.linalg.norm(np.asarray(x, dtype=np.float64)))


# ---------------------------------------------------------------------------------------------
# Printing.


def _vec(x: np.ndarray) -> str:
    return np.array2string(np.asarray(x), precision=4, separator=", ", max_line_width=10_000)


def format_explanation(e: Explanation, heads_per_line: int = 4) -> str:
    """The walk as text, one numbered step per notebook step."""
    T, C = e.embeddings.shape
    n_layers, H = len(e.blocks), (e.blocks[0].attentions.shape[0] if e.blocks else 0)
    width = max(len(t) for t in e.tokens)
    lines = [f"text: {e.text!r}", ""]

    lines.append(f"1. Tokenizer: {T} tokens ([CLS] and [SEP] are added by the tokenizer, marked *)")
    lines.append(f"   {'pos':>4}  {'token':<{width}}  {'id':>6}")
    for t, (tok, i, sp) in enumerate(zip(e.tokens, e.input_ids, e.special, strict=True)):
        lines.append(f"   {t:>4}  {tok:<{width}}  {int(i):>6}{'  *' if sp else ''}")
    lines.append(f"   input_ids      = {e.input_ids.tolist()}")
    lines.append(f"   attention_mask = {e.attention_mask.tolist()}  (1 = real token; one text, so no padding)")
    lines.append("")

    lines.append("2. Embeddings: word vector + position vector, LayerNorm (hidden_states[0])")
    lines.append(f"   shape (1, {T}, {C})  [batch, tokens, dim]   ‖h‖_F = {e.embeddings_norm:.4f}")
    lines.append("")

    lines.append(f"3. Transformer blocks: {n_layers} x (self-attention with {H} heads, then feed-forward)")
    lines.append("   ‖h‖_F = Frobenius norm of the block's whole [tokens, dim] output")
    lines.append("   ‖h[CLS]‖₂ = Euclidean (L2) norm of its [CLS] row")
    lines.append("   [CLS] → token (weight): the key the [CLS] query gives the most attention weight, per head")
    for i, b in enumerate(e.blocks):
        lines.append(
            f"   block {i} (hidden_states[{i + 1}], attentions[{i}]): shape (1, {T}, {C})   "
            f"‖h‖_F = {b.norm:.4f}   ‖h[CLS]‖₂ = {b.cls_norm:.4f}"
        )
        cells = [f"head {h:>2}: {e.tokens[k]} ({w:.3f})" for h, (k, w) in enumerate(b.cls_top)]
        for j in range(0, len(cells), heads_per_line):
            lines.append("      " + "   ".join(f"{c:<{width + 18}}" for c in cells[j : j + heads_per_line]).rstrip())
    lines.append("")

    n = min(FIRST_VALUES, C)
    lines.append(f"4. The [CLS] vector: last_hidden_state[0, 0], the classification head's input (first {n} of {C})")
    lines.append(f"   {_vec(e.cls[:n])}")
    zeros = f"; {int((e.classifier_input == 0).sum())} are 0" if "ReLU" in e.classifier_input_step else ""
    lines.append(f"5. {e.classifier_input_step} (first {n} of {C}{zeros})")
    lines.append(f"   {_vec(e.classifier_input[:n])}")
    lines.append("")

    labels = [e.id2label[i] for i in range(len(e.logits))]
    lines.append(f"6. logits = classifier(step 5's vector), one per label {labels}")
    lines.append(f"   {_vec(e.logits)}")
    lines.append("7. softmax(logits): probabilities")
    lines.append(f"   {_vec(e.probs)}")
    score = float(e.probs[e.label_id])
    lines.append(f"8. argmax = {e.label_id} → id2label[{e.label_id}] = {e.label!r} (score {score:.4f})")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The attention plot.


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError(f"--plot needs matplotlib, which is not installed: {PLOT_EXTRA}") from err
    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def attention_figure(e: Explanation):
    """Every block's and head's attention map in one matplotlib figure (rows: blocks, columns: heads).

    In each map, row t is query token t and column s is key token s; the colour is the weight
    (rows sum to 1). Tokens label the left column's rows and the bottom row's columns."""
    T = len(e.tokens)
    if T > MAX_PLOT_TOKENS:
        raise ValueError(f"the attention plot shows up to {MAX_PLOT_TOKENS} tokens and this text has {T}; "
                         "plot a shorter text")
    plt = _pyplot()
    n_layers, H = len(e.blocks), e.blocks[0].attentions.shape[0]
    cell = max(1.6, min(0.14 * T, 4.0))  # inches per map: room for T token labels, at most 4 inches
    label = 0.07 * max(len(t) for t in e.tokens) + 0.7  # inches for the token labels and the axis titles
    width, height = cell * H + label + 1.2, cell * n_layers + label + 0.9
    # Not sharex/sharey: with 72 maps, propagating every map's limits to all the others costs seconds
    fig, axes = plt.subplots(n_layers, H, figsize=(width, height), squeeze=False)
    # Fixed margins (no constrained layout or tight bbox, which also cost seconds here)
    fig.subplots_adjust(left=label / width, right=1 - 1.2 / width, bottom=label / height, top=1 - 0.9 / height,
                        wspace=0.06, hspace=0.06)
    fontsize = max(3.5, min(8.0, 0.8 * 72 * cell / T))  # points: 80% of the space one token gets on an axis
    image = None
    for i, b in enumerate(e.blocks):
        for h in range(H):
            ax = axes[i, h]
            image = ax.imshow(b.attentions[h], vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
            ax.tick_params(length=0, labelsize=fontsize)
            # Tokens on the outer maps only: queries down the left column, keys along the bottom row
            ax.set_yticks(range(T), e.tokens if h == 0 else [])
            ax.set_xticks(range(T), e.tokens if i == n_layers - 1 else [], rotation=90)
        axes[i, 0].set_ylabel(f"block {i}\nquery", fontsize=9)
    for h in range(H):
        axes[0, h].set_title(f"head {h}", fontsize=9)
        axes[-1, h].set_xlabel("key", fontsize=8)
    fig.suptitle(f"Attention weights for {e.text!r}: {e.label} ({float(e.probs[e.label_id]):.3f})", fontsize=12,
                 y=1 - 0.3 / height)
    cax = fig.add_axes((1 - 1.0 / width, 0.25, 0.15 / width, 0.5))
    fig.colorbar(image, cax=cax, label="attention weight")
    return fig


def plot_attention(e: Explanation, path: str | os.PathLike) -> Path:
    """attention_figure(e) saved as an image (the format follows the file name: .png, .svg, .pdf)."""
    plt = _pyplot()
    fig = attention_figure(e)
    try:
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return Path(path)


# ---------------------------------------------------------------------------------------------
# The command.


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `explain` on the `minibert` command's subparsers; it runs `run(args)`."""
    parser = subparsers.add_parser("explain", help="walk one text through the model, step by step",
                                   description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="the text to explain")
    parser.add_argument("--model", default=DEFAULT_CHECKPOINT, help="hub id or local checkpoint directory")
    parser.add_argument("--revision", default=None, help="hub revision (the default model is pinned)")
    parser.add_argument("--backend", choices=("numba", "numpy"), default=None)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--plot", metavar="FILE.png", default=None,
                        help=f"also draw the attention maps (blocks x heads) into this image ({PLOT_EXTRA})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the explanation (and write the plot); errors a user can fix are one line on stderr, exit 1."""
    try:
        if args.plot is not None:
            _pyplot()  # fail before the model loads, not after
        model, tokenizer = load(args.model, revision=args.revision, backend=args.backend, dtype=args.dtype)
        e = explain(args.text, model, tokenizer)
        written = plot_attention(e, args.plot) if args.plot is not None else None  # its errors before any output
        print(format_explanation(e))
        if written is not None:
            print(f"\nattention maps written to {written}")
    except (ImportError, CheckpointNotFoundError, ValueError, OSError) as err:
        if getattr(args, "debug", False):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minibert.explain", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(parser)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of runtime errors")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
