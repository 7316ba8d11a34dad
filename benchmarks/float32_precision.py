"""Does the default float32 matrix-product precision (TF32 on NVIDIA Ampere/Hopper GPUs,
bfloat16 passes on TPUs) break float32 solves and their certificates?

    python benchmarks/float32_precision.py [n]     # default n=1000 (d=50, 1000 gates)

Gated ReLU, squared loss, lam=1e-3, planted teacher. Solves once in float64 to a
relative gap of 1e-10 (the reference), then in float32 to tol 1e-3 and 1e-4, with the
caller's precision left at JAX's default and under ``jax.default_matmul_precision
("highest")``; each timed after a compile run. For each it prints the reported objective
and gap, the objective of the returned weights evaluated in float64 ("true"), and the
reported objective's error. Results from an H100 before and after cvxnn_jax ran its
solves at full precision itself (cvxnn_jax/_precision.py):
benchmarks/results/float32_precision_h100_{before,after}.log. On a CPU the two settings
give identical numbers.
"""

import contextlib
import sys
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)

import cvxnn_jax as cn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference import planted_relu_problem  # noqa: E402

LAM = 1e-3


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(jax.__version__, jax.devices(), flush=True)
    X64, y64 = planted_relu_problem(0, n, 50)
    X64, y64 = jnp.asarray(X64), jnp.asarray(y64)
    gates = cn.sample_gates(jax.random.PRNGKey(0), X64, 1000)
    ref = cn.fit(X64, y64, LAM, gates=gates, model="gated_relu", tol=1e-10, max_steps=200_000)
    reference = float(ref.objective)
    print("f64 reference", reference, "rel gap", float(ref.relative_gap), bool(ref.converged),
          flush=True)
    program64 = cn.GatedReLUProgram(X=X64, masks=cn.gate_masks(X64, gates), y=y64,
                                    lam=jnp.asarray(LAM), loss=cn.get_loss("squared"))
    X32, y32, g32 = (jnp.asarray(a, jnp.float32) for a in (X64, y64, gates))
    for precision in ("default", "highest"):
        context = (contextlib.nullcontext() if precision == "default"
                   else jax.default_matmul_precision(precision))
        with context, warnings.catch_warnings():
            warnings.simplefilter("ignore", cn.ConvergenceWarning)
            for tol in (1e-3, 1e-4):
                def solve():
                    sol = cn.fit(X32, y32, LAM, gates=g32, model="gated_relu", tol=tol,
                                 max_steps=50_000)
                    return jax.block_until_ready(sol)
                solve()
                t0 = time.perf_counter()
                sol = solve()
                seconds = time.perf_counter() - t0
                true = float(program64.objective(jnp.asarray(sol.weights, jnp.float64)))
                print(f"precision={precision} tol={tol}: {seconds:.2f} s, steps "
                      f"{int(sol.num_steps)}, reported obj {float(sol.objective):.8g}, reported "
                      f"rel gap {float(sol.relative_gap):.2e}, converged {bool(sol.converged)}, "
                      f"true obj (f64 eval) rel excess {(true - reference) / reference:.2e}, "
                      f"reported obj error {(float(sol.objective) - true) / true:.2e}", flush=True)


if __name__ == "__main__":
    main()
