"""Newton polish: a column-group lasso solved to round-off on a fixed support.

FISTA finds which columns are non-zero long before it pins their values down, and its
certificate lags further still: the gap of the rescaled dual point is of the order of
the *gradient's* error, the square root of the objective's (DESIGN.md section 2). On a
fixed support ``S`` the objective

    F(W) = L(A W) + lam * sum_{i in S} ||w_i||        (w_i = 0 for i not in S)

is smooth (every ``||w_i|| > 0``), so Newton's method converges quadratically there.
Each direction is an inexact solve of ``H D = -grad F`` by conjugate gradients with a
Jacobi preconditioner, where

    H V = A^T (c * (A V)) + lam / ||w_i|| * (v_i - u_i <u_i, v_i>),   u_i = w_i / ||w_i||,

``c`` the loss's curvature. Armijo backtracking on ``F`` makes every accepted step a
descent step, so the polished point is never worse than the one it started from, up to
the objective's round-off (a full step within ``64 eps`` of it is taken when it shrinks
the gradient, see ``newton_step``). A wrong support is not repaired here: the caller
resumes its own iteration from the polished point, and the certificate decides.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from .._prox import safe_norm


def conjugate_gradients(hess, b: Array, inv_diag: Array, atol: Array, max_iter: int):
    """Preconditioned CG for ``hess(x) = b`` (``hess`` symmetric positive semi-definite).

    Stops when ``||b - hess(x)|| <= atol``, after ``max_iter`` iterations, or when a
    direction has no positive curvature. Returns ``(x, iterations)``; each iteration
    calls ``hess`` once.
    """
    tiny = jnp.finfo(b.dtype).tiny

    class CG(NamedTuple):
        x: Array
        r: Array
        p: Array
        rz: Array
        k: Array
        stalled: Array

    def keep_going(s):
        return (s.k < max_iter) & ~s.stalled & (jnp.linalg.norm(s.r) > atol)

    def iteration(s):
        Hp = hess(s.p)
        curvature = jnp.vdot(s.p, Hp)
        stalled = ~(curvature > tiny)
        alpha = jnp.where(stalled, 0.0, s.rz / jnp.where(stalled, 1.0, curvature))
        x = s.x + alpha * s.p
        r = s.r - alpha * Hp
        zr = inv_diag * r
        rz = jnp.vdot(r, zr)
        p = zr + (rz / jnp.maximum(s.rz, tiny)) * s.p
        return CG(x, r, p, rz, s.k + 1, stalled)

    z0 = inv_diag * b
    start = CG(jnp.zeros_like(b), b, z0, jnp.vdot(b, z0), jnp.zeros((), jnp.int32),
               jnp.zeros((), bool))
    out = jax.lax.while_loop(keep_going, iteration, start)
    # No usable curvature at all: fall back on the preconditioned gradient direction.
    x = jnp.where(jnp.any(out.x != 0), out.x, z0)
    return x, out.k


class _Newton(NamedTuple):
    W: Array
    z: Array  # A W
    loss_gradient: Array  # A^T grad L(z), the expensive part of the gradient
    value: Array
    gradient_size: Array  # the largest column's gradient norm
    num_newton: Array
    num_products: Array
    done: Array


def cg_cap(max_cg: int, max_newton: int, steps_left: Array) -> Array:
    """CG iterations per Newton step at most so that :func:`newton_polish`'s worst case,
    ``max_newton * (cap + 1) + 1`` products, fits in ``steps_left`` (a caller that counts
    the products as steps then never passes its ``max_steps``): ``max_cg``, or fewer near
    the end. A cap below 1 means there is no room for the polish."""
    return jnp.minimum(max_cg, (steps_left - 1) // max(max_newton, 1) - 1)


def newton_polish(program, W: Array, max_newton: int, max_cg: int, tol: Array):
    """Newton's method on the support of ``W`` for ``program`` (a column-group lasso).

    Stops after ``max_newton`` steps, when a step no longer lowers the objective or no
    longer halves the largest column gradient (a wrong support, or too few CG steps), or
    when every column's gradient is below ``tol * lam / 10``: then the rescaled
    residual's relative gap is below about ``tol / 5`` (the rescaling costs at most
    twice the largest relative gradient times the regulariser), if the support is right.

    ``program`` provides ``matvec``/``rmatvec`` (``W`` of shape ``(d, P)``),
    ``smooth_value``/``smooth_grad``/``smooth_curvature`` of ``z = A W``, ``lam``,
    ``regulariser`` (``lam * sum_i ||w_i||``) and
    ``gram_diagonal(c)`` (the diagonal of ``A^T diag(c) A``, shape ``(d, P)``).

    Returns ``(W, num_products)``: the polished weights (zero columns stay zero; the
    objective is never higher than at the input, up to ``64 eps`` of it) and the number
    of ``A``/``A^T`` product pairs spent, comparable to FISTA steps.
    """
    dtype = W.dtype
    lam = program.lam
    support = safe_norm(W, axis=0) > 0
    mask = support.astype(dtype)[None, :]
    eps = jnp.finfo(dtype).eps

    def objective(W, z):
        return program.smooth_value(z) + program.regulariser(W)

    def gradient(W, loss_gradient):
        norms = jnp.where(support, safe_norm(W, axis=0), 1.0)
        U = W / norms * mask
        return (loss_gradient + lam * U) * mask, U, lam / norms * mask

    def gradient_size(W, loss_gradient):
        return jnp.max(safe_norm(gradient(W, loss_gradient)[0], axis=0))

    goal = jnp.maximum(0.1 * tol, 16.0 * eps) * lam

    def newton_step(s: _Newton) -> _Newton:
        grad, U, norm_curvature = gradient(s.W, s.loss_gradient)
        c = program.smooth_curvature(s.z)

        def hess(V):
            V = V * mask
            return (program.rmatvec(c * program.matvec(V))
                    + norm_curvature * (V - U * jnp.sum(U * V, axis=0))) * mask

        diag = program.gram_diagonal(c) + norm_curvature * (1.0 - U * U)
        inv_diag = jnp.where((mask > 0) & (diag > 0), 1.0 / jnp.where(diag > 0, diag, 1.0), 0.0)
        grad_norm = jnp.linalg.norm(grad)
        # Inexact Newton: a relative CG tolerance that shrinks with the gradient.
        forcing = jnp.minimum(0.1, jnp.sqrt(grad_norm / jnp.maximum(lam, jnp.finfo(dtype).tiny)))
        D, cg_iterations = conjugate_gradients(hess, -grad, inv_diag, forcing * grad_norm, max_cg)
        AD = program.matvec(D)
        slope = jnp.vdot(grad, D)

        def shorter(carry):
            t, *_ = carry
            t = 0.5 * t
            value = objective(s.W + t * D, s.z + t * AD)
            return t, value

        def too_high(carry):
            t, value = carry
            return (~(value <= s.value + 1e-4 * t * slope)) & (t > 2.0**-30)

        t0 = jnp.ones((), dtype)
        full_value = objective(s.W + D, s.z + AD)
        t, value = jax.lax.while_loop(too_high, shorter, (t0, full_value))
        decreased = (value < s.value) & (slope < 0)
        # Near the optimum the decrease a Newton step buys (about half the gradient
        # times the step) falls below the objective's round-off, and whether the
        # comparison above holds is then chance: measured on an interior point's exit
        # (n = 400, d = 20, 50 patterns), the second step's relative gradient would
        # have gone from 2e-8 to round-off, and the objective rose by one ulp. So a
        # full step whose objective is within round-off of the current one is taken
        # when it shrinks the gradient instead.
        t = jnp.where(decreased, t, 1.0)
        W_try, z_try = s.W + t * D, s.z + t * AD
        loss_gradient = program.rmatvec(program.smooth_grad(z_try))
        size_try = gradient_size(W_try, loss_gradient)
        noise = 64.0 * eps * jnp.abs(s.value)
        flat = ((slope < 0) & (full_value <= s.value + noise)
                & (size_try < s.gradient_size))
        improved = decreased | flat
        size = jnp.where(improved, size_try, s.gradient_size)
        return _Newton(
            W=jnp.where(improved, W_try, s.W),
            z=jnp.where(improved, z_try, s.z),
            loss_gradient=jnp.where(improved, loss_gradient, s.loss_gradient),
            value=jnp.where(decreased, value, jnp.where(flat, full_value, s.value)),
            gradient_size=size,
            num_newton=s.num_newton + 1,
            num_products=s.num_products + cg_iterations + 1,
            # A step that does not halve the gradient says the support (or CG) is not
            # good enough for Newton yet: hand back to the caller rather than grind.
            done=~improved | (size <= goal) | (size > 0.5 * s.gradient_size),
        )

    W = W * mask
    z = program.forward(W)
    loss_gradient = program.rmatvec(program.smooth_grad(z))
    size = gradient_size(W, loss_gradient)
    start = _Newton(W, z, loss_gradient, objective(W, z), size, jnp.zeros((), jnp.int32),
                    jnp.ones((), jnp.int32), ~jnp.any(support) | (size <= goal))
    out = jax.lax.while_loop(lambda s: (s.num_newton < max_newton) & ~s.done, newton_step, start)
    return out.W, out.num_products
