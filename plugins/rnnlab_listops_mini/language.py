"""ListOps expressions: drawing them as in LRA's generator, their tokens and their value.

An expression is a digit, or an operator applied to 2 .. ``max_args`` expressions, written
``[MAX 2 9 [MIN 4 7 ] 0 ]``: the operator token opens the list, ``]`` closes it. Operators:
MIN, MAX, MED (the median, rounded down to an integer as ``int(np.median(...))``) and SM (the
sum modulo 10). Tokens are codes: the digits 0-9 are 0-9, then the operators and ``]``.
"""

import numpy as np

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
END = "]"
TOKENS = tuple(str(d) for d in range(10)) + OPERATORS + (END,)
CODE = {t: i for i, t in enumerate(TOKENS)}
VALUE_P = 0.25  # LRA's: below the depth limit a node is an operator with this probability


def tree(depth: int, max_depth: int, max_args: int, rng: np.random.Generator):
    """A random expression as nested tuples ``(operator, [arguments])`` or an int: below
    ``max_depth`` a node is an operator with probability VALUE_P (with 2 .. max_args
    arguments, uniform), else a digit (uniform); at ``max_depth`` always a digit."""
    r = rng.random() if depth < max_depth else 1.0
    if r > VALUE_P:
        return int(rng.integers(10))
    count = int(rng.integers(2, max_args + 1))
    args = [tree(depth + 1, max_depth, max_args, rng) for _ in range(count)]
    return (OPERATORS[int(rng.integers(len(OPERATORS)))], args)


def tokens(t) -> list[str]:
    if isinstance(t, int):
        return [str(t)]
    op, args = t
    return [op, *(tok for a in args for tok in tokens(a)), END]


def value(t) -> int:
    if isinstance(t, int):
        return t
    op, args = t
    vals = [value(a) for a in args]
    if op == "[MIN":
        return min(vals)
    if op == "[MAX":
        return max(vals)
    if op == "[MED":
        return int(np.median(vals))
    return sum(vals) % 10


def depth(t) -> int:
    """Operators nested at the deepest point: 0 for a digit, 1 for ``[MAX 1 2 ]``."""
    return 0 if isinstance(t, int) else 1 + max(depth(a) for a in t[1])


def parse(text: str):
    """The expression written in ``text`` (tokens separated by spaces)."""
    stack: list = [("", [])]
    for tok in text.split():
        if tok in OPERATORS:
            stack.append((tok, []))
        elif tok == END:
            done = stack.pop()
            stack[-1][1].append(done)
        else:
            stack[-1][1].append(int(tok))
    ((_, (top,)),) = stack
    return top
