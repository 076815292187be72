"""DistilBERT in NumPy, top to bottom.

DistilBERT (Sanh et al., 2019) is BERT with half the layers and no token-type embeddings or
pooler. A forward pass is:

    input_ids [B, T]
      -> embeddings: word vector + position vector, LayerNorm             [B, T, C]
      -> n_layers x transformer block (post-LN):
             x = LayerNorm(x + SelfAttention(x))                          [B, T, C]
             x = LayerNorm(x + FFN(x)),  FFN = lin2(GELU(lin1(x)))        [B, T, C]
      -> last_hidden_state                                                [B, T, C]
    sequence classification adds a head on the first ([CLS]) token:
      -> classifier(ReLU(pre_classifier(h[:, 0])))                        [B, L]
    the other heads (masked LM, token classification, question answering) read every token's vector
    (see "BERT's pooler and the task heads" below).

BERT runs this same encoder. Its checkpoint keys are renamed to DistilBERT's at load (loading.py);
it adds a learned vector per token type (segment A/B) to the embeddings, and a pooler
tanh(dense(h[:, 0])) that its sequence-classification head reads instead of pre_classifier + ReLU.

Shapes: B batch, T tokens, C = dim, H = n_heads, D = C // H (head size), F = hidden_dim, L = labels.

Parameter names equal the checkpoint keys of Hugging Face's modeling_distilbert.py (`q_lin`,
`sa_layer_norm`, `ffn.lin1`, `pre_classifier`, ...), so loading is a dictionary walk. Linear
weights are stored as torch stores them, (out, in), hence `x @ weight.T`.

The hot steps (linear, LayerNorm, GELU, attention softmax) come from `ops`, the backend chosen in
kernels.py: the NumPy reference or the Numba kernels. Everything else is plain NumPy. Every step
keeps the dtype of the weights: float32, or float64 for the exact reference mode.

This file is only the architecture. Checking and loading a checkpoint is in loading.py, the
transformers-style classes around these functions are in modeling.py.
"""

from __future__ import annotations

import numpy as np

from .config import DistilBertConfig
from .kernels import Ops

Params = dict  # a nested dict of arrays, shaped like the checkpoint's key tree


# ---------------------------------------------------------------------------------------------
# The architecture: one pure function per step.


def linear(x: np.ndarray, p: Params, ops: Ops) -> np.ndarray:
    # [..., n_in] -> [..., n_out]: x @ weight.T + bias, with weight [n_out, n_in] as torch stores it
    out = ops.linear(x.reshape(-1, x.shape[-1]), p["weight"], p["bias"])
    return out.reshape(*x.shape[:-1], -1)


def embeddings(
    input_ids: np.ndarray, p: Params, eps: float, ops: Ops, token_type_ids: np.ndarray | None = None
) -> np.ndarray:
    # [B, T] -> [B, T, C]: a learned vector per token id plus one per position, then LayerNorm.
    T = input_ids.shape[1]
    x = p["word_embeddings"]["weight"][input_ids]
    if "token_type_embeddings" in p:  # BERT: plus a vector per token type [B, T] (0 = first text, 1 = pair)
        types = np.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        x = x + p["token_type_embeddings"]["weight"][types]
    x = x + p["position_embeddings"]["weight"][:T]
    return ops.layer_norm(x, p["LayerNorm"]["weight"], p["LayerNorm"]["bias"], eps)


def attention_mask_bias(attention_mask: np.ndarray, dtype: np.dtype) -> np.ndarray:
    # [B, T] of 1 (real token) / 0 (padding) -> [B, T] additive bias: 0 or the dtype's most negative
    # number (not -inf, so a fully padded row gives no NaN), added to the scores of every query, so
    # no token attends to padding.
    return np.where(attention_mask == 1, 0, np.finfo(dtype).min).astype(dtype)


def self_attention(
    x: np.ndarray, mask_bias: np.ndarray, p: Params, n_heads: int, ops: Ops
) -> tuple[np.ndarray, np.ndarray]:
    # [B, T, C] -> [B, T, C], and the attention weights [B, H, T, T] (output_attentions)
    B, T, C = x.shape
    D = C // n_heads

    def split_heads(t):  # [B, T, C] -> [B, H, T, D]
        return t.reshape(B, T, n_heads, D).transpose(0, 2, 1, 3)

    q = split_heads(linear(x, p["q_lin"], ops))
    k = split_heads(linear(x, p["k_lin"], ops))
    v = split_heads(linear(x, p["v_lin"], ops))
    scores = q @ k.transpose(0, 1, 3, 2)  # [B, H, T, T]: query t vs key s
    weights = ops.attention_softmax(scores, D**-0.5, mask_bias)  # softmax(scores/sqrt(D) + mask), rows sum to 1
    heads = weights @ v  # [B, H, T, D]: weighted mix of the values
    merged = heads.transpose(0, 2, 1, 3).reshape(B, T, C)  # [B, T, C]: heads side by side
    return linear(merged, p["out_lin"], ops), weights


def ffn(x: np.ndarray, p: Params, activation: str, ops: Ops) -> np.ndarray:
    # [B, T, C] -> [B, T, F] -> [B, T, C], applied to each token on its own
    act = ops.gelu if activation == "gelu" else ops.relu
    return linear(act(linear(x, p["lin1"], ops)), p["lin2"], ops)


def transformer_block(
    x: np.ndarray, mask_bias: np.ndarray, p: Params, cfg: DistilBertConfig, ops: Ops
) -> tuple[np.ndarray, np.ndarray]:
    # [B, T, C] -> [B, T, C] (and the block's attention weights [B, H, T, T]);
    # post-LN: the residual sum is normalised (BERT style, not GPT-2's pre-LN)
    def norm(t, q):
        return ops.layer_norm(t, q["weight"], q["bias"], cfg.layer_norm_eps)

    attended, weights = self_attention(x, mask_bias, p["attention"], cfg.n_heads, ops)
    x = norm(x + attended, p["sa_layer_norm"])
    x = norm(x + ffn(x, p["ffn"], cfg.activation, ops), p["output_layer_norm"])
    return x, weights


def distilbert(
    input_ids: np.ndarray,
    attention_mask: np.ndarray,
    p: Params,
    cfg: DistilBertConfig,
    ops: Ops,
    output_hidden_states: bool = False,
    output_attentions: bool = False,
    token_type_ids: np.ndarray | None = None,
) -> tuple[np.ndarray, list[np.ndarray] | None, list[np.ndarray] | None]:
    # [B, T] ids, [B, T] mask -> [B, T, C] last_hidden_state; on request also every block's input and
    # output (embeddings + one per layer, [B, T, C] each) and every block's attention weights [B, H, T, T].
    # BERT too (token_type_ids [B, T] are only read when the checkpoint has token-type embeddings).
    x = embeddings(input_ids, p["embeddings"], cfg.layer_norm_eps, ops, token_type_ids)
    mask_bias = attention_mask_bias(attention_mask, x.dtype)
    hidden_states = [x] if output_hidden_states else None
    attentions = [] if output_attentions else None
    for i in range(cfg.n_layers):
        x, weights = transformer_block(x, mask_bias, p["transformer"]["layer"][str(i)], cfg, ops)
        if output_hidden_states:
            hidden_states.append(x)
        if output_attentions:
            attentions.append(weights)
    return x, hidden_states, attentions


def classification_head(hidden: np.ndarray, p: Params, ops: Ops) -> np.ndarray:
    # [B, T, C] -> [B, L]: the [CLS] token's final vector summarises the sequence
    cls = hidden[:, 0]  # [B, C]
    return linear(ops.relu(linear(cls, p["pre_classifier"], ops)), p["classifier"], ops)


# ---------------------------------------------------------------------------------------------
# BERT's pooler and the task heads. Each reads the encoder's last_hidden_state [B, T, C]; the
# names are DistilBERT's (loading.py renames BERT's: cls.predictions.* -> vocab_*).


def pooler(hidden: np.ndarray, p: Params, ops: Ops) -> np.ndarray:
    # [B, T, C] -> [B, C]: BERT's pooler_output, tanh(dense(h[:, 0])), trained on next-sentence prediction
    return np.tanh(linear(hidden[:, 0], p["dense"], ops))


def bert_classification_head(hidden: np.ndarray, p: Params, ops: Ops) -> np.ndarray:
    # [B, T, C] -> [B, L]: BERT classifies the pooled [CLS] vector (DistilBERT: pre_classifier + ReLU)
    return linear(pooler(hidden, p["pooler"], ops), p["classifier"], ops)


def masked_lm_head(hidden: np.ndarray, p: Params, activation: str, eps: float, ops: Ops) -> np.ndarray:
    # [B, T, C] -> [B, T, V]: a score for every vocabulary word at every position. vocab_projector's
    # weight is usually the word embedding matrix itself (tied), so the score is a dot product with
    # each word's input vector.
    act = ops.gelu if activation == "gelu" else ops.relu
    x = act(linear(hidden, p["vocab_transform"], ops))
    x = ops.layer_norm(x, p["vocab_layer_norm"]["weight"], p["vocab_layer_norm"]["bias"], eps)
    return linear(x, p["vocab_projector"], ops)


def token_classification_head(hidden: np.ndarray, p: Params, ops: Ops) -> np.ndarray:
    # [B, T, C] -> [B, T, L]: one label score per token (named entities, parts of speech)
    return linear(hidden, p["classifier"], ops)


def question_answering_head(hidden: np.ndarray, p: Params, ops: Ops) -> tuple[np.ndarray, np.ndarray]:
    # [B, T, C] -> start and end logits [B, T] each: how likely the answer span starts/ends at each token
    logits = linear(hidden, p["qa_outputs"], ops)  # [B, T, 2]
    return np.ascontiguousarray(logits[..., 0]), np.ascontiguousarray(logits[..., 1])


def sinusoidal_position_embeddings(n_pos: int, dim: int) -> np.ndarray:
    # [n_pos, C]: fixed sin/cos waves (Vaswani et al.), for configs with sinusoidal_pos_embds=True.
    # Same float64 formula as transformers' create_sinusoidal_embeddings, stored in float32 as there
    # (so the float64 mode, like transformers' model.double(), upcasts these float32 values).
    pos = np.arange(n_pos, dtype=np.float64)[:, None]
    j = np.arange(dim)
    angle = pos / np.power(10000, 2 * (j // 2) / dim)
    out = np.empty((n_pos, dim), dtype=np.float32)
    out[:, 0::2] = np.sin(angle[:, 0::2])
    out[:, 1::2] = np.cos(angle[:, 1::2])
    return out
