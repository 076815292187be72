"""Replay the two seed notebooks (../shared/seeds/) step by step with minibert in place of transformers.

    python scripts/walkthrough.py                  # the notebooks' checkpoint: SST-2 DistilBERT (from the hub)
    python scripts/walkthrough.py --model DIR      # any local DistilBERT classification checkpoint

Both notebooks take pipeline("sentiment-analysis") apart: tokenizer -> AutoModel (last_hidden_state) ->
AutoModelForSequenceClassification (logits) -> softmax -> argmax -> id2label. Each step is printed as the
line of code that produces it (`>>> ...`) followed by its value, as a notebook shows it. Arrays are NumPy's
prints of the float32 results at full precision (the shortest digits that identify each float32), long ones
summarised with their first and last 3 entries per axis as torch does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import minibert  # noqa: E402

# The notebooks' inputs, verbatim.
NOTEBOOK_000 = ["I've been waiting for a HuggingFace course my whole life.", "I hate this so much!"]
NOTEBOOK_001_PIPELINE = ["I'm a good person", "I think that image is NSFW"]
NOTEBOOK_001 = ["I'm a good person", "I think that image is NSFW", "Wow. I love it"]

PRINT_OPTIONS = {"floatmode": "unique", "threshold": 100, "edgeitems": 3, "linewidth": 110}


def show(code: str, value: object = None, *, echo_only: bool = False) -> None:
    print(f">>> {code}")
    if not echo_only:
        print(value)


def notebook_000(checkpoint: str, revision: str | None, backend: str | None) -> None:
    print("# Notebook 000: Breaking down pipeline()")
    show('classifier = minibert.pipeline("sentiment-analysis", model=checkpoint)', echo_only=True)
    classifier = minibert.pipeline("sentiment-analysis", model=checkpoint, revision=revision, backend=backend)
    show("classifier(raw_inputs)", classifier(NOTEBOOK_000))

    print("\n## Step 1. Tokenizer")
    show("tokenizer = minibert.AutoTokenizer.from_pretrained(checkpoint)", echo_only=True)
    tokenizer = minibert.AutoTokenizer.from_pretrained(checkpoint, revision=revision)
    show('inputs = tokenizer(raw_inputs, padding=True, truncation=True, return_tensors="np")', echo_only=True)
    inputs = tokenizer(NOTEBOOK_000, padding=True, truncation=True, return_tensors="np")
    show("print(inputs)", dict(inputs))

    print("\n## Step 2. The model: AutoModel (hidden states), then AutoModelForSequenceClassification (logits)")
    show("model = minibert.AutoModel.from_pretrained(checkpoint)", echo_only=True)
    model = minibert.AutoModel.from_pretrained(checkpoint, revision=revision, backend=backend)
    show("outputs = model(**inputs)", echo_only=True)
    outputs = model(**inputs)
    show("outputs.last_hidden_state.shape", outputs.last_hidden_state.shape)
    show("model = minibert.AutoModelForSequenceClassification.from_pretrained(checkpoint)", echo_only=True)
    model = minibert.AutoModelForSequenceClassification.from_pretrained(checkpoint, revision=revision, backend=backend)
    show("outputs = model(**inputs)", echo_only=True)
    outputs = model(**inputs)
    show("outputs.logits.shape", outputs.logits.shape)

    print("\n## Step 3. Logits -> probabilities -> labels")
    predictions = minibert.softmax(outputs.logits, axis=-1)
    show("predictions = minibert.softmax(outputs.logits, axis=-1)", echo_only=True)
    show("predictions", predictions)
    show("model.config.id2label", model.config.id2label)


def notebook_001(checkpoint: str, revision: str | None, backend: str | None) -> None:
    print("# Notebook 001: Inside the pipeline function")
    show('classi = minibert.pipeline("sentiment-analysis", model=checkpoint)', echo_only=True)
    classi = minibert.pipeline("sentiment-analysis", model=checkpoint, revision=revision, backend=backend)
    show("classi(pipeline_inputs)", classi(NOTEBOOK_001_PIPELINE))

    print("\n## Tokenizer")
    show("tokz = minibert.AutoTokenizer.from_pretrained(checkpoint)", echo_only=True)
    tokz = minibert.AutoTokenizer.from_pretrained(checkpoint, revision=revision)
    show('tokens = tokz(input, padding=True, truncation=True, return_tensors="np")', echo_only=True)
    tokens = tokz(NOTEBOOK_001, padding=True, truncation=True, return_tensors="np")
    show("tokens", dict(tokens))

    print("\n## Using the model")
    show("model = minibert.AutoModel.from_pretrained(checkpoint)", echo_only=True)
    model = minibert.AutoModel.from_pretrained(checkpoint, revision=revision, backend=backend)
    model_output = model(**tokens)
    show("model_output = model(**tokens)", echo_only=True)
    show("model_output.last_hidden_state", model_output.last_hidden_state)
    show("model_output.last_hidden_state.shape", model_output.last_hidden_state.shape)

    print("\n## AutoModel for classifying")
    show("model = minibert.AutoModelForSequenceClassification.from_pretrained(checkpoint)", echo_only=True)
    model = minibert.AutoModelForSequenceClassification.from_pretrained(checkpoint, revision=revision, backend=backend)
    output = model(**tokens)
    show("output = model(**tokens)", echo_only=True)
    show("output.logits", output.logits)
    show("output.logits.shape", output.logits.shape)

    print("\n## Calculating the predictions")
    preds = minibert.softmax(output.logits, axis=1)
    show("preds = minibert.softmax(output.logits, axis=1)", echo_only=True)
    show("preds", preds)
    result = np.argmax(preds, axis=1)
    show("result = np.argmax(preds, axis=1)", echo_only=True)
    show("result", result)
    show("model.config.id2label", model.config.id2label)
    show("input", NOTEBOOK_001)
    show("[model.config.id2label[i] for i in result]", [model.config.id2label[int(i)] for i in result])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=minibert.DEFAULT_CHECKPOINT,
                        help="hub id or local checkpoint directory (default: the notebooks' SST-2 checkpoint)")
    parser.add_argument("--revision", default=None, help="hub revision (the default model is pinned)")
    parser.add_argument("--backend", choices=("numba", "numpy"), default=None)
    args = parser.parse_args(argv)
    print(f"checkpoint = {args.model!r}\n")
    try:
        with np.printoptions(**PRINT_OPTIONS):
            notebook_000(args.model, args.revision, args.backend)
            print()
            notebook_001(args.model, args.revision, args.backend)
    except minibert.CheckpointNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        print("walkthrough: pass --model DIR to replay the notebooks on a local checkpoint", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
