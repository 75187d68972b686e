"""Dyck-k: the strings, the next-symbol sets and the matched-bracket tags, on symbol codes.

A string over ``k`` pairs of brackets is an array of codes: ``0 .. k-1`` open a bracket of that
type, ``k .. 2k-1`` close one (code ``k + j`` closes type ``j``). ``END = 2k`` stands for the end
of the string; it is never an input, only a possible next symbol.
"""

import numpy as np

BRACKETS = "()[]{}<>"  # the text of pair j is BRACKETS[2j] + BRACKETS[2j + 1]
MAX_PAIRS = len(BRACKETS) // 2


def text(codes: np.ndarray, pairs: int) -> str:
    """The string as brackets: ``[0, 1, 1, 0, 3, 2]`` with 2 pairs is ``([])`` -> ``"([])"``."""
    return "".join(
        BRACKETS[2 * c] if c < pairs else BRACKETS[2 * (c - pairs) + 1] for c in codes.tolist()
    )


def dyck_word(length: int, pairs: int, rng: np.random.Generator) -> np.ndarray:
    """A Dyck word of even ``length``, uniform over all Dyck-``pairs`` words of that length.

    The shape is uniform by the cycle lemma: of the 2m+1 rotations of a shuffled sequence of m
    up-steps and m+1 down-steps exactly one stays >= 0 until its final step, the one that starts
    just after the first minimum of the prefix sums; dropping that final down-step leaves a Dyck
    path, and every path is reached from exactly 2m+1 sequences. Each matched pair then gets a
    type drawn uniformly from ``pairs``.
    """
    if length % 2:
        raise ValueError(f"a Dyck word has an even length, not {length}")
    m = length // 2
    steps = rng.permutation(np.r_[np.ones(m, np.int64), -np.ones(m + 1, np.int64)])
    first_min = int(np.argmin(np.cumsum(steps)))
    path = np.roll(steps, -(first_min + 1))[:-1]
    types = rng.integers(0, pairs, m)
    codes = np.empty(length, np.int64)
    stack, opened = [], 0
    for t, step in enumerate(path.tolist()):
        if step > 0:
            codes[t] = types[opened]
            stack.append(types[opened])
            opened += 1
        else:
            codes[t] = pairs + stack.pop()
    return codes


def random_string(length: int, pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Any string of ``length`` brackets, every symbol drawn uniformly (balanced or not)."""
    return rng.integers(0, 2 * pairs, length)


def next_sets(codes: np.ndarray, pairs: int) -> np.ndarray:
    """``[L, 2k+1]`` 0/1: after reading ``codes[:t+1]``, which symbols may come next in a Dyck
    word. Every opening bracket always may; the closing bracket of the innermost open pair may
    when one is open; END may when none is. ``codes`` must be a prefix of a Dyck word."""
    sets = np.zeros((len(codes), 2 * pairs + 1))
    sets[:, :pairs] = 1.0
    stack = []
    for t, c in enumerate(codes.tolist()):
        if c < pairs:
            stack.append(c)
        else:
            if not stack or stack.pop() != c - pairs:
                raise ValueError(f"not a prefix of a Dyck word: {text(codes, pairs)!r}")
        sets[t, pairs + stack[-1] if stack else 2 * pairs] = 1.0
    return sets


def matched_tags(codes: np.ndarray, pairs: int) -> np.ndarray:
    """``[L]`` int: 1 where the bracket has a partner, 0 where it has none.

    Left to right, a closing bracket pairs with the nearest earlier opening bracket that is still
    unpaired if that one has its type (both are then tagged 1); otherwise it stays unpaired and
    the open ones stay open. Opening brackets still unpaired at the end are tagged 0. Whether an
    opening bracket is paired depends on what comes after it: a model reading left to right can
    only guess, one that also reads right to left can count.
    """
    tags = np.zeros(len(codes), np.int64)
    stack = []  # positions of the unpaired opening brackets
    for t, c in enumerate(codes.tolist()):
        if c < pairs:
            stack.append(t)
        elif stack and codes[stack[-1]] == c - pairs:
            tags[stack.pop()] = 1
            tags[t] = 1
    return tags


def depth(codes: np.ndarray, pairs: int) -> int:
    """The largest number of brackets open at once (unpaired opening brackets, as in
    :func:`matched_tags`)."""
    deepest, stack = 0, []
    for c in codes.tolist():
        if c < pairs:
            stack.append(c)
            deepest = max(deepest, len(stack))
        elif stack and stack[-1] == c - pairs:
            stack.pop()
    return deepest
