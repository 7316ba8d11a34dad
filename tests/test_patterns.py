"""Gates, masks, de-duplication and exact 1-D enumeration."""

import itertools

import jax
import numpy as np

import cvxnn_jax as cn


def test_sample_gates_distinct_nonzero_and_reproducible():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 2))  # few points in 2-D: many duplicate patterns
    key = jax.random.PRNGKey(3)
    gates = cn.sample_gates(key, X, 500)
    masks = np.asarray(cn.gate_masks(X, gates)).astype(bool)
    assert gates.shape[0] == 2 and 0 < gates.shape[1] < 500
    assert len({m.tobytes() for m in masks.T}) == masks.shape[1]  # all distinct
    assert masks.any(axis=0).all()  # no all-zero pattern
    np.testing.assert_array_equal(gates, cn.sample_gates(key, X, 500))
    # The kept gates are the first occurrences of their patterns among the raw draws.
    raw = np.asarray(jax.random.normal(key, (2, 500), dtype=gates.dtype))
    raw_masks = (X @ raw >= 0)
    seen, first = set(), []
    for j in range(500):
        pattern = raw_masks[:, j].tobytes()
        if pattern not in seen and raw_masks[:, j].any():
            first.append(j)
        seen.add(pattern)
    np.testing.assert_array_equal(gates, raw[:, first])


def test_masks_count_ties_as_active_and_bias_column():
    X = np.array([[1.0, -1.0], [0.0, 0.0], [-1.0, 2.0]])
    gates = np.array([[1.0], [1.0]])
    np.testing.assert_array_equal(cn.gate_masks(X, gates)[:, 0], [1.0, 1.0, 1.0])
    Xb = cn.add_bias_column(X)
    assert Xb.shape == (3, 3) and np.all(Xb[:, -1] == 1)


def test_exact_1d_enumeration_finds_every_threshold_pattern():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(9)
    x[4] = x[2]  # a tie: 8 distinct values
    gates = cn.enumerate_gates_1d(x)
    Xb = np.asarray(cn.add_bias_column(x[:, None]))
    masks = np.asarray(cn.gate_masks(Xb, gates)).astype(bool)
    found = {m.tobytes() for m in masks.T}
    # Brute force: 1[x >= b] and 1[x <= b] for b below, between and above the points.
    values = np.unique(x)
    cuts = np.concatenate([[values[0] - 1], (values[:-1] + values[1:]) / 2, [values[-1] + 1]])
    expected = set()
    for b, sign in itertools.product(cuts, (1, -1)):
        pattern = sign * (x - b) >= 0
        if pattern.any():
            expected.add(pattern.tobytes())
    assert found == expected
    assert masks.shape[1] == len(expected) == 2 * len(values) - 1
    # And random gates in the augmented space never produce a pattern outside that set.
    many = cn.sample_gates(jax.random.PRNGKey(0), Xb, 2000)
    sampled = {m.tobytes() for m in np.asarray(cn.gate_masks(Xb, many)).astype(bool).T}
    assert sampled <= expected
