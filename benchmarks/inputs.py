"""Inputs: batch shapes, random word-piece ids with [CLS]/[SEP], and 64 realistic sentences."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLS, SEP, PAD = 101, 102, 0
FIRST_WORD_ID = 1996  # below are [unused], special tokens, single characters and punctuation


@dataclass(frozen=True)
class Shape:
    batch: int
    seq: int
    padded: bool = False

    @property
    def label(self) -> str:
        return f"{self.batch}×{self.seq}" + (" padded" if self.padded else "")

    @property
    def tokens(self) -> int:
        return self.batch * self.seq


def parse_shapes(spec: str) -> list[Shape]:
    """"1x16,8x128p" -> shapes; a trailing "p" means a padded batch of mixed lengths."""
    shapes = []
    for part in spec.split(","):
        part = part.strip().lower()
        padded = part.endswith("p")
        try:
            b, t = part.removesuffix("p").split("x")
            shape = Shape(int(b), int(t), padded)
        except ValueError:
            raise ValueError(f"shape {part!r} is not BxT or BxTp (e.g. 8x128p)") from None
        if shape.batch < 1 or not 2 <= shape.seq <= 512:
            raise ValueError(f"shape {part!r}: batch must be >= 1 and tokens in 2..512")
        shapes.append(shape)
    return shapes


def make_inputs(
    batch: int, seq: int, padded: bool, rng: np.random.Generator, vocab_size: int = 30522
) -> tuple[np.ndarray, np.ndarray]:
    """Random word-piece ids [B, T], [CLS] first and [SEP] last; padded: mixed lengths, the longest = seq."""
    ids = rng.integers(FIRST_WORD_ID, vocab_size, size=(batch, seq), dtype=np.int64)
    lengths = np.full(batch, seq)
    if padded:
        lengths = rng.integers(max(2, seq // 8), seq + 1, size=batch)
        lengths[0] = seq
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    ids[:, 0] = CLS
    ids[np.arange(batch), lengths - 1] = SEP
    ids[mask == 0] = PAD
    return ids, mask


# 64 realistic sentences for the end-to-end pipeline benchmark: reviews of films, products, places.
SENTENCES = [
    "I loved this movie.",
    "Terrible service, we waited an hour for cold food.",
    "The battery lasts two full days, which is more than I expected from a phone this thin.",
    "Meh.",
    "Honestly one of the best concerts I have been to in years; the encore alone was worth the ticket.",
    "The hotel room was clean but the walls were so thin we could hear every word next door.",
    "Great value for money.",
    "It broke after a week and customer support never answered my emails.",
    "The plot meanders for an hour, then the last twenty minutes are tense, funny and unexpectedly moving.",
    "Not bad, not great.",
    "The new update made the app noticeably slower on my older tablet.",
    "Friendly staff, spotless rooms, and the breakfast buffet had fresh fruit every single morning.",
    "I would not recommend this to anyone.",
    "The soundtrack is gorgeous, but the dialogue is so clumsy that it pulled me out of the story.",
    "Fast shipping and the package arrived in perfect condition.",
    "A slow, patient film that rewards attention; not for everyone, but it stayed with me for days.",
    "The keyboard feels cheap and the trackpad misses clicks.",
    "Absolutely delightful!",
    "We booked the sea-view suite and got a room facing the parking lot, with no apology.",
    "This blender crushes ice in seconds and is surprisingly quiet.",
    "The first season was brilliant; the second one lost its way completely.",
    "I have mixed feelings about the ending.",
    "Overpriced, underwhelming, and the portions were tiny.",
    "The guide knew every story behind every building and made the three-hour walk feel like twenty minutes.",
    "Works exactly as described.",
    "The instructions were missing, and two of the screws did not fit the holes they were meant for.",
    "My kids watched it three times in one weekend and still ask for more.",
    "A forgettable sequel to a film that did not need one.",
    "The coffee is strong, the pastries are fresh, and the barista remembers your name.",
    "Setup took five minutes.",
    "After the firmware update the camera keeps disconnecting from the app, which makes it useless.",
    "The acting is superb across the board, especially from the young lead in her first role.",
    "Too loud, too long, too much.",
    "Comfortable seats, clean trains and the connection left exactly on time.",
    "It is fine for the price, but do not expect it to last more than a season.",
    "The museum's new wing is a triumph: bright, airy, and thoughtfully curated.",
    "I returned it the next day.",
    "The story is predictable, yet the performances make it worth watching anyway.",
    "Our flight was cancelled without notice and the airline offered no help with rebooking.",
    "Best pizza in town, hands down.",
    "The headphones are comfortable for hours, and the noise cancelling works well on planes.",
    "Boring.",
    "The recipe was easy to follow and the cake came out moist and perfectly sweet.",
    "Despite the hype, the game is a buggy mess that crashes every half hour.",
    "A warm, funny and honest book about growing up in a small town.",
    "The waiter was rude and the bill included items we never ordered.",
    "Solid build quality, though the charger gets quite hot.",
    "I expected more from such an acclaimed director.",
    "The hike was steep but the view from the top made every step worth it.",
    "The software is powerful but the interface feels like it was designed twenty years ago.",
    "Five stars, would buy again.",
    "The documentary is informative without ever being preachy, and the archival footage is stunning.",
    "Customer service replaced the faulty unit within two days, no questions asked.",
    "The room smelled of smoke even though it was supposed to be non-smoking.",
    "An instant classic.",
    "The vacuum picks up pet hair easily, but the bin is small and needs emptying often.",
    "I fell asleep halfway through.",
    "Every dish was beautifully presented, and the chef came out to ask how we liked the meal.",
    "The sizing runs small, so order one size up.",
    "The concert started two hours late and the sound was muddy from where we stood.",
    "A charming little cafe with the best hot chocolate I have ever had.",
    "The novel's middle section drags, but the final chapters are breathtaking.",
    "Do not waste your money.",
    "The tent kept us dry through a night of heavy rain and packs down smaller than I expected.",
]
assert len(SENTENCES) == 64
