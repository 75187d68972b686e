"""MQAR sequences as token codes: the key-value pairs, the queries at power-law gaps, padding.

Tokens: 0 is the blank; keys are ``1 .. V//2 - 1`` and values ``V//2 .. V - 1`` (``V`` the
vocabulary). A sequence of (even) length ``n`` with ``D`` pairs starts with the context
``k1 v1 k2 v2 ... kD vD`` (distinct keys, distinct values); the remaining ``n - 2D`` steps hold
the queries: key ``ki`` again at step ``2D + 2 g_i``, where the gaps ``g_1 .. g_D`` are distinct
draws from ``0 .. (n - 2D)/2 - 1`` with ``P(g) ~ a (g + 1)^(a - 1)`` (Zoology's power law: small
``a`` puts most queries soon after the context). Other steps hold blanks, or, with noise,
random values (never a key, so never mistaken for a query). The target is the value bound to
the key at each query step and the blank everywhere else.
"""

import numpy as np

from rnnlab.plugin import ConfigError, Split

TRIES_PER_SEQUENCE = 100  # draws allowed per held-out sequence before giving up (plus 1000)


def vocabularies(vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """The key tokens ``1 .. V//2 - 1`` and the value tokens ``V//2 .. V - 1``."""
    return np.arange(1, vocab // 2), np.arange(vocab // 2, vocab)


def gap_probabilities(space: int, power_a: float) -> np.ndarray:
    """``P(g)`` for ``g = 0 .. space - 1``: proportional to ``a (g + 1)^(a - 1)``."""
    p = power_a * np.arange(1, space + 1) ** (power_a - 1)
    return p / p.sum()


def allowed_lengths(min_length: int, length: int) -> np.ndarray:
    """The even lengths in ``[min_length, length]``."""
    lengths = np.arange(min_length, length + 1)
    return lengths[lengths % 2 == 0]


def sequence(
    n: int, pairs: int, vocab: int, power_a: float, noise: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sequence of length ``n``: input codes ``[n]``, target codes ``[n]`` and the query
    steps ``[D]`` (the query of pair ``i`` is at ``queries[i]``, its key at step ``2i``)."""
    keys, values = vocabularies(vocab)
    k = rng.choice(keys, pairs, replace=False)
    v = rng.choice(values, pairs, replace=False)
    space = (n - 2 * pairs) // 2
    gaps = rng.choice(space, pairs, replace=False, p=gap_probabilities(space, power_a))
    codes = np.zeros(n, np.int64)
    if noise:
        codes[2 * pairs :] = rng.choice(values, n - 2 * pairs)
    codes[0 : 2 * pairs : 2], codes[1 : 2 * pairs : 2] = k, v
    queries = 2 * pairs + 2 * gaps
    codes[queries] = k
    y = np.zeros(n, np.int64)
    y[queries] = v
    return codes, y, queries


def draw(
    count: int,
    options: dict,
    rng: np.random.Generator,
    seen: set[bytes] | None = None,
    key: str = "",
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``count`` sequences with lengths uniform over the allowed lengths. With ``seen``: none
    of them in ``seen`` nor twice (they are added to it); a ConfigError naming ``key`` when
    ``TRIES_PER_SEQUENCE * count + 1000`` draws do not find enough."""
    o = options
    lengths = allowed_lengths(o["min_length"], o["length"])
    out, tries, budget = [], 0, TRIES_PER_SEQUENCE * count + 1000
    while len(out) < count:
        if tries >= budget:
            raise ConfigError(
                f"cannot draw {count} sequences that are not in an earlier split (found "
                f"{len(out)} in {tries} draws); use a larger vocab, longer sequences or fewer "
                f"sequences",
                table="task",
                key=key,
            )
        tries += 1
        n = int(rng.choice(lengths))
        s = sequence(n, o["pairs"], o["vocab"], o["power_a"], o["noise"], rng)
        if seen is not None:
            k = s[0].astype(np.int32).tobytes()
            if k in seen:
                continue
            seen.add(k)
        out.append(s)
    return out


def encode(drawn: list, vocab: int) -> Split:
    """Pad the sequences into a time-major Split with lengths: x ``[T, N, V]`` one-hot (zeros
    after each end), y ``[T, N]`` (blanks after each end)."""
    lengths = np.array([len(codes) for codes, _, _ in drawn], np.int64)
    T, N = int(lengths.max()), len(drawn)
    x = np.zeros((T, N, vocab))
    y = np.zeros((T, N), np.int64)
    for j, (codes, target, _) in enumerate(drawn):
        x[np.arange(len(codes)), j, codes] = 1.0
        y[: len(codes), j] = target
    return Split(x, y, lengths)


def distances(queries: np.ndarray) -> np.ndarray:
    """``[N, D]`` steps from each key in the context (step ``2i``) to its query."""
    return queries - 2 * np.arange(queries.shape[1])[None, :]
