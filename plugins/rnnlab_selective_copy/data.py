"""Selective-copying sequences as codes, their one-hot encoding, and distinct held-out draws.

Codes: 0 is the noise token, ``1 .. S`` the data tokens, ``S + 1`` the marker (inputs only). A
sequence has ``L + M`` slots, ``M`` of them (its positions, increasing) holding the data tokens
and the rest noise, then ``M`` markers: ``L + 2M`` steps. Its targets are 0 (noise) for the
first ``L + M`` steps, then the ``M`` tokens in the order they appeared.
"""

import numpy as np

from rnnlab.plugin import ConfigError, Split

TRIES_PER_SEQUENCE = 100  # draws allowed per held-out sequence before giving up (plus 1000)


def steps(padding: int, tokens: int) -> int:
    """Steps per sequence: ``L + 2M``."""
    return padding + 2 * tokens


def draw(
    n: int, padding: int, tokens: int, symbols: int, scatter: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``positions [n, M]`` (increasing slots in ``[0, L + M)``: a uniform ``M``-subset when
    ``scatter``, else the first ``M`` slots) and ``values [n, M]`` (uniform over ``1 .. S``)."""
    slots = padding + tokens
    if scatter:
        positions = np.sort(rng.random((n, slots)).argsort(axis=1)[:, :tokens], axis=1)
    else:
        positions = np.tile(np.arange(tokens), (n, 1))
    return positions, rng.integers(1, symbols + 1, (n, tokens))


def row_keys(positions: np.ndarray, values: np.ndarray) -> list[bytes]:
    """One byte string per sequence (its positions and tokens), to tell sequences apart."""
    both = np.concatenate([positions, values], axis=1).astype(np.int32)
    return [row.tobytes() for row in both]


def distinct(
    n: int,
    options: dict,
    rng: np.random.Generator,
    seen: set[bytes],
    key: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`draw` (with the task's ``options``) but no sequence in ``seen`` nor twice;
    adds them to ``seen``. Raises a ConfigError naming ``key`` when
    ``TRIES_PER_SEQUENCE * n + 1000`` draws do not find enough."""
    o = options
    positions, values = [], []
    tries, budget = 0, TRIES_PER_SEQUENCE * n + 1000
    while len(values) < n:
        if tries >= budget:
            raise ConfigError(
                f"cannot draw {n} sequences that are not in an earlier split (found "
                f"{len(values)} in {tries} draws); use more symbols, tokens or padding, or "
                f"fewer sequences",
                table="task",
                key=key,
            )
        p, v = draw(
            max(n - len(values), 32), o["padding"], o["tokens"], o["symbols"], o["scatter"], rng
        )
        for i, k in enumerate(row_keys(p, v)):
            tries += 1
            if k not in seen:
                seen.add(k)
                positions.append(p[i])
                values.append(v[i])
                if len(values) == n:
                    break
    return np.stack(positions), np.stack(values)


def input_codes(positions: np.ndarray, values: np.ndarray, padding: int, symbols: int):
    """``[L + 2M, n]`` input codes: the tokens at their positions, noise, then the markers."""
    n, tokens = values.shape
    codes = np.zeros((steps(padding, tokens), n), np.int64)
    np.put_along_axis(codes, positions.T, values.T, axis=0)
    codes[padding + tokens :] = symbols + 1
    return codes


def target_codes(values: np.ndarray, padding: int) -> np.ndarray:
    """``[L + 2M, n]`` target classes: noise, then the tokens in order at the marker steps."""
    n, tokens = values.shape
    y = np.zeros((steps(padding, tokens), n), np.int64)
    y[padding + tokens :] = values.T
    return y


def encode(positions: np.ndarray, values: np.ndarray, padding: int, symbols: int) -> Split:
    x = np.eye(symbols + 2)[input_codes(positions, values, padding, symbols)]
    return Split(x, target_codes(values, padding))


def distances(positions: np.ndarray, padding: int) -> np.ndarray:
    """``[n, M]`` steps from each token's slot to the step that recalls it."""
    tokens = positions.shape[1]
    return padding + tokens + np.arange(tokens)[None, :] - positions
