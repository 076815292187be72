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

from .config import AutoConfig, BertConfig, DistilBertConfig
from .corpus import classify_file
from .embeddings import FeatureExtractionPipeline, SentenceEncoder, encode
from .hub import DEFAULT_CHECKPOINT, DEFAULT_REVISION, CheckpointNotFoundError
from .kernels import softmax
from .modeling import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    BaseModelOutput,
    BaseModelOutputWithPooling,
    BertForMaskedLM,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    DistilBertForMaskedLM,
    DistilBertForQuestionAnswering,
    DistilBertForSequenceClassification,
    DistilBertForTokenClassification,
    DistilBertModel,
    MaskedLMOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from .pipeline import TextClassificationPipeline, classify, pipeline
from .qa import QuestionAnsweringPipeline
from .tasks import FillMaskPipeline, TokenClassificationPipeline
from .tokenizer import AutoTokenizer, BatchEncoding, DistilBertTokenizer

__version__ = "0.1.0"

__all__ = [
    "AutoConfig",
    "AutoModel",
    "AutoModelForMaskedLM",
    "AutoModelForQuestionAnswering",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "BaseModelOutputWithPooling",
    "BertConfig",
    "BertForMaskedLM",
    "BertForQuestionAnswering",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertModel",
    "DistilBertForMaskedLM",
    "DistilBertForQuestionAnswering",
    "DistilBertForTokenClassification",
    "MaskedLMOutput",
    "QuestionAnsweringModelOutput",
    "TokenClassifierOutput",
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
    "FeatureExtractionPipeline",
    "FillMaskPipeline",
    "QuestionAnsweringPipeline",
    "SentenceEncoder",
    "TokenClassificationPipeline",
    "encode",
    "SequenceClassifierOutput",
    "TextClassificationPipeline",
    "classify",
    "classify_file",
    "pipeline",
    "softmax",
]
