"""The vocabulary: the sorted set of characters of the corpus, and one-hot encoding."""

from __future__ import annotations

import numpy as np

from rnnlab.plugin import RnnlabError


class Vocabulary:
    """Characters <-> indices. Index ``i`` is the ``i``-th character in code-point order."""

    def __init__(self, chars):
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def of(cls, text: str) -> Vocabulary:
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str, what: str = "text") -> np.ndarray:
        """Indices of the characters of ``text``; a character outside the vocabulary is an
        error naming it (and ``what`` holds it) and listing the vocabulary."""
        try:
            return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as exc:
            raise RnnlabError(
                f"character {exc.args[0]!r} of the {what} is not in the "
                f"vocabulary of {len(self)} characters: {self.shown()}"
            ) from None

    def decode(self, indices) -> str:
        return "".join(self.chars[i] for i in indices)

    def shown(self) -> str:
        """The vocabulary, readable: escapes for whitespace and control characters."""
        return " ".join(repr(c)[1:-1] if c != " " else "' '" for c in self.chars)


def one_hot(indices: np.ndarray, size: int) -> np.ndarray:
    """``x[..., k] = 1`` where ``k = indices[...]``, else 0 (uint8: the core casts to the
    model's dtype)."""
    out = np.zeros((*indices.shape, size), dtype=np.uint8)
    np.put_along_axis(out, indices[..., None], 1, axis=-1)
    return out
