"""The numba backend's shared products (plugins/rnnlab_numba/blocks.py) against NumPy: both
forms of ``o += V W^T``, and the ``*_steps`` versions over the live rows of every step (rows
grouped across steps, ragged steps, row counts that leave rows over from the blocks of four
and eight), in float64 and float32."""

import numpy as np
import pytest

pytest.importorskip("numba")

from rnnlab_numba import blocks  # noqa: E402

TOL = {"float64": 1e-13, "float32": 2e-5}
# (T, R, active): every row live; ragged (rows sorted longest first); a step nobody reaches
ACTIVE = [(3, 5, [5, 5, 5]), (4, 7, [7, 5, 2, 1]), (3, 6, [6, 3, 0])]


def close(got, want, dtype):
    assert got.dtype == want.dtype
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got - want).max() <= TOL[dtype] * scale


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("M,K,J", [(9, 6, 5), (4, 1, 7), (3, 8, 12)])
def test_row_products_match_numpy(dtype, M, K, J):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(J, K)).astype(dtype)
    V = rng.normal(size=(M, K)).astype(dtype)
    b = rng.normal(size=J).astype(dtype)
    WT = blocks.transposed(W)
    assert WT.flags.c_contiguous and np.array_equal(WT, W.T)
    out = np.full((M, J), np.nan, dtype)
    blocks.affine_t(WT, b, V, out)
    close(out, b + V @ W.T, dtype)
    blocks.product_t(WT, V, out)
    close(out, V @ W.T, dtype)
    blocks.affine(W, b, V, out)
    close(out, b + V @ W.T, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("T,R,active", ACTIVE)
@pytest.mark.parametrize("K,J", [(1, 6), (5, 3), (3, 9)])
def test_step_products_cover_the_live_rows_only(dtype, T, R, active, K, J):
    rng = np.random.default_rng(1)
    act = np.array(active, np.int64)
    live = np.arange(R)[None, :] < act[:, None]  # [T, R]
    X = rng.normal(size=(T, R, K)).astype(dtype)
    D = rng.normal(size=(T, R, J)).astype(dtype)
    W = rng.normal(size=(J, K)).astype(dtype)
    b = rng.normal(size=J).astype(dtype)
    out = np.full((T, R, J), 7.0, dtype)
    blocks.affine_steps(W, b, X, out, act)
    close(out[live], b + X[live] @ W.T, dtype)
    assert (out[~live] == 7.0).all()  # rows past their end are left alone
    for G0, A, B in ((W, D, X), (W.T.copy(), X, D)):  # K < J and K >= J: both paths
        G = G0.copy()
        blocks.add_outer_steps(G, A, B, act)
        close(G, G0 + A[live].T @ B[live], dtype)
    g = b.copy()
    blocks.add_rows_steps(g, D, act)
    close(g, b + D[live].sum(axis=0), dtype)
    o = np.zeros((T, R, K), dtype)
    blocks.add_product_steps(W, D, o, act)  # o += D W (W^T of W^T given)
    close(o[live], D[live] @ W, dtype)
