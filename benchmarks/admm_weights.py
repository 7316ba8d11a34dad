"""Benchmark: ADMM's iterations to a certified tolerance against its cone weight.

    python benchmarks/admm_weights.py                 # the three sizes below (~15 min on 2 cores)
    python benchmarks/admm_weights.py --sizes 100,200 # the small ones only

``ADMM(cone_weight=w)`` weighs the ``n x 2P`` cone constraints ``G W = s`` in the
penalty against ``F W = z`` and ``W = W'`` (weight 1). For each problem (planted
two-layer ReLU teacher, squared loss, lam = 1e-3, float64; n = 100 and 200 with d = 5,
P = 20, n = 500 with d = 20, P = 200 as in ``relu_solvers.py``) and each weight, it
solves ``fit(..., model="relu", solver=cn.ADMM(cone_weight=w), tol=1e-6,
feasibility_tol=1e-6)`` with at most ``--max-steps`` iterations and prints the
iterations, whether the certificate met the tolerance, the relative gap and the
violation. Iteration counts do not depend on the machine's load; the wall times
printed beside them (with compilation) do. Writes ``benchmarks/results/admm_weights.json``.
"""

from __future__ import annotations

import argparse
import json
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
from relu_solvers import solve_once  # noqa: E402

PROBLEMS = {100: (5, 20), 200: (5, 20), 500: (20, 200)}  # n -> (d, gates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,200,500", help="comma-separated n in 100, 200, 500")
    parser.add_argument("--weights", default="1,0.1,0.03,0.01", help="comma-separated cone weights")
    parser.add_argument("--max-steps", type=int, default=60_000, help="ADMM iterations at most")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if set(sizes) - set(PROBLEMS):
        parser.error(f"sizes must be among {sorted(PROBLEMS)}")
    weights = [float(w) for w in args.weights.split(",")]
    records = []
    for n in sizes:
        d, num_gates = PROBLEMS[n]
        X, y = planted_relu_problem(0, n=n, d=d)
        gates = cn.sample_gates(jax.random.PRNGKey(0), X, num_gates)
        for weight in weights:
            seconds, sol = solve_once(X, y, gates, cn.ADMM(cone_weight=weight),
                                      args.max_steps, 1e-6, 1e-6)
            record = dict(n=n, d=d, P=int(gates.shape[1]), cone_weight=weight,
                          iterations=int(sol.num_steps), converged=bool(sol.converged),
                          relative_gap=float(sol.relative_gap), violation=float(sol.violation),
                          objective=float(sol.objective),
                          seconds_with_compilation=seconds)
            records.append(record)
            print(f"n={n} d={d} P={record['P']} cone_weight={weight:g}: "
                  f"{record['iterations']} iterations, converged={record['converged']}, "
                  f"gap {record['relative_gap']:.2e}, violation {record['violation']:.1e} "
                  f"({record['seconds_with_compilation']:.1f} s)", flush=True)
    out = REPO / "benchmarks" / "results" / "admm_weights.json"
    out.write_text(json.dumps(dict(environment=environment(), max_steps=args.max_steps,
                                   records=records), indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
