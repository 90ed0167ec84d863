"""The crossed-intercepts system M = I + Lambda' Z' W Z Lambda, solved without forming it."""

import numpy as np
import pytest

from analysis.stats.crossed_blocks import CrossedBlocks, factor, largest_first


def dense(factors, theta, weights):
    z = np.hstack([np.eye(f.n_levels)[f.codes] * t for f, t in zip(factors, theta, strict=True)])
    return np.eye(z.shape[1]) + z.T @ (weights[:, None] * z)


@pytest.fixture
def system():
    rng = np.random.default_rng(2)
    n = 120
    cases = factor("case", rng.integers(0, 30, n))
    readers = factor("reader", rng.integers(0, 5, n))
    sessions = factor("session", rng.integers(0, 3, n))
    factors = [[cases, readers, sessions][i] for i in largest_first([cases, readers, sessions])]
    return factors, np.array([0.8, 0.5, 0.3]), rng.uniform(0.05, 0.25, n)


def test_solves_and_log_determinant_equal_the_dense_system(system):
    factors, theta, weights = system
    m = dense(factors, theta, weights)
    solved = CrossedBlocks(factors, weights).factorize(theta)
    rhs = np.random.default_rng(3).normal(size=(m.shape[0], 2))
    np.testing.assert_allclose(solved.solve(rhs), np.linalg.solve(m, rhs), rtol=1e-10)
    assert solved.log_det == pytest.approx(np.linalg.slogdet(m)[1], rel=1e-12)


def test_inverse_entries_equal_the_dense_inverse(system):
    factors, theta, weights = system
    inverse = np.linalg.inv(dense(factors, theta, weights))
    solved = CrossedBlocks(factors, weights).factorize(theta)
    rows, cols = np.meshgrid(np.arange(inverse.shape[0]), np.arange(inverse.shape[0]))
    np.testing.assert_allclose(solved.inverse_at(rows.ravel(), cols.ravel()),
                               inverse[rows.ravel(), cols.ravel()], atol=1e-12)


def test_products_with_z_lambda_equal_the_dense_ones(system):
    factors, theta, weights = system
    blocks = CrossedBlocks(factors)
    z = np.hstack([np.eye(f.n_levels)[f.codes] * t for f, t in zip(factors, theta, strict=True)])
    u = np.random.default_rng(4).normal(size=z.shape[1])
    v = np.random.default_rng(5).normal(size=z.shape[0])
    np.testing.assert_allclose(blocks.times(theta, u), z @ u, rtol=1e-12)
    np.testing.assert_allclose(blocks.transpose_times(theta, v), z.T @ v, rtol=1e-12)
