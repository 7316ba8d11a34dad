"""Projection onto the polyhedral cones of the ReLU program, batched over columns.

The cone of pattern ``j`` is ``K_j = {v : S_j * (X v) >= 0}`` (``S_j`` the column's
signs, ``(n,)``). The projection of ``w`` onto ``K_j`` is ``w + R^T gamma`` where the rows
``R`` are the constraints ``s_k x_k`` and ``gamma >= 0`` solves the non-negative least
squares ``min_{gamma >= 0} ||w + R^T gamma||`` (the dual of the projection; Moreau: the
residual lies in the polar cone ``{-R^T gamma : gamma >= 0}``). It is solved exactly by
Lawson & Hanson's active-set method, whose active set holds at most ``d`` linearly
independent constraints (a violated constraint is never a combination of the active
ones), so it fits a fixed ``(d,)`` buffer.

Two facts the solvers use:

- For any ``gamma >= 0``, ``||w + R^T gamma|| >= ||Proj_K(w)||``: an unfinished projection
  still bounds the projection's norm from above, which keeps a dual certificate valid.
- FISTA projects nearly the same points step after step, so each column caches its
  *face*: the active set, the projector ``I - R^T (R R^T)^-1 R`` onto it and the map
  ``w -> gamma``. A column whose face still gives ``gamma >= 0`` and a feasible point costs
  two small products; only the others run Lawson-Hanson, ``chunk`` columns at a time,
  from their cached active set.
- The prox of ``t lam ||.|| + I_K`` is zero exactly when ``||Proj_K(w)|| <= t lam``, and
  the certificate only needs the norms of projections above ``lam``. So a column whose
  cached face already bounds the norm (``||w + R^T max(gamma, 0)||``) below the caller's
  ``bound_below`` is left at that bound point, without Lawson-Hanson: near an optimum
  most zero columns are such, and they were most of the work.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from ._precision import full_precision


class Faces(NamedTuple):
    """Cached active sets of ``k`` columns in ``d`` dimensions (``m = d`` slots each).

    - idx: ``(k, m)`` int32 constraint (row) indices.
    - active: ``(k, m)`` bool, which slots are in use.
    - projector: ``(k, d, d)`` projector onto the face ``{v : R v = 0}``.
    - multiplier_map: ``(k, d, m)`` ``M = R^T (R R^T)^-1``; the multipliers are ``-M^T w``.
    """

    idx: Array
    active: Array
    projector: Array
    multiplier_map: Array


def empty_faces(d: int, k: int, dtype) -> Faces:
    """No active constraint in any of ``k`` columns: the projector is the identity."""
    return Faces(
        jnp.zeros((k, d), jnp.int32),
        jnp.zeros((k, d), bool),
        jnp.broadcast_to(jnp.eye(d, dtype=dtype), (k, d, d)),
        jnp.zeros((k, d, d), dtype),
    )


def _rows(X: Array, signs: Array, idx: Array, active: Array) -> Array:
    """The active constraints' rows ``s_k x_k`` (``(m, d)``; unused slots are zero)."""
    return (signs[idx, None] * X[idx]) * active[:, None]


def _gram(R: Array, active: Array) -> Array:
    # The identity on unused slots keeps the matrix invertible; the ridge (relative
    # eps) guards nearly dependent rows.
    m = R.shape[0]
    G = R @ R.T + jnp.diag(jnp.where(active, 0.0, 1.0))
    ridge = jnp.finfo(R.dtype).eps * jnp.trace(G)
    return G + ridge * jnp.eye(m, dtype=R.dtype)


def _face(X, signs, idx, active) -> tuple[Array, Array]:
    """``(projector, multiplier_map)`` of one active set."""
    R = _rows(X, signs, idx, active)
    mask = active[:, None] & active[None, :]
    M = R.T @ jnp.where(mask, jnp.linalg.inv(_gram(R, active)), 0.0)  # (d, m)
    return jnp.eye(R.shape[1], dtype=R.dtype) - M @ R, M


def _lawson_hanson(w, X, signs, inv_row_norms, idx, active, max_iter, threshold):
    """Lawson-Hanson NNLS for the projection of ``w`` (``(d,)``), from the active set
    ``(idx, active)``. One loop: each iteration either moves towards the least-squares
    multipliers and drops the blocking ones, or accepts them and adds the most violated
    constraint (violations measured per unit row norm). Returns
    ``(idx, active, finished)``.
    """
    m = idx.shape[0]
    dtype = w.dtype
    tiny = jnp.finfo(dtype).eps

    def least_squares(idx, active):
        R = _rows(X, signs, idx, active)
        return jnp.where(active, jnp.linalg.solve(_gram(R, active), -(R @ w)), 0.0)

    def body(carry):
        idx, active, gamma, z, it, _ = carry
        blocking = active & (z <= 0)
        blocked = jnp.any(blocking)
        # Move from gamma (>= 0) towards z until the first blocking multiplier hits 0.
        denom = gamma - z
        ratio = jnp.where(denom > 0, gamma / jnp.where(denom > 0, denom, 1.0), 0.0)
        alpha = jnp.clip(jnp.min(jnp.where(blocking, ratio, jnp.inf)), 0.0, 1.0)
        moved = gamma + alpha * (z - gamma)
        drop = blocking & (moved <= tiny * jnp.max(jnp.abs(moved)))
        # z >= 0: accept it and add the most violated constraint, if any.
        accepted = jnp.where(active, z, 0.0)
        p = w + _rows(X, signs, idx, active).T @ accepted
        violation = signs * (X @ p) * inv_row_norms
        violation = violation.at[idx].max(jnp.where(active, jnp.inf, -jnp.inf))
        k = jnp.argmin(violation).astype(jnp.int32)
        add = (violation[k] < -threshold) & ~jnp.all(active)
        slot = jnp.argmin(active)
        idx = jnp.where(blocked | ~add, idx, idx.at[slot].set(k))
        active = jnp.where(blocked, active & ~drop,
                           jnp.where(add, active.at[slot].set(True), active))
        gamma = jnp.where(blocked, jnp.where(active, moved, 0.0), accepted)
        finished = ~blocked & ~add
        return idx, active, gamma, least_squares(idx, active), it + 1, finished

    idx, active, _, _, _, finished = jax.lax.while_loop(
        lambda c: ~c[5] & (c[4] < max_iter), body,
        (idx, active, jnp.zeros((m,), dtype), least_squares(idx, active),
         jnp.zeros((), jnp.int32), jnp.zeros((), bool)),
    )
    # With d independent active constraints the face is {0}: the projection is 0.
    return idx, active, finished | jnp.all(active)


@full_precision
def project_cones(W: Array, X: Array, signs: Array, faces: Faces, chunk: int = 32,
                  max_iter: int | None = None, rtol: float | None = None,
                  bound_below=None):
    """Project every column of ``W`` onto its cone ``{v : signs[:, j] * (X v) >= 0}``.

    **Arguments:**
    - W: ``(d, k)`` points.
    - X: ``(n, d)`` data.
    - signs: ``(n, k)`` the columns' signs (+-1).
    - faces: the cached :class:`Faces` of the ``k`` columns (:func:`empty_faces` at first).
    - chunk: columns given to Lawson-Hanson together.
    - max_iter: Lawson-Hanson iterations per column (default ``10 d``).
    - rtol: a constraint counts as violated below ``-rtol ||w|| ||x_k||`` (default
      ``64 eps``).
    - bound_below: scalar or ``(k,)``; a column whose cached face gives a point
      ``W[:, j] + R^T gamma`` (``gamma >= 0``) of norm at most ``bound_below`` is returned
      as that point, not projected (default None: every column is projected).

    **Returns:** ``(P, faces, finished)``: ``P`` (``(d, k)``) the projections (or, for
    columns under ``bound_below``, points whose norm bounds the projection's), the
    updated faces, and whether every Lawson-Hanson run finished. Whatever ``finished``
    says, ``P[:, j] = W[:, j] + R^T gamma`` with ``gamma >= 0``, so ``||P[:, j]||`` bounds
    the exact projection's norm from above.
    """
    d, k = W.shape
    chunk = min(chunk, k)
    dtype = W.dtype
    max_iter = 10 * d if max_iter is None else max_iter
    rtol = 64 * jnp.finfo(dtype).eps if rtol is None else rtol
    row_norms = jnp.sqrt(jnp.sum(X * X, axis=1))
    inv_row_norms = jnp.where(row_norms > 0, 1.0 / jnp.where(row_norms > 0, row_norms, 1.0), 0.0)

    # Fast path: each column's cached face.
    projected = jnp.einsum("kij,jk->ik", faces.projector, W)
    gamma = -jnp.einsum("kdm,dk->km", faces.multiplier_map, W)
    negative = jnp.any(faces.active & (gamma < 0), axis=1)
    values = signs * (X @ projected) * inv_row_norms[:, None]
    infeasible = jnp.min(values, axis=0) < -rtol * jnp.sqrt(jnp.sum(W * W, axis=0))
    redo = negative | infeasible
    if bound_below is not None:
        # gamma clipped at 0 keeps the bound valid: w + R^T max(gamma, 0).
        rows = signs.T[jnp.arange(k)[:, None], faces.idx][..., None] * X[faces.idx]  # (k, m, d)
        clipped = jnp.where(faces.active, jnp.maximum(gamma, 0.0), 0.0)
        bound_point = W + jnp.einsum("kmd,km->dk", rows, clipped)
        small = jnp.sqrt(jnp.sum(bound_point**2, axis=0)) <= bound_below
        projected = jnp.where(redo & small, bound_point, projected)
        redo = redo & ~small
    count = jnp.sum(redo)
    # The columns to redo, those with the most violated constraints first, then index k
    # (a padding column) to fill the last chunk. A chunk runs as long as its slowest
    # column, and the number of violated constraints predicts the Lawson-Hanson
    # iterations, so sorting groups the long runs together.
    num_violated = jnp.sum(values < -rtol * jnp.sqrt(jnp.sum(W * W, axis=0)), axis=0)
    ranked = jnp.argsort(jnp.where(redo, -num_violated, 1))
    order = jnp.concatenate([jnp.where(jnp.arange(k) < count, ranked, k),
                             jnp.full((chunk,), k, ranked.dtype)])

    def pad(a, axis):
        return jnp.concatenate([a, jnp.zeros_like(jax.lax.slice_in_dim(a, 0, 1, axis=axis))],
                               axis=axis)

    W_pad, signs_pad = pad(W, 1), pad(signs, 1)

    def redo_column(w, s, idx, active):
        threshold = rtol * jnp.sqrt(jnp.sum(w * w))
        idx, active, finished = _lawson_hanson(w, X, s, inv_row_norms, idx, active,
                                               max_iter, threshold)
        projector, M = _face(X, s, idx, active)
        # Multipliers clipped at 0 keep the norm bound valid if the run did not finish.
        g = jnp.maximum(-M.T @ w, 0.0)
        p = jnp.where(jnp.all(active), 0.0, w + _rows(X, s, idx, active).T @ g)
        return p, Faces(idx, active, projector, M), finished

    redo_columns = jax.vmap(redo_column, in_axes=(1, 1, 0, 0), out_axes=(1, 0, 0))

    def body(carry):
        start, P, cached, finished = carry
        cols = jax.lax.dynamic_slice(order, (start,), (chunk,))
        p, new, done = redo_columns(W_pad[:, cols], signs_pad[:, cols], cached.idx[cols],
                                    cached.active[cols])
        P = P.at[:, cols].set(p)
        cached = Faces(*(old.at[cols].set(value) for old, value in zip(cached, new)))
        return start + chunk, P, cached, finished & jnp.all(done)

    _, P, cached, finished = jax.lax.while_loop(
        lambda c: c[0] < count, body,
        (jnp.zeros((), order.dtype), pad(projected, 1), Faces(*(pad(a, 0) for a in faces)),
         jnp.ones((), bool)),
    )
    return P[:, :k], Faces(*(a[:k] for a in cached)), finished
