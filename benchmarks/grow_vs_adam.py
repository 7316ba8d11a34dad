"""Benchmark: grown patterns against sampled patterns and optax Adam (issue 7).

    python benchmarks/grow_vs_adam.py            # full run (about 15 min on 2 cores)
    python benchmarks/grow_vs_adam.py --quick    # small budgets, a smoke check

Data sets (float64, features standardised, bias column):
- ``planted``: a random two-layer ReLU teacher of width 10 on n = 1000, d = 50
  Gaussian inputs, noise 0.1, squared loss, lam = 1e-3;
- ``breast_cancer`` (scikit-learn), logistic loss (labels +-1), lam = 1e-3;
- ``diabetes`` (scikit-learn), squared loss on standardised targets, lam = 1e-3.

Methods, all on the same objective ``L(f(X), y) + lam/2 (||W1||^2 + ||w2||^2)`` of a
two-layer ReLU network:
- ``sampled``: ``fit(model="relu")`` on ``--sampled-gates`` Gaussian gates (augmented
  Lagrangian, tol 1e-4, ``--max-steps``); one point (its time after compilation).
- ``grown``: ``fit(model="relu", gates=Grow(initial_gates=16, max_seconds=budget))``,
  each round's solve at tol 1e-3 / ``--grow-steps`` steps; the per-round objective
  against wall time. Run twice with the same key and the second run reported, so that
  both runs' compilations are excluded alike (Adam's compilation is excluded too).
- ``adam``: full-batch optax Adam on a network as wide as the grown one's number of
  active neurons (at least 10), He initialisation, best of 4 learning rates
  (1e-3, 3e-3, 1e-2, 3e-2), each for the same wall-time budget as growth; objective
  after every chunk of 100 steps.

Prints a table, writes ``benchmarks/results/grow_vs_adam.json`` (every curve),
``grow_vs_adam.md`` (the table) and ``grow_vs_adam.png`` (objective against wall time,
one panel per data set). ``--quick`` writes ``*_quick.*`` instead.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import cvxnn_jax as cn  # noqa: E402
from _environment import environment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LAM = 1e-3
LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2)


def planted(n=1000, d=50, width=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, width)) / np.sqrt(d)
    a = rng.standard_normal(width)
    return X, np.maximum(X @ W, 0) @ a + 0.1 * rng.standard_normal(n), "squared"


def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), 2.0 * y - 1.0, "logistic"


def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std(), "squared"


DATASETS = {"planted": planted, "breast_cancer": breast_cancer, "diabetes": diabetes}


def timed_fit(X, y, loss, gates, **kwargs):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solution = cn.fit(X, y, LAM, gates=gates, model="relu", loss=loss, bias=True, **kwargs)
        jax.block_until_ready(solution.objective)
    return solution, time.perf_counter() - start


def adam_curve(X, y, loss, width, learning_rate, seconds, seed=0, chunk=100):
    """Objective after each chunk of Adam steps until ``seconds`` have passed."""
    Xb = cn.add_bias_column(X)
    loss_fn = cn.get_loss(loss)
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    params = (jax.random.normal(k1, (Xb.shape[1], width)) * np.sqrt(2.0 / Xb.shape[1]),
              jax.random.normal(k2, (width,)) / np.sqrt(width))

    def objective(params):
        W1, w2 = params
        return loss_fn.value(jnp.maximum(Xb @ W1, 0.0) @ w2, y) + 0.5 * LAM * (
            jnp.sum(W1**2) + jnp.sum(w2**2))

    optimizer = optax.adam(learning_rate)

    @jax.jit
    def run(carry):
        def step(carry, _):
            params, state = carry
            grads = jax.grad(objective)(params)
            updates, state = optimizer.update(grads, state)
            return (optax.apply_updates(params, updates), state), None

        carry, _ = jax.lax.scan(step, carry, None, chunk)
        return carry, objective(carry[0])

    carry = (params, optimizer.init(params))
    jax.block_until_ready(run(carry))  # compile outside the budget
    times, values = [], []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        carry, value = run(carry)
        value = float(value)
        times.append(time.perf_counter() - start)
        values.append(value if np.isfinite(value) else np.inf)
    W1, w2 = carry[0]
    final = float(cn.nonconvex_objective(cn.ReLUNetwork(W1, w2, bias=True), X, y, LAM, loss))
    return dict(times=times, objectives=values, final=final)


def run_dataset(name, args):
    X, y, loss = DATASETS[name]()
    X, y = jnp.asarray(X), jnp.asarray(y)
    budget = args.budget[name]
    print(f"\n== {name}: n={X.shape[0]}, d={X.shape[1]}, loss={loss}, budget {budget:.0f} s",
          flush=True)

    gates = cn.sample_gates(jax.random.PRNGKey(0), cn.add_bias_column(X), args.sampled_gates)
    timed_fit(X, y, loss, gates, tol=1e-4, max_steps=args.max_steps)  # compile
    sampled, sampled_seconds = timed_fit(X, y, loss, gates, tol=1e-4, max_steps=args.max_steps)
    print(f"sampled ({gates.shape[1]} patterns): objective {float(sampled.objective):.6g} in "
          f"{sampled_seconds:.1f} s (converged {bool(sampled.converged)})", flush=True)

    spec = cn.Grow(initial_gates=16, patterns_per_round=16, max_rounds=1000, max_seconds=budget,
                   tol=1e-3)
    timed_fit(X, y, loss, spec, tol=1e-3, max_steps=args.grow_steps)  # compile every bucket
    grown, grown_seconds = timed_fit(X, y, loss, spec, tol=1e-3, max_steps=args.grow_steps)
    info = grown.growth
    width = max(10, int(grown.network.active.sum()))
    print(f"grown: objective {float(grown.objective):.6g} after {info.num_rounds} rounds, "
          f"{grown_seconds:.1f} s, {int(info.history_num_patterns[-1])} patterns, width {width}, "
          f"violation {float(info.violation):.3g} ({info.stopped})", flush=True)

    adam = {}
    for learning_rate in LEARNING_RATES:
        adam[learning_rate] = adam_curve(X, y, loss, width, learning_rate, budget)
        print(f"adam lr={learning_rate:g}: final {adam[learning_rate]['final']:.6g} "
              f"({len(adam[learning_rate]['times'])} chunks)", flush=True)
    best_lr = min(adam, key=lambda lr: adam[lr]["final"])
    return dict(
        n=int(X.shape[0]), d=int(X.shape[1]), loss=loss, lam=LAM, budget_seconds=budget,
        sampled=dict(patterns=int(gates.shape[1]), objective=float(sampled.objective),
                     seconds=sampled_seconds, converged=bool(sampled.converged),
                     relative_gap=float(sampled.relative_gap)),
        grown=dict(objective=float(grown.objective), seconds=grown_seconds,
                   rounds=int(info.num_rounds), stopped=info.stopped,
                   violation=float(info.violation), width=width,
                   history_objective=info.history_objective.tolist(),
                   history_seconds=info.history_seconds.tolist(),
                   history_num_patterns=info.history_num_patterns.tolist(),
                   history_violation=info.history_violation.tolist(),
                   converged_last_solve=bool(grown.converged)),
        adam={str(lr): curve for lr, curve in adam.items()},
        adam_best_lr=best_lr,
        adam_best=adam[best_lr]["final"],
    )


def table(results):
    lines = [
        "| data | sampled ReLU (patterns, s) | grown ReLU (rounds, patterns, s) | Adam best of 4 lr "
        "(width, s) | grown <= Adam? |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        s, g = r["sampled"], r["grown"]
        verdict = "yes" if g["objective"] <= r["adam_best"] else (
            f"no (+{100 * (g['objective'] / r['adam_best'] - 1):.0f}%)")
        lines.append(
            f"| {name} | {s['objective']:.5g} ({s['patterns']}, {s['seconds']:.1f}) | "
            f"{g['objective']:.5g} ({g['rounds']}, {g['history_num_patterns'][-1]}, "
            f"{g['seconds']:.1f}) | {r['adam_best']:.5g} ({g['width']}, "
            f"{r['budget_seconds']:.0f}) | {verdict} |")
    return "\n".join(lines)


def figure(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4))
    for ax, (name, r) in zip(np.atleast_1d(axes), results.items()):
        g = r["grown"]
        ax.plot(g["history_seconds"], g["history_objective"], "o-", label="grown patterns (ReLU)")
        ax.plot([r["sampled"]["seconds"]], [r["sampled"]["objective"]], "s",
                label=f"{r['sampled']['patterns']} sampled patterns (ReLU)")
        for lr, curve in r["adam"].items():
            ax.plot(curve["times"], curve["objectives"], lw=1, alpha=0.8, label=f"Adam lr={lr}")
        ax.set_yscale("log")
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel("training objective")
        ax.set_title(name)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small budgets (smoke check)")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--sampled-gates", type=int, default=200)
    parser.add_argument("--max-steps", type=int, default=20_000)
    parser.add_argument("--grow-steps", type=int, default=3_000)
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    args.budget = {"planted": 120 * scale, "breast_cancer": 40 * scale, "diabetes": 40 * scale}
    if args.quick:
        args.max_steps, args.grow_steps = 2_000, 500

    start = time.perf_counter()
    results = {name: run_dataset(name, args) for name in args.datasets.split(",")}
    text = table(results)
    print("\n" + text)
    total = time.perf_counter() - start
    print(f"\ntotal {total:.0f} s")

    suffix = "_quick" if args.quick else ""
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"grow_vs_adam{suffix}.json").write_text(json.dumps(dict(
        environment=environment(optax=optax.__version__), total_seconds=total,
        results=results), indent=1))
    (out / f"grow_vs_adam{suffix}.md").write_text(
        "Training objective (lower is better) of a two-layer ReLU network with weight decay, "
        "float64, lam = 1e-3; `python benchmarks/grow_vs_adam.py`.\n\n" + text + "\n")
    figure(results, out / f"grow_vs_adam{suffix}.png")


if __name__ == "__main__":
    main()
