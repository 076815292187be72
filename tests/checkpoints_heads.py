"""Random-init DistilBERT and BERT checkpoints with every head, written with transformers + torch, and
the torch references the head tests compare against (float32 and `model.double()` float64).

Two sizes per architecture; they differ in more than size, so that each config field minibert reads
is exercised: DistilBERT "tiny" uses ReLU (the masked-LM head applies config.activation), BERT "tiny"
has layer_norm_eps=1e-5 (BERT reads it from config.json; DistilBERT hard-codes 1e-12) and untied
masked-LM weights (cls.predictions.decoder.weight stored on its own).
"""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path

import numpy as np
from checkpoints import MINILM_DIR, VOCAB_SIZE, _perturb_layer_norms

HEADS = ["base", "sequence_classification", "masked_lm", "token_classification", "question_answering"]
SIZES = {
    "distilbert": {
        "tiny": dict(dim=32, n_heads=2, n_layers=2, hidden_dim=48, activation="relu", max_position_embeddings=64),
        "small": dict(dim=64, n_heads=4, n_layers=3, hidden_dim=256),
    },
    "bert": {
        "tiny": dict(hidden_size=32, num_attention_heads=2, num_hidden_layers=2, intermediate_size=48,
                     layer_norm_eps=1e-5, tie_word_embeddings=False, max_position_embeddings=64, type_vocab_size=3),
        "small": dict(hidden_size=64, num_attention_heads=4, num_hidden_layers=3, intermediate_size=256),
    },
}
NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC", 5: "B-MISC", 6: "I-MISC"}
SEQ_LABELS = {0: "sad", 1: "neutral", 2: "happy"}

_CLASSES = {
    ("distilbert", "base"): "DistilBertModel",
    ("distilbert", "sequence_classification"): "DistilBertForSequenceClassification",
    ("distilbert", "masked_lm"): "DistilBertForMaskedLM",
    ("distilbert", "token_classification"): "DistilBertForTokenClassification",
    ("distilbert", "question_answering"): "DistilBertForQuestionAnswering",
    ("bert", "base"): "BertModel",
    ("bert", "sequence_classification"): "BertForSequenceClassification",
    ("bert", "masked_lm"): "BertForMaskedLM",
    ("bert", "token_classification"): "BertForTokenClassification",
    ("bert", "question_answering"): "BertForQuestionAnswering",
}


def _spread_linears(module, generator, names) -> None:
    """transformers' head init (std 0.02) gives logits of ~0.01 (every label/answer alike, a lax test). Re-draw
    the head's linear layers with std 1/sqrt(fan_in) so that outputs are O(1) and predictions vary."""
    import torch

    with torch.no_grad():
        for name, layer in module.named_modules():
            if isinstance(layer, torch.nn.Linear) and any(name.startswith(n) for n in names):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * layer.weight.shape[1] ** -0.5)
                layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=generator))


HEAD_MODULES = ["pre_classifier", "classifier", "qa_outputs", "bert.pooler", "vocab_transform",
                "cls.predictions.transform"]


def make_head_checkpoint(outdir, arch: str, size: str, head: str, *, seed: int = 0, **config_overrides) -> Path:
    """A random-init transformers model of `arch` ("distilbert"/"bert") with `head`, saved with
    save_pretrained (model.safetensors + config.json) plus bert-base-uncased's vocab.txt."""
    import torch
    import transformers

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    labels = {"token_classification": NER_LABELS, "question_answering": {0: "LABEL_0", 1: "LABEL_1"}}.get(
        head, SEQ_LABELS
    )  # a QA model's num_labels must be 2 (start, end) in transformers
    config_class = transformers.DistilBertConfig if arch == "distilbert" else transformers.BertConfig
    config = config_class(
        vocab_size=VOCAB_SIZE, id2label=labels, label2id={v: k for k, v in labels.items()},
        architectures=[_CLASSES[arch, head]], **(SIZES[arch][size] | config_overrides),
    )
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = getattr(transformers, _CLASSES[arch, head])(config).eval()
    generator = torch.Generator().manual_seed(seed + 1)
    _perturb_layer_norms(model, generator)
    _spread_linears(model, generator, HEAD_MODULES)
    if head == "masked_lm":  # word vectors of std 0.02 give near-uniform word scores (top-k near ties): spread them
        with torch.no_grad():
            model.get_input_embeddings().weight.mul_(20.0)
    if head == "masked_lm" and not config.tie_word_embeddings:
        with torch.no_grad():  # make the untied decoder visibly different from the word embeddings
            model.get_output_embeddings().weight.normal_(0, 0.2, generator=generator)
    model.save_pretrained(outdir)
    shutil.copyfile(MINILM_DIR / "vocab.txt", outdir / "vocab.txt")
    (outdir / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": True, "model_max_length": config.max_position_embeddings}) + "\n"
    )
    return outdir


@cache
def torch_model(ckpt_dir: str, head: str, dtype: str = "float32"):
    import torch
    import transformers

    auto = {
        "base": transformers.AutoModel,
        "sequence_classification": transformers.AutoModelForSequenceClassification,
        "masked_lm": transformers.AutoModelForMaskedLM,
        "token_classification": transformers.AutoModelForTokenClassification,
        "question_answering": transformers.AutoModelForQuestionAnswering,
    }[head]
    model = auto.from_pretrained(ckpt_dir, attn_implementation="eager", dtype=torch.float32)
    assert model.config._attn_implementation == "eager"
    return (model.double() if dtype == "float64" else model).eval()


OUTPUT_FIELDS = {
    "base": ("last_hidden_state", "pooler_output"),
    "sequence_classification": ("logits",),
    "masked_lm": ("logits",),
    "token_classification": ("logits",),
    "question_answering": ("start_logits", "end_logits"),
}


def torch_outputs(ckpt_dir, head: str, inputs: dict, dtype: str = "float32") -> dict[str, np.ndarray]:
    """{field: array} of transformers' model for `head` on `inputs` (a dict of int64 arrays); fields the
    model does not return (DistilBERT's pooler_output) are left out."""
    import torch

    model = torch_model(str(ckpt_dir), head, dtype)
    with torch.no_grad():
        out = model(**{k: torch.as_tensor(v) for k, v in inputs.items()})
    return {f: out[f].numpy() for f in OUTPUT_FIELDS[head] if f in out and out[f] is not None}
