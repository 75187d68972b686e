"""Dyck-k strings, next-symbol sets and partner tags follow their definitions."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnlab_dyck.language import depth, dyck_word, matched_tags, next_sets, random_string, text


def codes(s: str, pairs: int) -> np.ndarray:
    opens, closes = "([{<"[:pairs], ")]}>"[:pairs]
    return np.array([opens.index(c) if c in opens else pairs + closes.index(c) for c in s])


def is_dyck(s: str) -> bool:
    """Reference: remove innermost pairs until nothing (balanced) or no change (not)."""
    while True:
        shorter = s.replace("()", "").replace("[]", "").replace("{}", "").replace("<>", "")
        if shorter == s:
            return s == ""
        s = shorter


@pytest.mark.parametrize("pairs", [1, 2, 4])
def test_dyck_words_are_balanced_and_use_every_pair_type(pairs):
    rng = np.random.default_rng(0)
    seen = set()
    for length in [2, 4, 10, 50, 100]:
        for _ in range(40):
            w = dyck_word(length, pairs, rng)
            assert len(w) == length and is_dyck(text(w, pairs))
            seen |= set(w.tolist())
    assert seen == set(range(2 * pairs))


def test_dyck_words_are_uniform_over_words_of_one_length():
    # Dyck-1 words of length 8: Catalan(4) = 14, each drawn with probability 1/14
    rng = np.random.default_rng(1)
    draws = [text(dyck_word(8, 1, rng), 1) for _ in range(14000)]
    words = {"".join(p) for p in itertools.product("()", repeat=8) if is_dyck("".join(p))}
    counts = {w: draws.count(w) for w in words}
    assert set(draws) == words and len(words) == 14
    assert all(abs(c - 1000) < 4 * np.sqrt(1000) for c in counts.values()), counts


def test_odd_length_is_refused():
    with pytest.raises(ValueError, match="even"):
        dyck_word(7, 1, np.random.default_rng(0))


def test_next_sets_by_hand():
    # columns: ( [ ) ] END
    got = next_sets(codes("([])(", 2), 2)
    want = [
        [1, 1, 1, 0, 0],  # after "(":     ")" may close
        [1, 1, 0, 1, 0],  # after "([":    "]" may close
        [1, 1, 1, 0, 0],  # after "([]":   ")" again
        [1, 1, 0, 0, 1],  # after "([])":  balanced, END may come
        [1, 1, 1, 0, 0],
    ]
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="prefix"):
        next_sets(codes("(]", 2), 2)


@pytest.mark.parametrize("pairs", [1, 2])
def test_next_sets_agree_with_brute_force_continuations(pairs):
    """A symbol may come next iff some Dyck word continues the prefix with it."""
    rng = np.random.default_rng(2)
    for _ in range(30):
        w = dyck_word(8, pairs, rng)
        sets = next_sets(w, pairs)
        for t in range(len(w)):
            prefix = text(w[: t + 1], pairs)
            brackets = "()[]{}<>"[: 2 * pairs]
            for sym in range(2 * pairs):
                ch = brackets[2 * sym] if sym < pairs else brackets[2 * (sym - pairs) + 1]
                open_after = sum(+1 if c in "([{<" else -1 for c in prefix + ch)
                # a prefix continues to a Dyck word iff it is a prefix of one: close the rest
                can = open_after >= 0 and _completable(prefix + ch)
                assert sets[t, sym] == can, (prefix, ch)
            assert sets[t, 2 * pairs] == is_dyck(prefix)


def _completable(prefix: str) -> bool:
    stack = []
    for c in prefix:
        if c in "([{<":
            stack.append(c)
        elif not stack or "([{<".index(stack.pop()) != ")]}>".index(c):
            return False
    return True


def test_matched_tags_by_hand():
    np.testing.assert_array_equal(matched_tags(codes(")((", 1), 1), [0, 0, 0])
    np.testing.assert_array_equal(matched_tags(codes("(()", 1), 1), [0, 1, 1])
    np.testing.assert_array_equal(matched_tags(codes("())(()", 1), 1), [1, 1, 0, 0, 1, 1])
    # ")" meets an open "[": it stays unpaired and "[" stays open for the "]"
    np.testing.assert_array_equal(matched_tags(codes("([)]", 2), 2), [0, 1, 0, 1])


def test_matched_tags_of_dyck_words_are_all_one_and_random_strings_mix():
    rng = np.random.default_rng(3)
    for _ in range(20):
        assert matched_tags(dyck_word(30, 2, rng), 2).all()
    tags = np.concatenate([matched_tags(random_string(40, 1, rng), 1) for _ in range(200)])
    assert 0.3 < tags.mean() < 0.9


def test_depth():
    assert depth(codes("(()(()))", 1), 1) == 3
    assert depth(codes("))((", 1), 1) == 2
    assert depth(codes("([)]", 2), 2) == 2


def _paired_by_removal(s: str) -> list[int]:
    """Reference for one pair type: repeatedly pair an opening bracket with the next closing
    bracket still unpaired, when nothing unpaired lies between them."""
    tags, alive = [0] * len(s), list(range(len(s)))
    changed = True
    while changed:
        changed = False
        for a, b in zip(alive, alive[1:], strict=False):
            if s[a] == "(" and s[b] == ")":
                tags[a] = tags[b] = 1
                alive = [i for i in alive if i not in (a, b)]
                changed = True
                break
    return tags


@given(st.text(alphabet="()", max_size=30))
def test_matched_tags_of_one_pair_type_agree_with_pair_removal(s):
    assert matched_tags(codes(s, 1), 1).tolist() == _paired_by_removal(s)
