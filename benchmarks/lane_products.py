"""Benchmark: what batching lambdas does to the gated operator's products.

    python benchmarks/lane_products.py                   # n=5000, d=50, P=500 (the path's size)
    python benchmarks/lane_products.py --lanes 1,8,32 --dtype float64

A vmapped regularisation path (``cn.fit_path``) runs one FISTA step for every lambda at
once: each product with ``A`` becomes a product of the shared ``(n, P)`` masks with the
lanes' weights side by side. It can only beat a loop of single solves if that wider
product costs less per lane than the single one. For each lane count ``B`` this times,
after three warm calls (the first compiles), the median of ``--repeats`` calls of: one
``A W`` and ``A^T r`` pair for one lane (jitted), the same pair vmapped over ``B`` lanes,
and the plain matmul ``masks @ V`` with ``V`` of shape ``(P, 64 B)`` (the matvec's
product: ``W`` is padded to 64 rows at d = 50). Prints the per-lane cost and the
matmuls' GFLOP/s and writes ``benchmarks/results/lane_products[_<tag>].json``. Random
data: only the shapes matter here.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import jax
import jax.numpy as jnp

from _environment import environment
from cvxnn_jax._losses import SquaredLoss
from cvxnn_jax._programs.gated_relu import GatedReLUProgram, padded_rows
# Importing it turns on float64 support; every array here has an explicit dtype.
from gated_vs_cvxpy import time_call

REPO = Path(__file__).resolve().parents[1]


def median_time(fn, *args, repeats: int) -> float:
    return statistics.median(time_call(fn, args, repeats))


def product_pair(program, W):
    return program.rmatvec(program.matvec(W))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--d", type=int, default=50)
    parser.add_argument("--P", type=int, default=500)
    parser.add_argument("--lanes", default="1,8,32", help="lane counts, comma-separated")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    dtype = jnp.dtype(args.dtype)
    n, d, P = args.n, args.d, args.P
    X = jax.random.normal(jax.random.PRNGKey(0), (n, d), dtype)
    masks = (jax.random.normal(jax.random.PRNGKey(1), (n, P), dtype) > 0).astype(dtype)
    y = jax.random.normal(jax.random.PRNGKey(2), (n,), dtype)
    program = GatedReLUProgram(X, masks, y, jnp.asarray(0.01, dtype), SquaredLoss())
    padded = padded_rows(d)

    single = median_time(jax.jit(product_pair), program,
                         jax.random.normal(jax.random.PRNGKey(3), (d, P), dtype),
                         repeats=args.repeats)
    print(f"n={n}, d={d}, P={P}, {args.dtype}: one lane's A W and A^T r pair "
          f"{single * 1e3:.2f} ms", flush=True)
    records = []
    batched_pair = jax.jit(jax.vmap(product_pair, in_axes=(None, 0)))
    matmul = jax.jit(lambda M, V: M @ V)
    for lanes in [int(b) for b in args.lanes.split(",")]:
        W = jax.random.normal(jax.random.PRNGKey(4), (lanes, d, P), dtype)
        batched = median_time(batched_pair, program, W, repeats=args.repeats)
        V = jax.random.normal(jax.random.PRNGKey(5), (P, padded * lanes), dtype)
        plain = median_time(matmul, masks, V, repeats=args.repeats)
        gflops = 2.0 * n * P * padded * lanes / plain / 1e9
        record = dict(lanes=lanes, vmapped_pair_s=batched, per_lane_s=batched / lanes,
                      single_over_per_lane=single / (batched / lanes),
                      masks_matmul_s=plain, masks_matmul_gflops=gflops)
        records.append(record)
        print(f"{lanes:3d} lanes: vmapped pair {batched * 1e3:8.2f} ms, per lane "
              f"{record['per_lane_s'] * 1e3:.2f} ms ({record['single_over_per_lane']:.2f}x "
              f"the single lane's speed); masks @ (P, {padded * lanes}) "
              f"{plain * 1e3:.2f} ms = {gflops:.0f} GFLOP/s", flush=True)

    name = "lane_products" + (f"_{args.tag}" if args.tag else "") + ".json"
    out = REPO / "benchmarks" / "results" / name
    out.write_text(json.dumps(dict(environment=environment(), n=n, d=d, P=P, dtype=args.dtype,
                                   single_pair_s=single, records=records), indent=1))
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
