"""minibert: DistilBERT inference in plain NumPy (+ Numba kernels), no torch at run time.

    import minibert
    minibert.classify(["I love this!", "I hate this."])

or step by step, as with transformers:

    tok = minibert.AutoTokenizer.from_pretrained(checkpoint)
    inputs = tok(texts, padding=True, truncation=True, return_tensors="np")
    model = minibert.AutoModelForSequenceClassification.from_pretrained(checkpoint)
    probs = minibert.softmax(model(**inputs).logits, axis=-1)
    labels = [model.config.id2label[i] for i in probs.argmax(-1)]
"""

from .config import DistilBertConfig
from .hub import DEFAULT_CHECKPOINT, DEFAULT_REVISION, CheckpointNotFoundError
from .kernels import softmax
from .modeling import (
    AutoModel,
    AutoModelForSequenceClassification,
    BaseModelOutput,
    DistilBertForSequenceClassification,
    DistilBertModel,
    SequenceClassifierOutput,
)
from .pipeline import TextClassificationPipeline, classify, pipeline
from .tokenizer import AutoTokenizer, BatchEncoding, DistilBertTokenizer

__version__ = "0.1.0"

__all__ = [
    "AutoModel",
    "AutoModelForSequenceClassification",
    "AutoTokenizer",
    "BaseModelOutput",
    "BatchEncoding",
    "CheckpointNotFoundError",
    "DEFAULT_CHECKPOINT",
    "DEFAULT_REVISION",
    "DistilBertConfig",
    "DistilBertForSequenceClassification",
    "DistilBertModel",
    "DistilBertTokenizer",
    "SequenceClassifierOutput",
    "TextClassificationPipeline",
    "classify",
    "pipeline",
    "softmax",
]
