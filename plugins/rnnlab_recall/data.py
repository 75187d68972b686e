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


def batch(
    count: int, n: int, pairs: int, vocab: int, power_a: float, noise: bool, rng
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` sequences of length ``n``: input codes ``[count, n]``, target codes
    ``[count, n]`` and the query steps ``[count, D]`` (the query of pair ``i`` is at
    ``queries[:, i]``, its key at step ``2i``).

    Keys and values are uniform draws without replacement (the first ``D`` of a random
    permutation); the gaps are weighted draws without replacement, drawn at once as the ``D``
    largest of ``log P(g)`` plus Gumbel noise, in decreasing order (the same distribution as
    drawing them one after another, each from the ones left)."""
    keys, values = vocabularies(vocab)
    k = keys[rng.random((count, len(keys))).argsort(axis=1)[:, :pairs]]
    v = values[rng.random((count, len(values))).argsort(axis=1)[:, :pairs]]
    space = (n - 2 * pairs) // 2
    scores = np.log(gap_probabilities(space, power_a))[None, :] + rng.gumbel(size=(count, space))
    gaps = np.argsort(-scores, axis=1, kind="stable")[:, :pairs]
    codes = np.zeros((count, n), np.int64)
    if noise:
        codes[:, 2 * pairs :] = rng.integers(values[0], values[-1] + 1, (count, n - 2 * pairs))
    codes[:, 0 : 2 * pairs : 2], codes[:, 1 : 2 * pairs : 2] = k, v
    queries = 2 * pairs + 2 * gaps
    np.put_along_axis(codes, queries, k, axis=1)
    y = np.zeros((count, n), np.int64)
    np.put_along_axis(y, queries, v, axis=1)
    return codes, y, queries


def sequence(n: int, pairs: int, vocab: int, power_a: float, noise: bool, rng):
    """One sequence of length ``n``: :func:`batch` of one, as ``[n]``, ``[n]``, ``[D]``."""
    codes, y, queries = batch(1, n, pairs, vocab, power_a, noise, rng)
    return codes[0], y[0], queries[0]


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
    allowed = allowed_lengths(o["min_length"], o["length"])
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
        need = count - len(out)
        lengths = rng.choice(allowed, need)
        drawn: list = [None] * need
        for n in np.unique(lengths).tolist():
            where = np.flatnonzero(lengths == n)
            parts = batch(len(where), n, o["pairs"], o["vocab"], o["power_a"], o["noise"], rng)
            for j, i in enumerate(where.tolist()):
                drawn[i] = (parts[0][j], parts[1][j], parts[2][j])
        for s in drawn:
            tries += 1
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
    codes = np.zeros((T, N), np.int64)
    y = np.zeros((T, N), np.int64)
    for j, (c, target, _) in enumerate(drawn):
        codes[: len(c), j] = c
        y[: len(c), j] = target
    x = np.eye(vocab)[codes]
    x[np.arange(T)[:, None] >= lengths[None, :]] = 0.0
    return Split(x, y, lengths)


def distances(queries: np.ndarray) -> np.ndarray:
    """``[N, D]`` steps from each key in the context (step ``2i``) to its query."""
    return queries - 2 * np.arange(queries.shape[1])[None, :]
