"""Drawing the splits: string lengths, fresh strings, padding, and the length bands.

Every split holds distinct draws from one seeded generator, in a fixed order (train, val, then
the test bands), so one seed gives the same splits every time. No string of val or test occurs
in train, and none of test in val: a held-out string that is already known is drawn again.
"""

from collections.abc import Callable

import numpy as np

from rnnlab.plugin import ConfigError, Split

from .language import dyck_word, matched_tags, next_sets, random_string

TRIES_PER_STRING = 100  # draws allowed per held-out string before giving up (plus 1000)


def allowed_lengths(lo: int, hi: int, objective: str) -> np.ndarray:
    """The string lengths in ``[lo, hi]`` the objective can use: Dyck words have even lengths."""
    lengths = np.arange(max(lo, 1), hi + 1)
    return lengths[lengths % 2 == 0] if objective == "next" else lengths


def bands(top: int, width: int) -> list[tuple[int, int]]:
    """The length bands ``[1, width], [width + 1, 2 width], ...`` up to ``top`` (the last one
    ends at ``top``)."""
    return [(lo, min(lo + width - 1, top)) for lo in range(1, top + 1, width)]


def band_name(lo: int, hi: int) -> str:
    return f"acc_len_{lo}_{hi}"


def sampler(objective: str, pairs: int) -> Callable[[int, np.random.Generator], np.ndarray]:
    """Strings the objective trains on: Dyck words (next) or any bracket string (matched)."""
    make = dyck_word if objective == "next" else random_string
    return lambda length, rng: make(int(length), pairs, rng)


def draw(
    n: int,
    lengths: np.ndarray,
    sample,
    rng: np.random.Generator,
    seen: set[bytes],
    what: str,
    key: str,
) -> list[np.ndarray]:
    """``n`` strings with lengths uniform over ``lengths``, none of them in ``seen``.

    Raises a ConfigError naming ``key`` when ``TRIES_PER_STRING * n + 1000`` draws cannot find
    enough strings that are not in ``seen`` (short lengths hold few distinct strings)."""
    out: list[np.ndarray] = []
    tries, budget = 0, TRIES_PER_STRING * n + 1000
    while len(out) < n:
        if tries >= budget:
            raise ConfigError(
                f"cannot draw {n} {what} strings of lengths {lengths[0]}..{lengths[-1]} that are "
                f"not already in an earlier split (found {len(out)} in {tries} draws); use fewer "
                f"or longer strings",
                table="task",
                key=key,
            )
        for length in rng.choice(lengths, max(n - len(out), 32)):
            tries += 1
            s = sample(length, rng)
            if s.astype(np.uint8).tobytes() not in seen:
                out.append(s)
                if len(out) == n:
                    break
    return out


def keys(strings: list[np.ndarray]) -> set[bytes]:
    return {s.astype(np.uint8).tobytes() for s in strings}


def encode(strings: list[np.ndarray], pairs: int, objective: str) -> Split:
    """Pad the strings into a time-major Split with lengths.

    x ``[T, N, 2k]``: one-hot symbols, zeros after each string's end. y, next: ``[T, N, 2k+1]``
    0/1 next-symbol sets; matched: ``[T, N]`` tags. Targets after a string's end are 0 (the core
    ignores them)."""
    lengths = np.array([len(s) for s in strings], np.int64)
    T, N = int(lengths.max()), len(strings)
    x = np.zeros((T, N, 2 * pairs))
    y = np.zeros((T, N, 2 * pairs + 1)) if objective == "next" else np.zeros((T, N), np.int64)
    for n, s in enumerate(strings):
        steps = np.arange(len(s))
        x[steps, n, s] = 1.0
        y[: len(s), n] = next_sets(s, pairs) if objective == "next" else matched_tags(s, pairs)
    return Split(x, y, lengths)
