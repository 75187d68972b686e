"""Numba trains bidirectional stacks and dropout like the NumPy reference, to 1e-9 over whole
runs with the same seeded dropout masks: the core composes the directions around numba's layer
kernels (its fused epoch runner does not declare "bidirectional", so the core loop runs), and a
unidirectional stack with dropout trains in the fused epoch."""

from __future__ import annotations

import pytest
from test_lengths import experiment

from rnnlab.testing import check_training_agreement

pytest.importorskip("numba")


@pytest.mark.parametrize(
    "sets",
    [
        ("model.bidirectional=true",),
        ("model.bidirectional=true", "model.dropout=0.3"),
        ("model.dropout=0.3",),
    ],
    ids=["bidirectional", "bidirectional-dropout", "dropout"],
)
@pytest.mark.parametrize("target", ["every", "last"])
def test_numba_matches_numpy_on_a_bidirectional_gru_with_lengths(tmp_path, sets, target):
    exp, registry = experiment(tmp_path, *sets, target=target, cell="gru")
    diffs = check_training_agreement("numba", exp, registry=registry, rtol=1e-9)
    print(f"gru {target} {' '.join(sets)}: {diffs}")


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_numba_matches_numpy_bidirectional_with_dropout(tmp_path, cell):
    exp, registry = experiment(
        tmp_path, "model.bidirectional=true", "model.dropout=0.3", target="every", cell=cell
    )
    diffs = check_training_agreement("numba", exp, registry=registry, rtol=1e-9)
    print(f"{cell}: {diffs}")
