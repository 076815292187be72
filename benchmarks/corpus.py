"""A deterministic mixed corpus: many short SST-2-like texts and some long reviews, shuffled.

What a classification service sees: mostly one-line opinions of 5-60 tokens, and now and then a
review of 100-512 tokens. Batched in input order (batch_size 32), almost every batch holds one long
review, so padding to the longest text makes most of the work padding; this is the workload that
shows what length-sorted and padding-free batching are worth.

Every word below is a single word piece of bert-base-uncased's vocab.txt and every punctuation mark
is its own token, so a text's token count ([CLS] and [SEP] included) is known without a tokenizer;
tests/test_benchmarks.py checks it against the real tokenizer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SUBJECTS = ["the film", "this movie", "the story", "its script", "the cast", "the director", "the plot",
            "the acting", "the ending", "the music", "every scene", "the characters", "the dialogue",
            "the camera work", "the second half", "the lead actor", "the whole thing", "this picture"]
VERBS = ["is", "feels", "seems", "remains", "becomes", "looks", "was", "stays"]
ADVERBS = ["very", "quite", "truly", "often", "rarely", "never", "always", "almost", "too", "so", "just",
           "really", "simply", "oddly"]
POSITIVE = ["funny", "smart", "moving", "charming", "beautiful", "brilliant", "warm", "clever", "honest",
            "fresh", "gentle", "wonderful", "powerful", "sweet", "bright", "touching", "sharp", "lovely"]
NEGATIVE = ["dull", "boring", "flat", "silly", "tired", "empty", "cheap", "weak", "slow", "awful", "bad",
            "stupid", "lazy", "cold", "messy", "long", "loud", "thin"]
CONNECTORS = ["and", "but", "yet", "while", "because", "although", "so", "though"]
EXTRAS = ["with a few good jokes", "despite the strong cast", "for most of its running time",
          "in the best possible way", "from start to finish", "until the very last scene",
          "even on a second viewing", "for a film of this kind", "without any real reason"]

SHORT_TOKENS = (5, 60)  # [CLS] + words and punctuation + [SEP]
LONG_TOKENS = (100, 512)


@dataclass(frozen=True)
class Corpus:
    texts: list[str]
    tokens: list[int]  # each text's token count with [CLS] and [SEP], as bert-base-uncased tokenizes it

    def __len__(self) -> int:
        return len(self.texts)

    def describe(self) -> str:
        short = sum(t <= SHORT_TOKENS[1] for t in self.tokens)
        return (f"{len(self)} texts ({short} of {SHORT_TOKENS[0]}-{SHORT_TOKENS[1]} tokens, {len(self) - short} of "
                f"{LONG_TOKENS[0]}-{LONG_TOKENS[1]}), {sum(self.tokens)} tokens in all")


def _clause(rng: random.Random) -> list[str]:
    words = rng.choice(SUBJECTS).split() + [rng.choice(VERBS)]
    if rng.random() < 0.6:
        words.append(rng.choice(ADVERBS))
    bank = POSITIVE if rng.random() < 0.5 else NEGATIVE
    words.append(rng.choice(bank))
    if rng.random() < 0.3:
        words += ["and", rng.choice(bank)]
    if rng.random() < 0.3:
        words += rng.choice(EXTRAS).split()
    return words


def _text(rng: random.Random, n_tokens: int, sentences: bool) -> str:
    """A text of exactly n_tokens tokens ([CLS] and [SEP] included); sentences: several, each ending in '.'."""
    items: list[str] = []  # words and punctuation marks, one token each
    while len(items) < n_tokens - 3:
        if items:
            items += [".", *_clause(rng)] if sentences and rng.random() < 0.5 else [",", rng.choice(CONNECTORS)]
        items += _clause(rng)
    items = items[: n_tokens - 3]
    while items and items[-1] in (",", "."):  # no ", ." or ". ." at the end: swap in a word
        items[-1] = rng.choice(POSITIVE + NEGATIVE)
    items.append(".")
    text = ""
    for item in items:
        text += item if item in (",", ".") or not text else " " + item
    return text


def mixed_corpus(n_short: int = 2000, n_long: int = 200, seed: int = 0) -> Corpus:
    """n_short texts of 5-60 tokens (most around 20, as in SST-2) and n_long reviews of 100-512, shuffled."""
    rng = random.Random(seed)
    lengths = [round(rng.triangular(*SHORT_TOKENS, 20)) for _ in range(n_short)]
    lengths += [rng.randint(*LONG_TOKENS) for _ in range(n_long)]
    rng.shuffle(lengths)
    texts = [_text(rng, n, sentences=n > SHORT_TOKENS[1]) for n in lengths]
    return Corpus(texts, lengths)
