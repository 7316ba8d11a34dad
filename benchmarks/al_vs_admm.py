"""Benchmark: augmented Lagrangian against ADMM, the ReLU program's first-order solvers.

    python benchmarks/al_vs_admm.py                       # n = 100, 200, 500 (~12 min on 2 cores)
    python benchmarks/al_vs_admm.py --problems 2000:20:200 --tols 1e-3 --tag 2000

Where the interior point does not fit in memory, or in float32 (where it stalls),
``solver=None`` falls back on a first-order solver (``cn.default_relu_solver``); this
measures which of ``solver="al"`` and ``solver="admm"`` (default hyper-parameters)
certifies faster. For each problem ``n:d:P`` (planted two-layer ReLU teacher, squared
loss, lam = 1e-3, P sampled gates), each dtype and each tolerance (relative gap and
violation both; tolerances below 1e-5 are skipped in float32), it times ``fit(...,
model="relu", solver=s, tol=t, feasibility_tol=t)`` after a compile call (``max_steps``
is traced, so the compile call runs one step), median of ``--runs``, each capped at
``--max-steps-al`` steps / ``--max-steps-admm`` iterations. It prints steps, whether the
certificate met the tolerance, the relative gap, the violation and the time, and names
the faster solver: the one that converged in less time (a capped solve's time is a lower
bound on its time to the tolerance, so a converged solve beats a capped one that took
longer; two capped solves decide nothing). Writes
``benchmarks/results/al_vs_admm[_<tag>].json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import cvxnn_jax as cn  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))
from _environment import environment  # noqa: E402
from reference import planted_relu_problem  # noqa: E402
from relu_solvers import LAM, solve_once  # noqa: E402


def faster(al: dict, admm: dict):
    """The solver that certified in less time, or None when that is undecided."""
    if al["converged"] and admm["converged"]:
        return "al" if al["median_s"] < admm["median_s"] else "admm"
    for winner, loser in ((al, admm), (admm, al)):
        if winner["converged"] and not loser["converged"] and winner["median_s"] <= loser["median_s"]:
            return winner["solver"]
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", default="100:5:20,200:5:20,500:20:200",
                        help="comma-separated n:d:P")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--tols", default="1e-6,1e-3", help="comma-separated tolerances")
    parser.add_argument("--runs", type=int, default=1, help="timed runs per solve")
    parser.add_argument("--max-steps-al", type=int, default=100_000)
    parser.add_argument("--max-steps-admm", type=int, default=60_000)
    parser.add_argument("--tag", default=None, help="append _<tag> to the JSON name")
    args = parser.parse_args()
    problems = [tuple(int(v) for v in p.split(":")) for p in args.problems.split(",")]
    if any(len(p) != 3 for p in problems):
        parser.error("--problems takes n:d:P triples")
    caps = {"al": args.max_steps_al, "admm": args.max_steps_admm}
    records = []
    for n, d, num_gates in problems:
        X64, y64 = planted_relu_problem(0, n=n, d=d)
        for dtype in args.dtypes.split(","):
            X, y = X64.astype(dtype), y64.astype(dtype)
            gates = cn.sample_gates(jax.random.PRNGKey(0), X, num_gates)
            for tol in (float(t) for t in args.tols.split(",")):
                if dtype == "float32" and tol < 1e-5:
                    continue
                pair = {}
                for solver in ("al", "admm"):
                    solve_once(X, y, gates, solver, 1, tol, tol)  # compile
                    times, sol = [], None
                    for _ in range(args.runs):
                        elapsed, sol = solve_once(X, y, gates, solver, caps[solver], tol, tol)
                        times.append(elapsed)
                    pair[solver] = dict(
                        solver=solver, n=n, d=d, P=int(gates.shape[1]), dtype=dtype, tol=tol,
                        max_steps=caps[solver], times_s=times, median_s=statistics.median(times),
                        steps=int(sol.num_steps), converged=bool(sol.converged),
                        relative_gap=float(sol.relative_gap), violation=float(sol.violation),
                        objective=float(sol.objective))
                    r = pair[solver]
                    print(f"n={n} d={d} P={r['P']} {dtype} tol={tol:g} {solver}: "
                          f"{r['median_s']:.1f} s, {r['steps']} steps, converged={r['converged']}, "
                          f"gap {r['relative_gap']:.1e}, violation {r['violation']:.1e}", flush=True)
                winner = faster(pair["al"], pair["admm"])
                print(f"  faster: {winner or 'undecided (neither certified)'}", flush=True)
                records.append(dict(al=pair["al"], admm=pair["admm"], faster=winner))
    name = "al_vs_admm" + (f"_{args.tag}" if args.tag else "") + ".json"
    out = REPO / "benchmarks" / "results" / name
    out.write_text(json.dumps(dict(environment=environment(), lam=LAM, records=records), indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
