"""The copy-memory sequences as symbol codes, their one-hot encoding, and distinct held-out draws.

Codes: 0 is the blank, ``1 .. S`` the data symbols, ``S + 1`` the delimiter (inputs only). A
sequence is ``T + 2K`` steps: the ``K`` data symbols, ``T - 1`` blanks, the delimiter, ``K``
blanks. Its targets are blanks for the first ``T + K`` steps, then the ``K`` data symbols.
"""

import numpy as np

from rnnlab.plugin import ConfigError, Split

TRIES_PER_SEQUENCE = 100  # draws allowed per held-out sequence before giving up (plus 1000)


def steps(length: int, recall: int) -> int:
    """Steps per sequence: ``T + 2K``."""
    return length + 2 * recall


def draw_symbols(n: int, recall: int, symbols: int, rng: np.random.Generator) -> np.ndarray:
    """``[n, K]`` data symbols, each uniform over ``1 .. S``."""
    return rng.integers(1, symbols + 1, (n, recall))


def distinct_symbols(
    n: int, recall: int, symbols: int, rng: np.random.Generator, seen: set[bytes], key: str
) -> np.ndarray:
    """``[n, K]`` data symbols, no row of them in ``seen`` nor twice; adds them to ``seen``.

    Raises a ConfigError naming ``key`` when ``TRIES_PER_SEQUENCE * n + 1000`` draws do not find
    enough (few symbols and a short recall hold few distinct sequences)."""
    rows: list[np.ndarray] = []
    tries, budget = 0, TRIES_PER_SEQUENCE * n + 1000
    while len(rows) < n:
        if tries >= budget:
            raise ConfigError(
                f"cannot draw {n} sequences of {recall} symbols from {symbols} that are not in "
                f"an earlier split (found {len(rows)} in {tries} draws); use more symbols, a "
                f"longer recall or fewer sequences",
                table="task",
                key=key,
            )
        for row in draw_symbols(max(n - len(rows), 32), recall, symbols, rng):
            tries += 1
            k = row.astype(np.uint8).tobytes()
            if k not in seen:
                seen.add(k)
                rows.append(row)
                if len(rows) == n:
                    break
    return np.stack(rows)


def input_codes(data: np.ndarray, length: int, symbols: int) -> np.ndarray:
    """``[T + 2K, n]`` input codes of the sequences whose data symbols are ``data [n, K]``."""
    n, recall = data.shape
    codes = np.zeros((steps(length, recall), n), np.int64)
    codes[:recall] = data.T
    codes[recall + length - 1] = symbols + 1  # the delimiter, after T - 1 blanks
    return codes


def target_codes(data: np.ndarray, length: int) -> np.ndarray:
    """``[T + 2K, n]`` target classes: blanks, then the data symbols in the last ``K`` steps."""
    n, recall = data.shape
    y = np.zeros((steps(length, recall), n), np.int64)
    y[length + recall :] = data.T
    return y


def one_hot(codes: np.ndarray, size: int) -> np.ndarray:
    """``[T, n, size]`` float64 one-hot vectors of ``codes [T, n]``."""
    return np.eye(size)[codes]


def encode(data: np.ndarray, length: int, symbols: int) -> Split:
    """The Split of the sequences whose data symbols are ``data [n, K]``."""
    x = one_hot(input_codes(data, length, symbols), symbols + 2)
    return Split(x, target_codes(data, length))
