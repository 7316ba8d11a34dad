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
- ``sampled``: ``fit(model="relu", solver=--solver)`` on ``--sampled-gates`` Gaussian
  gates (tol 1e-4, ``--max-steps``); one point (its time after compilation).
  ``--solver auto`` (the default) is the library's default solver, the interior point
  for these sizes; ``--solver al`` gives the augmented Lagrangian (the default before
  2026-11-26).
- ``grown``: ``fit(model="relu", solver=--solver, gates=Grow(initial_gates=16,
  max_seconds=budget))``, each round's solve at tol 1e-3 / ``--grow-steps`` steps; the
  per-round objective against wall time. Run twice with the same key and the second run
  reported, so that both runs' compilations are excluded alike (Adam's compilation is
  excluded too).
- ``seeded``: Adam at its default learning rate 1e-3 (fixed beforehand, not the best
  of the four in hindsight) on as many neurons as the Adam runs below, for
  ``--seed-fraction`` of the budget, then ``Grow(initial_network=that network,
  patterns_per_round=64)`` for the rest, each round solved by the interior-point method
  (tol 1e-4, patterns dropped after one round at zero; ``--seed-solver ipm``, the
  default) or by ReLU FISTA warm-started from the last round (tol 1e-3, certificate
  every 50 steps, ``--seed-steps`` steps per round; ``--seed-solver fista``). Its time
  is Adam's plus growth's. The grown network may end wider than Adam's (the table gives
  its number of neurons).
- ``adam``: full-batch optax Adam on a network as wide as the grown one's number of
  active neurons (at least 10), He initialisation, best of 4 learning rates
  (1e-3, 3e-3, 1e-2, 3e-2), each for the same wall-time budget as growth; objective
  after every chunk of 100 steps.

The table's objectives for the growth methods are the best round that ended within the
budget (a round started before the budget ran out may end after it).

Prints a table, writes ``benchmarks/results/grow_vs_adam.json`` (every curve),
``grow_vs_adam.md`` (the table) and ``grow_vs_adam.svg`` (objective against wall time,
one column per data set, the bottom row zoomed on the end; drawn by ``_svg_plot``: no
matplotlib needed). ``--quick`` writes ``*_quick.*`` instead; ``--table-only`` rewrites
the table and the figure from the JSON.
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
from _svg_plot import COLORS, Panel, Series, write_svg  # noqa: E402

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


def adam_curve(X, y, loss, width, learning_rate, seconds, seed=0, chunk=100,
               return_network=False):
    """Objective after each chunk of Adam steps until ``seconds`` have passed (and the
    trained network, with ``return_network``)."""
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
    network = cn.ReLUNetwork(*carry[0], bias=True)
    final = float(cn.nonconvex_objective(network, X, y, LAM, loss))
    curve = dict(times=times, objectives=values, final=final)
    return (curve, network) if return_network else curve


def run_dataset(name, args):
    X, y, loss = DATASETS[name]()
    X, y = jnp.asarray(X), jnp.asarray(y)
    budget = args.budget[name]
    print(f"\n== {name}: n={X.shape[0]}, d={X.shape[1]}, loss={loss}, budget {budget:.0f} s",
          flush=True)

    gates = cn.sample_gates(jax.random.PRNGKey(0), cn.add_bias_column(X), args.sampled_gates)
    kwargs = dict(solver=args.solver, tol=1e-4, max_steps=args.max_steps)
    timed_fit(X, y, loss, gates, **kwargs)  # compile
    sampled, sampled_seconds = timed_fit(X, y, loss, gates, **kwargs)
    print(f"sampled ({gates.shape[1]} patterns): objective {float(sampled.objective):.6g} in "
          f"{sampled_seconds:.1f} s (converged {bool(sampled.converged)})", flush=True)

    spec = cn.Grow(initial_gates=16, patterns_per_round=16, max_rounds=1000, max_seconds=budget,
                   tol=1e-3)
    kwargs = dict(solver=args.solver, tol=1e-3, max_steps=args.grow_steps)
    timed_fit(X, y, loss, spec, **kwargs)  # compile every bucket
    grown, grown_seconds = timed_fit(X, y, loss, spec, **kwargs)
    grown_record = growth_record(grown, grown_seconds, 0.0, budget)
    print(f"grown: objective {float(grown.objective):.6g} after {grown_record['rounds']} rounds, "
          f"{grown_seconds:.1f} s, {grown_record['history_num_patterns'][-1]} patterns, "
          f"violation {grown_record['violation']:.3g} ({grown_record['stopped']})", flush=True)

    # Adam-seeded growth: Adam (its default lr 1e-3, fixed beforehand) for a quarter of the
    # budget, then growth from its network's patterns for the rest; the time counted is
    # the sum (Adam's compilation excluded, like the others').
    seed_seconds = args.seed_fraction * budget
    width = max(10, grown_record["width"])
    seed_curve, seed_network = adam_curve(X, y, loss, width, 1e-3, seed_seconds,
                                          return_network=True)
    adam_seconds = seed_curve["times"][-1]
    seeded_spec = cn.Grow(initial_network=seed_network, patterns_per_round=64, max_rounds=1000,
                          max_seconds=budget - adam_seconds, tol=1e-3,
                          drop_after=1 if args.seed_solver == "ipm" else 2)
    if args.seed_solver == "ipm":
        # Each round solved to a relative gap of 1e-4 (the round's patterns' optimum to
        # 0.01%; the interior point needs a few more iterations for it than for 1e-3).
        seed_kwargs = dict(solver="ipm", tol=1e-4, max_steps=100)
    else:
        # Certificates every 50 steps: a round rarely reaches tol 1e-3, and each check
        # projects every column's dual vector.
        seed_kwargs = dict(solver=cn.FISTA(check_every=50), tol=1e-3, max_steps=args.seed_steps)
    timed_fit(X, y, loss, seeded_spec, **seed_kwargs)  # compile every bucket
    seeded, seeded_seconds = timed_fit(X, y, loss, seeded_spec, **seed_kwargs)
    seeded_record = growth_record(seeded, seeded_seconds, adam_seconds, budget)
    seeded_record.update(adam_seconds=adam_seconds, adam_width=width,
                         adam_objective=seed_curve["final"], adam_curve=seed_curve)
    print(f"Adam-seeded: Adam {seed_curve['final']:.6g} after {adam_seconds:.1f} s, then "
          f"{float(seeded.objective):.6g} after {seeded_record['rounds']} rounds, total "
          f"{adam_seconds + seeded_seconds:.1f} s, "
          f"{seeded_record['history_num_patterns'][-1]} patterns, violation "
          f"{seeded_record['violation']:.3g} ({seeded_record['stopped']})", flush=True)

    adam = {}
    for learning_rate in LEARNING_RATES:
        adam[learning_rate] = adam_curve(X, y, loss, width, learning_rate, budget)
        print(f"adam lr={learning_rate:g} (width {width}): final "
              f"{adam[learning_rate]['final']:.6g} ({len(adam[learning_rate]['times'])} chunks)",
              flush=True)
    best_lr = min(adam, key=lambda lr: adam[lr]["final"])
    return dict(
        n=int(X.shape[0]), d=int(X.shape[1]), loss=loss, lam=LAM, budget_seconds=budget,
        sampled=dict(patterns=int(gates.shape[1]), objective=float(sampled.objective),
                     seconds=sampled_seconds, converged=bool(sampled.converged),
                     relative_gap=float(sampled.relative_gap)),
        grown=grown_record,
        seeded=seeded_record,
        adam_width=width,
        adam={str(lr): curve for lr, curve in adam.items()},
        adam_best_lr=best_lr,
        adam_best=adam[best_lr]["final"],
    )


def growth_record(solution, seconds, offset, budget):
    """A growth run's figures; ``history_seconds`` and ``seconds`` count from the start of
    the method (``offset``: time spent before growth), and ``within_budget`` is the best
    objective of a round that ended within ``budget``."""
    info = solution.growth
    times = (offset + info.history_seconds).tolist()
    within = [value for t, value in zip(times, info.history_objective) if t <= budget]
    return dict(objective=float(solution.objective), seconds=offset + seconds,
                within_budget=min(within) if within else float("inf"),
                rounds=int(info.num_rounds), stopped=info.stopped,
                violation=float(info.violation),
                width=int(solution.network.active.sum()),
                history_objective=info.history_objective.tolist(),
                history_seconds=times,
                history_num_patterns=info.history_num_patterns.tolist(),
                history_violation=info.history_violation.tolist(),
                converged_last_solve=bool(solution.converged))


def table(results):
    lines = [
        "| data | sampled ReLU (patterns, s) | grown ReLU (rounds, patterns, s) | Adam-seeded "
        "grown ReLU (Adam s + rounds, patterns, width, s) | Adam best of 4 lr (width, s) | "
        "grown <= Adam? | seeded <= Adam? |",
        "|---|---|---|---|---|---|---|",
    ]

    def verdict(record, best):
        # The best round that ended within the budget.
        value = record["within_budget"]
        if not np.isfinite(value):
            return "no (no round within the budget)"
        return "yes" if value <= best else f"no (+{100 * (value / best - 1):.2f}%)"

    def reached(record):
        if np.isfinite(record["within_budget"]):
            return f"{record['within_budget']:.5g}"
        return f"none in budget; {record['history_objective'][0]:.5g} at {record['seconds']:.0f} s"

    for name, r in results.items():
        s, g, e = r["sampled"], r["grown"], r["seeded"]
        lines.append(
            f"| {name} | {s['objective']:.5g} ({s['patterns']}, {s['seconds']:.1f}) | "
            f"{reached(g)} ({g['rounds']}, {g['history_num_patterns'][-1]}, "
            f"{g['seconds']:.1f}) | {reached(e)} ({e['adam_seconds']:.0f} + "
            f"{e['rounds']}, {e['history_num_patterns'][-1]}, width {e['width']}, "
            f"{e['seconds']:.1f}) | "
            f"{r['adam_best']:.5g} ({r['adam_width']}, {r['budget_seconds']:.0f}) | "
            f"{verdict(g, r['adam_best'])} | {verdict(e, r['adam_best'])} |")
    return "\n".join(lines)


def write_table(results, path):
    text = table(results)
    path.write_text("Training objective (lower is better) of a two-layer ReLU network with "
                    "weight decay, float64, lam = 1e-3; `python benchmarks/grow_vs_adam.py`."
                    "\n\n" + text + "\n")
    return text


def zoom_limits(series, best):
    """y limits of the end game: from just below the lowest value of any curve up to where
    Adam's best lies a quarter of the plot's height above that value."""
    # Scaled to that gap rather than to Adam's best (say up to 1.05x): the gap between
    # Adam-seeded growth and Adam's best can be under 0.1%, a few pixels in such a range.
    low = min(y for s in series for y in s.y if np.isfinite(y))
    # Adam's curves end at its best, so low <= best; the floor keeps a range if equal.
    span = max(4 * (best - low), 0.002 * best)
    return low - 0.04 * span, low + span


def figure(results, path):
    """Objective against wall time as an SVG (``_svg_plot``; no matplotlib needed), one
    column per data set: the top row on a log axis over every curve's whole range, the
    bottom row on a linear axis zoomed on the end (``zoom_limits``), with the legend."""
    top, zoom = [], []
    for name, r in results.items():
        g, e, s = r["grown"], r["seeded"], r["sampled"]
        # Adam's curves first (below the others; the legend follows the same order), so
        # that their noise does not cover the growth runs' markers.
        series = [Series(curve["times"], curve["objectives"], f"Adam lr={lr}", COLORS[3 + i],
                         width=1, opacity=0.8)
                  for i, (lr, curve) in enumerate(r["adam"].items())]
        series += [
            Series(g["history_seconds"], g["history_objective"], "grown patterns (ReLU)",
                   COLORS[0], marker="circle"),
            # Adam's seed run (dotted), then growth from its network: the seeded history's
            # times already count Adam's seconds (growth_record's offset).
            Series(e["adam_curve"]["times"], e["adam_curve"]["objectives"], width=1,
                   dash="1.5,2"),
            Series(e["history_seconds"], e["history_objective"],
                   "Adam (lr 1e-3) then grown patterns (ReLU)", COLORS[1], marker="diamond"),
            Series([s["seconds"]], [s["objective"]], f"{s['patterns']} sampled patterns (ReLU)",
                   COLORS[2], marker="square", line=False),
        ]
        references = dict(hline=(r["adam_best"], "Adam's best"),
                          vline=(r["budget_seconds"], "budget"))
        top.append(Panel(name, series, legend=False, **references))
        zoom.append(Panel(f"{name} (zoom)", series, yscale="linear",
                          ylim=zoom_limits(series, r["adam_best"]), **references))
    write_svg(path, [top, zoom])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small budgets (smoke check)")
    parser.add_argument("--table-only", action="store_true",
                        help="rewrite the table and redraw the figure from the saved JSON "
                             "(no run)")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--sampled-gates", type=int, default=200)
    parser.add_argument("--max-steps", type=int, default=20_000)
    parser.add_argument("--grow-steps", type=int, default=3_000)
    parser.add_argument("--seed-fraction", type=float, default=0.25,
                        help="share of the budget Adam runs before Adam-seeded growth")
    parser.add_argument("--solver", choices=("al", "admm", "fista", "ipm", "auto"),
                        default="auto",
                        help="solver of the sampled and grown methods ('auto': the library's "
                             "default, the interior point here)")
    parser.add_argument("--seed-solver", choices=("ipm", "fista"), default="ipm",
                        help="solver of Adam-seeded growth's rounds: the interior point (tol "
                             "1e-4, 100 iterations at most) or ReLU FISTA (tol 1e-3, "
                             "--seed-steps steps)")
    parser.add_argument("--seed-steps", type=int, default=200,
                        help="FISTA steps per round of Adam-seeded growth (--seed-solver fista)")
    parser.add_argument("--tag", type=str, default=None,
                        help="append _<tag> to the output names (e.g. a GPU run)")
    args = parser.parse_args()
    suffix = ("_quick" if args.quick else "") + (f"_{args.tag}" if args.tag else "")
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    if args.table_only:
        saved = json.loads((out / f"grow_vs_adam{suffix}.json").read_text())
        print(write_table(saved["results"], out / f"grow_vs_adam{suffix}.md"))
        figure(saved["results"], out / f"grow_vs_adam{suffix}.svg")
        return
    scale = 0.1 if args.quick else 1.0
    args.budget = {"planted": 120 * scale, "breast_cancer": 40 * scale, "diabetes": 40 * scale}
    if args.quick:
        args.max_steps, args.grow_steps, args.seed_steps = 2_000, 500, 200

    start = time.perf_counter()
    results = {name: run_dataset(name, args) for name in args.datasets.split(",")}
    text = write_table(results, out / f"grow_vs_adam{suffix}.md")
    print("\n" + text)
    total = time.perf_counter() - start
    print(f"\ntotal {total:.0f} s")

    (out / f"grow_vs_adam{suffix}.json").write_text(json.dumps(dict(
        environment=environment(optax=optax.__version__), total_seconds=total,
        settings=dict(solver=args.solver, seed_solver=args.seed_solver,
                      seed_fraction=args.seed_fraction, seed_steps=args.seed_steps,
                      budgets=args.budget),
        results=results), indent=1))
    figure(results, out / f"grow_vs_adam{suffix}.svg")


if __name__ == "__main__":
    main()
