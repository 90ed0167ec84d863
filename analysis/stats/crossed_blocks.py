"""The sparse system of crossed random intercepts, ``M = I + Lambda' Z' W Z Lambda``.

Shared by the linear (crossed_lmm.py) and the logistic (glmm.py) mixed models. Each grouping
factor f has one intercept per level, scaled by its relative standard deviation ``theta_f``;
``W`` holds per-observation weights (1 for the linear model, ``mu (1 - mu)`` for the logistic).
Each factor's own block of ``Z' W Z`` is diagonal (the weight summed per level), so the factor
with the most levels (cases) is eliminated by its diagonal and only the other factors' levels
(readers) form a dense Schur complement: the cost is linear in the number of cases.

Vectors over the random effects are stacked in factor order: the first (largest) factor's
levels, then each other factor's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import linalg


@dataclass(frozen=True)
class Factor:
    name: str
    codes: np.ndarray  # integer level of each observation, 0 .. n_levels - 1
    n_levels: int


def factor(name: str, labels: Sequence) -> Factor:
    """A grouping factor from any hashable labels (levels in order of first appearance)."""
    codes: dict = {}
    out = np.fromiter((codes.setdefault(v, len(codes)) for v in labels), dtype=np.int64)
    return Factor(name, out, len(codes))


def largest_first(factors: Sequence[Factor]) -> list[int]:
    """Factor positions, the one with most levels first (the order every method here expects)."""
    return sorted(range(len(factors)), key=lambda i: -factors[i].n_levels)


def sum_by(f: Factor, values: np.ndarray) -> np.ndarray:
    """Per-level sums of ``values`` (n,) or (n, k)."""
    values = np.asarray(values, dtype=float)
    out = np.zeros((f.n_levels,) + values.shape[1:])
    np.add.at(out, f.codes, values)
    return out


def cross_table(a: Factor, b: Factor, weights: np.ndarray | None = None) -> np.ndarray:
    flat = np.bincount(
        a.codes * b.n_levels + b.codes, weights=weights, minlength=a.n_levels * b.n_levels
    )
    return flat.reshape(a.n_levels, b.n_levels).astype(float)


class CrossedBlocks:
    """``Z' W Z`` of intercept factors given in ``largest_first`` order, ready for any theta."""

    def __init__(self, factors: Sequence[Factor], weights: np.ndarray | None = None):
        self.factors = list(factors)
        self.sizes = [f.n_levels for f in self.factors]
        self.diag = [
            np.bincount(f.codes, weights=weights, minlength=f.n_levels).astype(float)
            for f in self.factors
        ]
        rest = self.factors[1:]
        offsets = np.cumsum([0] + [f.n_levels for f in rest])
        q_rest = int(offsets[-1]) if rest else 0
        self.zz_rest = np.zeros((q_rest, q_rest))  # other factors among themselves
        self.cross_first = np.zeros((self.sizes[0] if self.factors else 0, q_rest))
        for j, g in enumerate(rest):
            sj = slice(offsets[j], offsets[j + 1])
            self.cross_first[:, sj] = cross_table(self.factors[0], g, weights)
            for i, h in enumerate(rest):
                si = slice(offsets[i], offsets[i + 1])
                self.zz_rest[si, sj] = (
                    np.diag(self.diag[i + 1]) if i == j else cross_table(h, g, weights)
                )

    def scale(self, theta: np.ndarray) -> np.ndarray:
        """Lambda's diagonal: theta_f repeated over factor f's levels (stacked order)."""
        return np.repeat(np.asarray(theta, dtype=float), self.sizes)

    def transpose_times(self, theta: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``Lambda' Z' values`` for values of shape (n,) or (n, k)."""
        return np.concatenate(
            [t * sum_by(f, values) for t, f in zip(theta, self.factors, strict=True)]
        )

    def times(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``Z Lambda u`` (one value per observation)."""
        out = 0.0
        start = 0
        for t, f in zip(theta, self.factors, strict=True):
            out = out + t * u[start : start + f.n_levels][f.codes]
            start += f.n_levels
        return out

    def factorize(self, theta: np.ndarray) -> Solved:
        return Solved(self, np.asarray(theta, dtype=float))


class Solved:
    """``M = I + Lambda' Z' W Z Lambda`` at one theta: its log-determinant and solves."""

    def __init__(self, blocks: CrossedBlocks, theta: np.ndarray):
        self.q0 = blocks.sizes[0]
        t0 = theta[0]
        self.d0 = 1.0 + t0 * t0 * blocks.diag[0]
        self.log_det = float(np.log(self.d0).sum())
        self.chol = None
        self._inverse_parts = None
        if len(blocks.factors) > 1:
            scale_rest = np.repeat(theta[1:], blocks.sizes[1:])
            self.c = t0 * blocks.cross_first * scale_rest[None, :]
            schur = np.eye(scale_rest.size) + scale_rest[:, None] * blocks.zz_rest * scale_rest
            schur -= self.c.T @ (self.c / self.d0[:, None])
            self.chol = linalg.cho_factor(schur, lower=True)
            self.log_det += 2.0 * float(np.log(np.diag(self.chol[0])).sum())

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``M^-1 rhs`` for rhs stacked over the random effects, shape (q,) or (q, k)."""
        first, rest = rhs[: self.q0], rhs[self.q0 :]
        shape = (-1,) + (1,) * (rhs.ndim - 1)
        first_d = first / self.d0.reshape(shape)
        if self.chol is None:
            return first_d
        x_rest = linalg.cho_solve(self.chol, rest - self.c.T @ first_d)
        x_first = (first - self.c @ x_rest) / self.d0.reshape(shape)
        return np.concatenate([x_first, x_rest])

    def inverse_at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Entries ``M^-1[rows[i], cols[i]]`` (stacked indices), without forming ``M^-1``.

        With ``A = D0^-1 C`` and ``S`` the Schur complement: the first factor's block is
        ``D0^-1 + A S^-1 A'``, the cross block ``-A S^-1``, the other factors' block ``S^-1``."""
        rows, cols = np.asarray(rows), np.asarray(cols)
        out = np.zeros(rows.shape)
        first = (rows < self.q0) & (cols < self.q0)
        out[first] = np.where(rows[first] == cols[first], 1.0 / self.d0[rows[first]], 0.0)
        if self.chol is None:
            return out
        if self._inverse_parts is None:
            a = self.c / self.d0[:, None]
            s_inv = linalg.cho_solve(self.chol, np.eye(self.c.shape[1]))
            self._inverse_parts = (a, a @ s_inv, s_inv)
        a, a_s, s_inv = self._inverse_parts
        r, c = rows[first], cols[first]
        out[first] += np.einsum("ij,ij->i", a_s[r], a[c])
        mixed = (rows < self.q0) & (cols >= self.q0)
        out[mixed] = -a_s[rows[mixed], cols[mixed] - self.q0]
        mixed_t = (rows >= self.q0) & (cols < self.q0)
        out[mixed_t] = -a_s[cols[mixed_t], rows[mixed_t] - self.q0]
        rest = (rows >= self.q0) & (cols >= self.q0)
        out[rest] = s_inv[rows[rest] - self.q0, cols[rest] - self.q0]
        return out
