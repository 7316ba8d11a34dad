"""The shape every convex program takes for the proximal solvers.

A program is ``min_x  loss(A x, y) + regulariser(x)``: a smooth loss of predictions
``z = A x`` (shape ``(n,)``) and a regulariser with a cheap proximal operator. The
solvers only touch ``matvec`` (``x -> A x``), ``rmatvec`` (``r -> A^T r``), the loss,
``prox`` and ``certificate``; each program file adds its own recovery map.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jax import Array


def dual_scale(max_norm: Array, lam: Array) -> Array:
    """``min(1, lam / max_norm)``: the factor that makes a dual direction feasible when
    its largest group norm is ``max_norm``."""
    return jnp.where(max_norm > lam, lam / jnp.where(max_norm > 0, max_norm, 1.0), 1.0)


class CompositeProgram(eqx.Module):
    """``min_x loss(A x, y) + regulariser(x)``.

    Subclasses have the fields ``y`` (targets, ``(n,)``) and ``loss`` (a
    :class:`~cvxnn_jax.Loss`); they are not declared here so that each program keeps
    its own positional field order.
    """

    @abc.abstractmethod
    def matvec(self, x) -> Array:
        """Predictions ``A x``, shape ``(n,)``."""

    @abc.abstractmethod
    def rmatvec(self, r: Array):
        """Adjoint ``A^T r`` for ``r`` of shape ``(n,)``; same structure as ``x``."""

    @abc.abstractmethod
    def regulariser(self, x) -> Array:
        """The non-smooth term's value (scalar)."""

    @abc.abstractmethod
    def prox(self, x, step: Array):
        """``argmin_u 1/2 ||u - x||^2 + step * regulariser(u)``."""

    def init_prox_state(self, x):
        """Warm-start data for :meth:`prox_with_state` (a pytree; ``()`` by default)."""
        del x
        return ()

    def prox_with_state(self, x, step: Array, prox_state):
        """``(prox(x, step), new prox_state)``: a prox that is itself iterative keeps
        what it learnt (an active set) from one call to the next, for a warm start."""
        return self.prox(x, step), prox_state

    @abc.abstractmethod
    def certificate(self, x, z: Array, rho: Array, At_rho) -> tuple[Array, Array]:
        """Duality gap and dual value from a dual direction ``rho`` (shape ``(n,)``).

        ``z = A x`` and ``At_rho = A^T rho`` are passed in so the caller can reuse
        them; the program scales ``rho`` to dual feasibility. Returns ``(gap, dual)``
        with ``gap >= objective(x) - optimum``.
        """

    def certificate_with_state(self, x, z: Array, rho: Array, At_rho, prox_state):
        """:meth:`certificate`, given the prox's warm-start data too."""
        del prox_state
        return self.certificate(x, z, rho, At_rho)

    # Newton polish on a fixed support (``_solvers/newton.py``), for programs whose
    # regulariser is smooth away from zero on its support (column-group lassos).
    can_polish = False

    def polish(self, x, max_newton: int, max_cg: int, tol: Array):
        """``(x', num_products)``: ``x`` improved on its support (never worse) towards a
        relative gap ``tol``, and the number of ``A``/``A^T`` product pairs spent. This
        default does nothing."""
        del max_newton, max_cg, tol
        return x, jnp.zeros((), jnp.int32)

    @abc.abstractmethod
    def init_x(self):
        """The zero point, with the structure and dtype of ``x``."""

    # Residual coordinates. With ``residual = True`` (squared loss only) the solvers track
    # ``z = A x - y`` instead of ``A x``, and every hook below takes that ``z``. When the
    # fit is close (residuals far smaller than ``y``), ``A x`` rounded to float32 keeps
    # only a few digits of the residual, which is the dual point: tracking the residual,
    # computed by :meth:`forward` from an accurate product, lowers float32's certificate
    # floor (DESIGN.md section 2, "Float32 hazard"). Subclasses that support it declare a
    # static ``residual`` field.
    residual = False

    # Two-word iterates. With ``compensated = True`` FISTA holds its iterate as
    # ``x + x_lo`` and moves it by :meth:`prox_increment`: in float32 the iterate stops
    # moving (its steps fall below its last place) long before the certificate is met,
    # and FISTA's momentum, a difference of consecutive iterates, loses its digits first.
    compensated = False

    # FISTA's extrapolated ``A y`` is by default ``A x + beta * A (x - x_prev)``, two
    # passes over z-sized arrays and a z-sized array more in the loop's carry. A program
    # whose product is cheap next to those passes (a small inner dimension) sets this to
    # recompute ``A y`` from ``y`` each step instead; ``A (x - x_prev)`` is then neither
    # updated nor used. Ignored with ``compensated = True``.
    forward_each_step = False

    def prox_increment(self, x_hi, x_lo, move, step):
        """``prox(x + move, step)`` for ``x = x_hi + x_lo`` as ``(increment, zero)``: the
        prox is ``x + increment``, and exactly zero where ``zero`` (a boolean array of
        ``x``'s shape) is true (programs with ``compensated = True``)."""
        raise NotImplementedError(f"{type(self).__name__} has no two-word prox")

    def forward(self, x) -> Array:
        """The solvers' ``z`` for ``x``: ``A x``, or ``A x - y`` in residual coordinates.

        Differences of ``z`` are ``matvec`` of differences of ``x`` in both cases.
        """
        z = self.matvec(x)
        return z - self.y if self.residual else z

    def loss_target(self) -> Array:
        """What the hooks compare ``z`` with: ``y``, or zeros in residual coordinates
        (``L(z, y)`` depends on ``z - y`` alone for the squared loss)."""
        return jnp.zeros_like(self.y) if self.residual else self.y

    # The smooth part as a function of the operator's output ``z = A x``. Solvers call
    # these hooks, never the loss directly, so a program whose smooth part is more than
    # ``loss(z, y)`` (the augmented Lagrangian of the ReLU program) reuses them as they are.
    def smooth_value(self, z) -> Array:
        """The smooth part ``f(z)`` at ``z = A x`` (scalar)."""
        return self.loss.value(z, self.loss_target())

    def smooth_grad(self, z):
        """``grad f(z)``, same structure as ``z``."""
        return self.loss.grad(z, self.loss_target())

    def smooth_bregman(self, z_new, z_old) -> Array:
        """``f(z_new) - f(z_old) - <grad f(z_old), z_new - z_old>``, without cancellation."""
        return self.loss.bregman(z_new, z_old, self.loss_target())

    def smooth_curvature(self, z) -> Array:
        """Diagonal of ``f``'s Hessian with respect to ``z`` (the loss is separable)."""
        return self.loss.curvature(z, self.loss_target())

    def smoothness(self) -> Array:
        """Lipschitz constant of ``grad f`` with respect to ``z``."""
        return self.loss.smoothness(self.y.shape[0])

    def objective(self, x) -> Array:
        """``f(A x) + regulariser(x)``."""
        return self.smooth_value(self.forward(x)) + self.regulariser(x)
