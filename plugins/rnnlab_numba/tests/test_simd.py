"""The register-blocked kernels (plugins/rnnlab_numba/simd.py, tiled by blocks.madd) against
NumPy at sizes that reach every block: 8-, 4- and 1-row blocks, two-vector, one-vector and
single-column tails in float64 (8 lanes with AVX-512) and float32 (16), k loops longer than
one slice (``blocks.KC``), and A read down its columns (the weight gradients)."""

import numpy as np
import pytest

pytest.importorskip("numba")

from rnnlab_numba import blocks  # noqa: E402

TOL = {"float64": 1e-13, "float32": 3e-5}
ROWS = [1, 3, 4, 13]  # 1-row blocks alone, 4 + 1s, 8 + 4 + 1
COLS = {
    "float64": [3, 27, 40, 59],
    "float32": [5, 51, 64, 115],
}  # tails; 2-vec + 1-vec + cols; 4-vec
DEPTH = [1, 6, blocks.KC + 37]


def close(got, want, dtype, depth):
    assert got.dtype == want.dtype
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got - want).max() <= TOL[dtype] * scale * max(1.0, np.sqrt(depth / 16))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("M", ROWS)
@pytest.mark.parametrize("K", DEPTH)
def test_products_reach_every_block(dtype, M, K):
    rng = np.random.default_rng(M * 1000 + K)
    for J in COLS[dtype]:
        V = rng.normal(size=(M, K)).astype(dtype)
        WT = rng.normal(size=(K, J)).astype(dtype)
        out0 = rng.normal(size=(M, J)).astype(dtype)
        out = out0.copy()
        blocks.add_product_t(WT, V, out)  # out += V W^T
        close(out, out0 + V @ WT, dtype, K)
        # G += D^T X over M rows: A (D^T) read down D's columns
        D = rng.normal(size=(K, M)).astype(dtype)
        X = rng.normal(size=(K, J)).astype(dtype)
        G0 = rng.normal(size=(M, J)).astype(dtype)
        G = G0.copy()
        blocks.add_outer(G, D, X)
        close(G, G0 + D.T @ X, dtype, K)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_step_products_in_one_pass_and_step_by_step(dtype):
    """Every row live: one product over T R rows; ragged: one per step. Both agree with NumPy,
    and the rows past a step's end are left alone."""
    rng = np.random.default_rng(3)
    T, R, K, J = 40, 9, 33, COLS[dtype][1]
    X = rng.normal(size=(T, R, K)).astype(dtype)
    D = rng.normal(size=(T, R, J)).astype(dtype)
    WT = rng.normal(size=(K, J)).astype(dtype)
    for active in (np.full(T, R), np.sort(rng.integers(0, R + 1, T))[::-1].copy()):
        act = active.astype(np.int64)
        live = np.arange(R)[None, :] < act[:, None]
        out = np.full((T, R, J), 5.0, dtype)
        out[live] = 0
        blocks.add_product_steps(WT, X, out, act)
        close(out[live], X[live] @ WT, dtype, K)
        assert (out[~live] == 5.0).all()
        G = np.zeros((J, K), dtype)
        blocks.add_outer_steps(G, D, X, act)
        close(G, D[live].T @ X[live], dtype, int(act.sum()))
