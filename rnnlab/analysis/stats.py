"""Statistics over seeds: how well each variant does, and how sure a difference between two is.

Per variant (its per-seed values of one metric): mean, standard deviation (ddof 1), median and a
95% bootstrap confidence interval of the mean (BCa, seeded, so the same values give the same
interval), and, when "solved" is defined, the solve rate with a Wilson score interval.

Between two variants: a t-test of the difference of means (Welch's, or the paired t-test when
both were run on the same seeds, since then seed-to-seed variation cancels) and the probability
of superiority, P(A better than B) with ties counted half (paired: over shared seeds; unpaired:
over all pairs of runs, the Vargha-Delaney A), with a BCa bootstrap interval. The p-values of a
table are Holm-corrected together. Fewer than :data:`FEW_SEEDS` seeds per variant is flagged:
such intervals and tests are too wide or too fragile to tell variants apart.

Needs scipy (``pip install 'rnnlab[stats]'``).
"""

from __future__ import annotations

import math
import operator
import re
import warnings
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from ..errors import RnnlabError

CONFIDENCE = 0.95
RESAMPLES = 9999
FEW_SEEDS = 5
Z95 = 1.959963984540054  # the 0.975 quantile of the standard normal


def scipy_stats():
    try:
        import scipy.stats
    except ImportError:
        raise RnnlabError("statistics need scipy: pip install 'rnnlab[stats]'") from None
    return scipy.stats


# -- one variant -----------------------------------------------------------------------------
def bootstrap_mean_ci(values, *, seed: int = 0) -> tuple[float, float] | None:
    """The BCa bootstrap interval of the mean of ``values`` (None with fewer than 2 values, or
    when every value is the same: no spread to resample)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2 or np.all(x == x[0]):
        return None
    with warnings.catch_warnings():  # a degenerate resample gives nan, reported as None
        warnings.simplefilter("ignore")
        res = scipy_stats().bootstrap(
            (x,),
            np.mean,
            confidence_level=CONFIDENCE,
            n_resamples=RESAMPLES,
            method="BCa",
            rng=np.random.default_rng(seed),
        )
    return finite_interval(res.confidence_interval)


def finite_interval(ci) -> tuple[float, float] | None:
    low, high = float(ci.low), float(ci.high)
    return (low, high) if math.isfinite(low) and math.isfinite(high) else None


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion ``successes / n`` (None when n is 0)."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def describe(values, *, seed: int = 0) -> dict:
    """Mean, standard deviation, median and 95% BCa interval of the mean over seeds."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    ci = bootstrap_mean_ci(x, seed=seed)
    return {
        "n": n,
        "mean": float(np.mean(x)) if n else None,
        "std": float(np.std(x, ddof=1)) if n > 1 else None,
        "median": float(np.median(x)) if n else None,
        "ci": list(ci) if ci else None,
        "few_seeds": n < FEW_SEEDS,
    }


# -- "solved" --------------------------------------------------------------------------------
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
SOLVED = re.compile(r"^\s*(\w+)\.(\w+)\s*(<=|>=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Threshold:
    """``"test.mse < 0.01"``: a run whose test mse is below 0.01 solved the task."""

    split: str
    metric: str
    op: str
    value: float

    @classmethod
    def parse(cls, text) -> Threshold:
        """Raises ValueError with what would be valid."""
        m = SOLVED.match(text) if isinstance(text, str) else None
        try:
            value = float(m.group(4)) if m else math.nan
        except ValueError:
            value = math.nan
        if not m or not math.isfinite(value):
            raise ValueError(
                f'{text!r} is not "SPLIT.METRIC OP NUMBER" with OP one of <, <=, >, >= '
                f'(e.g. "test.mse < 0.01")'
            )
        return cls(m.group(1), m.group(2), m.group(3), value)

    def __str__(self) -> str:
        return f"{self.split}.{self.metric} {self.op} {self.value:g}"

    def met(self, value: float) -> bool:
        return bool(OPS[self.op](value, self.value))


def solve_rate(values, threshold: Threshold) -> dict:
    solved = sum(threshold.met(v) for v in values)
    ci = wilson(solved, len(values))
    return {
        "solved": solved,
        "n": len(values),
        "rate": solved / len(values) if values else None,
        "ci": list(ci) if ci else None,
    }


# -- two variants ----------------------------------------------------------------------------
def superiority(a, b, *, lower_is_better: bool, axis=-1):
    """P(A better than B) + half P(tie) over all pairs (a: [..., n], b: [..., m])."""
    a, b = np.asarray(a), np.asarray(b)
    a, b = np.moveaxis(a, axis, -1)[..., :, None], np.moveaxis(b, axis, -1)[..., None, :]
    wins = (a < b) if lower_is_better else (a > b)
    return np.mean(wins + 0.5 * (a == b), axis=(-2, -1))


def paired_superiority(a, b, *, lower_is_better: bool, axis=-1):
    """The share of seeds on which A beat B, ties counted half."""
    a, b = np.asarray(a), np.asarray(b)
    wins = (a < b) if lower_is_better else (a > b)
    return np.mean(wins + 0.5 * (a == b), axis=axis)


def compare(a, b, *, paired: bool, lower_is_better: bool, seed: int = 0) -> dict:
    """Welch's (or the paired) t-test of mean(A) - mean(B), and P(A better than B) with its BCa
    interval. ``a`` and ``b`` are per-seed values; paired: in the same seed order."""
    st = scipy_stats()
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out = {
        "test": "paired t" if paired else "Welch t",
        "difference": float(np.mean(a) - np.mean(b)),
        "t": None,
        "df": None,
        "p": None,
    }
    if min(len(a), len(b)) >= 2:
        res = st.ttest_rel(a, b) if paired else st.ttest_ind(a, b, equal_var=False)
        if math.isfinite(res.statistic):
            out.update(t=float(res.statistic), df=float(res.df), p=float(res.pvalue))
    if paired:
        ps = float(paired_superiority(a, b, lower_is_better=lower_is_better))

        def statistic(x, y, axis=-1):
            return paired_superiority(x, y, lower_is_better=lower_is_better, axis=axis)
    else:
        ps = float(superiority(a, b, lower_is_better=lower_is_better))

        def statistic(x, y, axis=-1):
            return superiority(x, y, lower_is_better=lower_is_better, axis=axis)

    out["superiority"] = ps
    out["superiority_ci"] = superiority_ci(a, b, statistic, paired=paired, seed=seed)
    return out


def superiority_ci(a, b, statistic, *, paired: bool, seed: int) -> list[float] | None:
    if min(len(a), len(b)) < 2:
        return None
    if np.all(a == a[0]) and np.all(b == b[0]):
        return None  # nothing to resample: every resample gives the same value
    with warnings.catch_warnings():  # a degenerate resample gives nan, reported as None
        warnings.simplefilter("ignore")
        res = scipy_stats().bootstrap(
            (a, b),
            statistic,
            paired=paired,
            vectorized=True,
            confidence_level=CONFIDENCE,
            n_resamples=RESAMPLES,
            method="BCa",
            rng=np.random.default_rng(seed),
        )
    ci = finite_interval(res.confidence_interval)
    return list(ci) if ci else None


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (None stays None and is not counted):
    the i-th smallest of m is multiplied by m - i, made monotone, and capped at 1."""
    known = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(known)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(known):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


# -- a table ---------------------------------------------------------------------------------
def table(
    groups: dict[str, dict[int, float]],
    *,
    lower_is_better: bool,
    threshold: Threshold | None = None,
    solved_values: dict[str, dict[int, float]] | None = None,
    seed: int = 0,
) -> dict:
    """Per-variant statistics and every pairwise comparison of ``groups`` (variant -> seed ->
    value), Holm-corrected across the table. ``solved_values`` are the per-seed values of the
    threshold's metric (default: ``groups``)."""
    variants = []
    for name, by_seed in groups.items():
        row = {
            "variant": name,
            "seeds": sorted(by_seed),
            **describe(list(by_seed.values()), seed=seed),
        }
        if threshold is not None:
            pool = (solved_values or groups).get(name, {})
            row["solve_rate"] = solve_rate(list(pool.values()), threshold)
        variants.append(row)
    pairs = []
    for first, second in combinations(groups, 2):
        a, b = groups[first], groups[second]
        paired = set(a) == set(b) and len(a) > 1
        seeds = sorted(a)
        xa = [a[s] for s in seeds] if paired else list(a.values())
        xb = [b[s] for s in seeds] if paired else list(b.values())
        result = compare(xa, xb, paired=paired, lower_is_better=lower_is_better, seed=seed)
        pairs.append({"a": first, "b": second, **result})
    for pair, adjusted in zip(pairs, holm([p["p"] for p in pairs]), strict=True):
        pair["p_holm"] = adjusted
    few = [v["variant"] for v in variants if v["few_seeds"]]
    return {
        "confidence": CONFIDENCE,
        "bootstrap": {"method": "BCa", "resamples": RESAMPLES, "seed": seed},
        "lower_is_better": lower_is_better,
        "solved": str(threshold) if threshold else None,
        "few_seeds": few,
        "variants": variants,
        "pairs": pairs,
    }
