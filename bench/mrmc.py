"""Benchmark the MRMC OR analysis: fast covariance paths against a straightforward baseline.

    python bench/mrmc.py [--quick] [--part all|or|command|delong]

Simulates a fully crossed study (6 arms, 30 readers, 2,000 cases; --quick: 3 arms, 10 readers,
600 cases) and times the OR analysis with jackknife and with DeLong covariance, computed the fast
way (placement values from midranks; jackknife values in closed form; Sun & Xu DeLong). The
baselines, in the same run:

* jackknife: recompute every leave-one-out AUC from scratch (a sort-based Mann-Whitney AUC per
  omitted case), then the covariance of the leave-one-out values;
* DeLong: placement values from the O(n0 * n1) pairwise comparison matrix of each reader/arm.

A full jackknife baseline takes minutes, so it is run on a subset of units (and, with --quick, of
omitted cases) and extrapolated linearly; the output says so. The subset's covariances are also
compared with the fast path's.

``--part command`` times ``manage.py mrmc`` end to end (process start included) and ``--part
delong`` the paired DeLong test on 200,000 cases, each against a baseline of the same run (see
``bench/mrmc_command.py`` for the baselines and the targets of issue 16).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.stats.covariance import jackknife_values  # noqa: E402
from analysis.stats.data import MRMCData  # noqa: E402
from analysis.stats.fom import compute_fom  # noqa: E402
from analysis.stats.mrmc import or_analysis  # noqa: E402
from bench.mrmc_command import bench_command, bench_paired_delong  # noqa: E402


def simulate(n_arms: int, n_readers: int, n_cases: int, seed: int = 2024) -> MRMCData:
    """Binormal ratings with case, reader and arm effects, rounded to 0.01 (so with ties)."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n_cases) < 0.4).astype(np.int8)
    case_effect = rng.normal(0, 0.7, n_cases)
    arm_shift = np.linspace(1.2, 1.5, n_arms)[:, None, None]
    reader_shift = rng.normal(0, 0.2, n_readers)[None, :, None]
    noise = rng.normal(0, 1, (n_arms, n_readers, n_cases))
    ratings = truth[None, None, :] * (arm_shift + reader_shift) + case_effect + noise
    return MRMCData.from_arrays(np.round(ratings, 2), truth)


def mann_whitney_auc(ratings: np.ndarray, truth: np.ndarray) -> float:
    """Sort-based AUC from scratch: rank-sum of the diseased ratings."""
    ranks = stats.rankdata(ratings)
    n1 = int(truth.sum())
    n0 = ratings.size - n1
    return (ranks[truth].sum() - n1 * (n1 + 1) / 2) / (n0 * n1)


def baseline_jackknife(data: MRMCData, units: list[int], cases: np.ndarray
                       ) -> tuple[np.ndarray, float]:
    """Leave-one-out AUCs recomputed from scratch for the given units and omitted cases."""
    flat = data.ratings.reshape(-1, data.n_cases)
    truth = data.truth.astype(bool)
    keep = np.ones(data.n_cases, dtype=bool)
    loo = np.empty((len(units), cases.size))
    start = time.perf_counter()
    for a, u in enumerate(units):
        for b, k in enumerate(cases):
            keep[k] = False
            loo[a, b] = mann_whitney_auc(flat[u, keep], truth[keep])
            keep[k] = True
    return loo, time.perf_counter() - start


def baseline_delong(data: MRMCData, units: list[int]) -> tuple[np.ndarray, float]:
    """DeLong covariance with placements from the O(n0 * n1) comparison matrix."""
    flat = data.ratings.reshape(-1, data.n_cases)
    truth = data.truth.astype(bool)
    n0, n1 = int((~truth).sum()), int(truth.sum())
    start = time.perf_counter()
    v10 = np.empty((len(units), n1))
    v01 = np.empty((len(units), n0))
    for a, u in enumerate(units):
        x, y = flat[u, ~truth], flat[u, truth]
        psi = (y[None, :] > x[:, None]) + 0.5 * (y[None, :] == x[:, None])
        v10[a] = psi.mean(axis=0)
        v01[a] = psi.mean(axis=1)
    cov = np.cov(v10, ddof=1) / n1 + np.cov(v01, ddof=1) / n0
    return cov, time.perf_counter() - start


def timed(fn, repeat: int = 3):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller study, smaller baseline")
    parser.add_argument("--part", choices=("all", "or", "command", "delong"), default="all",
                        help="which benchmark(s) to run (default: all)")
    args = parser.parse_args()
    n_arms, n_readers, n_cases = (3, 10, 600) if args.quick else (6, 30, 2000)
    data = simulate(n_arms, n_readers, n_cases)
    if args.part in ("all", "or"):
        bench_or(data, args.quick)
    if args.part in ("all", "command"):
        print()
        bench_command(data.ratings, data.truth, repeat=2 if args.quick else 3)
    if args.part in ("all", "delong"):
        print()
        bench_paired_delong(n_cases=20_000 if args.quick else 200_000)


def bench_or(data: MRMCData, quick: bool) -> None:
    """The in-process OR analysis against the from-scratch jackknife and pairwise DeLong."""
    n_arms, n_readers, n_cases = data.ratings.shape
    n_units = n_arms * n_readers
    print(f"Simulated study: {n_arms} arms, {n_readers} readers, {n_cases} cases "
          f"({data.n_diseased} diseased), {n_units} reader/arm units")

    fast_jk, t_jk = timed(lambda: or_analysis(data, "auc", "jackknife"))
    fast_dl, t_dl = timed(lambda: or_analysis(data, "auc", "delong"))
    print(f"fast OR analysis, jackknife covariance: {t_jk:8.3f} s (best of 3)")
    print(f"fast OR analysis, DeLong covariance:    {t_dl:8.3f} s (best of 3)")

    # jackknife baseline on a subset of units (and, with --quick, of omitted cases)
    rng = np.random.default_rng(0)
    n_sub_units = 3 if quick else 12
    units = sorted(rng.choice(n_units, n_sub_units, replace=False).tolist())
    cases = np.arange(n_cases) if not quick else np.sort(rng.choice(n_cases, 150,
                                                                         replace=False))
    loo, t_sub = baseline_jackknife(data, units, cases)
    scale = (n_units / len(units)) * (n_cases / cases.size)
    t_base_jk = t_sub * scale
    est = compute_fom(data, "auc")
    fast_loo = jackknife_values(est)[np.ix_(units, cases)]
    err_loo = float(np.abs(fast_loo - loo).max())
    print(f"baseline jackknife (LOO AUC recomputed per omitted case): measured {t_sub:.2f} s on "
          f"{len(units)} of {n_units} units x {cases.size} of {n_cases} omitted cases; "
          f"extrapolated x{scale:.1f} to {t_base_jk:.1f} s for the whole study")
    if cases.size == n_cases:
        m = n_cases
        dev = loo - loo.mean(axis=1, keepdims=True)
        base_cov = (m - 1) / m * dev @ dev.T
        err_cov = float(np.abs(base_cov - fast_jk.covariance[np.ix_(units, units)]).max())
        print(f"  subset check: max |LOO AUC difference| = {err_loo:.2e}, "
              f"max |covariance difference| = {err_cov:.2e}")
    else:
        print(f"  subset check: max |LOO AUC difference| = {err_loo:.2e}")

    dl_units = list(range(n_units))
    base_dl_cov, t_base_dl = baseline_delong(data, dl_units)
    err_dl = float(np.abs(base_dl_cov - fast_dl.covariance).max())
    print(f"baseline DeLong (O(n0*n1) placements, all {n_units} units): {t_base_dl:.2f} s; "
          f"max |covariance difference| = {err_dl:.2e}")

    print()
    print(f"speed-up, jackknife: {t_base_jk / t_jk:8.1f}x  "
          f"(baseline {t_base_jk:.1f} s, extrapolated / fast {t_jk:.3f} s)")
    print(f"speed-up, DeLong:    {t_base_dl / t_dl:8.1f}x  "
          f"(baseline {t_base_dl:.2f} s, measured / fast {t_dl:.3f} s; the fast time includes "
          f"the whole OR analysis)")
    rrrc = fast_jk.analysis("rrrc").global_test
    print(f"RRRC global test on the simulated study (jackknife): F({rrrc.df1}, {rrrc.df2:.1f}) = "
          f"{rrrc.statistic:.2f}, p = {rrrc.p_value:.3g}")


if __name__ == "__main__":
    main()
