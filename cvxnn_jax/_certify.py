"""Certify any two-layer ReLU network against the convex program (DESIGN.md section 2).

``certify`` maps a network (for example one trained with optax) to the convex program
by the reverse map, evaluates the semi-infinite dual at its predictions with the
violation oracle, and names the neuron whose addition lowers the objective most.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from ._precision import full_precision
from ._losses import LogisticLoss, Loss, SquaredLoss, get_loss
from ._networks import ReLUNetwork
from ._oracle import Oracle, exact_violation, has_exact_oracle, search_violations
from ._patterns import add_bias_column
from ._programs.relu import activation
from ._prox import safe_norm
from ._validation import check_data_matrix, check_lam, check_targets


class Certificate(eqx.Module):
    """What :func:`certify` reports about a network.

    **Fields:**
    - objective: the network's non-convex objective.
    - convex_objective: the convex objective of the reverse-mapped weights
      (``<= objective``, equal at optimal networks).
    - lower_bound: a lower bound on the global optimum over all networks of any width
      (exact oracle: 1 or 2 features with the bias column); ``nan`` otherwise.
    - dual_value: the largest ``|rho^T sigma(X u)|`` found over unit ``u`` (the maximum
      itself when ``exact``), ``rho = -grad L`` at the network's predictions.
    - violation: ``max(dual_value / lam - 1, 0)``: zero (up to the solve's accuracy) at a
      globally optimal network.
    - exact: whether the oracle was exact (then ``violation`` and ``lower_bound`` are
      global), or a heuristic search (then they are relative to what it searched).
    - neuron_W1: ``(d',)`` first-layer weights of the neuron to add.
    - neuron_w2: its output weight (zero when adding no neuron helps).
    - improved_objective: the objective with that neuron added (``<= objective``).
    """

    objective: Array
    convex_objective: Array
    lower_bound: Array
    dual_value: Array
    violation: Array
    exact: bool = eqx.field(static=True)
    neuron_W1: Array
    neuron_w2: Array
    improved_objective: Array

    @property
    def gap(self) -> Array:
        """``objective - lower_bound``: the network's distance from the global optimum at
        most (``nan`` without an exact oracle)."""
        return self.objective - self.lower_bound


def reverse_map_regulariser(X: Array, W1: Array, w2: Array) -> Array:
    """``sum_i ||v_i|| + ||u_i||`` of the reverse map (DESIGN.md section 2), jittable.

    Neurons are grouped by activation pattern on ``X`` and by the sign of their output
    weight; each group contributes ``||sum_j |alpha_j| w_j||``. Computed with an
    ``(m, m)`` same-group matrix so the shapes do not depend on the data.
    """
    active = (X @ W1 >= 0).astype(X.dtype)  # (n, m)
    n = X.shape[0]
    agree = active.T @ active + (1.0 - active).T @ (1.0 - active)
    same = (agree == n) & (jnp.sign(w2)[:, None] == jnp.sign(w2)[None, :])
    same = same.astype(X.dtype)
    sums = (W1 * jnp.abs(w2)) @ same  # column j: the sum over j's group
    sizes = jnp.sum(same, axis=0)
    return jnp.sum(safe_norm(sums, axis=0) / sizes * (w2 != 0))


def best_step(loss: Loss, predictions, y, direction, lam):
    """``argmin_{t >= 0} L(predictions + t direction) + lam t`` and its value.

    Closed form for the squared loss; bisection on the (monotone) derivative otherwise.
    """
    def phi(t):
        return loss.value(predictions + t * direction, y) + lam * t

    def slope_at(t):
        return direction @ loss.grad(predictions + t * direction, y) + lam

    if isinstance(loss, SquaredLoss):
        n = predictions.shape[0]
        curvature = direction @ direction / n
        t = jnp.maximum(-slope_at(0.0) / jnp.where(curvature > 0, curvature, 1.0), 0.0)
    else:
        def grow(hi):
            return jax.lax.while_loop(lambda h: (slope_at(h) < 0) & (h < 1e12), lambda h: 2 * h, hi)

        hi = grow(jnp.asarray(1.0, predictions.dtype))

        def bisect(_, bounds):
            lo, hi = bounds
            mid = 0.5 * (lo + hi)
            negative = slope_at(mid) < 0
            return jnp.where(negative, mid, lo), jnp.where(negative, hi, mid)

        lo, hi = jax.lax.fori_loop(0, 100, bisect, (jnp.zeros_like(hi), hi))
        t = jnp.where(slope_at(0.0) < 0, lo, 0.0)
    return t, phi(t)


@full_precision
def certify(network: ReLUNetwork, X, y, lam, loss: str | Loss = "squared", *, key=None,
            oracle: Oracle = Oracle()) -> Certificate:
    """How far a two-layer ReLU network is from the global optimum, and how to improve it.

    **Arguments:**
    - network: a :class:`ReLUNetwork` (build one from your own arrays with
      ``cn.ReLUNetwork(W1, w2, bias=True)``, ``W1`` of shape ``(d + 1, m)`` holding the
      first-layer biases in its last row).
    - X: ``(n, d)`` data (without the bias column: the network adds it).
    - y: ``(n,)`` targets (labels in {-1, +1} for the logistic loss).
    - lam: the weight decay of the objective (DESIGN.md section 2's scaling).
    - loss: ``"squared"``, ``"logistic"`` or a :class:`Loss`.
    - key: ``jax.random`` key of the heuristic search's starts.
    - oracle: the heuristic search's settings (used when no exact oracle exists).

    **Returns:** a :class:`Certificate`. With 1 or 2 features and ``network.bias`` the
    oracle is exact and ``lower_bound`` bounds the optimum over networks of every width;
    otherwise the violation is relative to the units the search tried. Runs outside
    ``jit`` (the exact oracle enumerates the data's cells); its searches are jitted.
    """
    if not isinstance(network, ReLUNetwork):
        raise TypeError(f"network must be a cvxnn_jax.ReLUNetwork, got {type(network).__name__}")
    loss_fn = get_loss(loss)
    X = check_data_matrix(X)
    y = check_targets(y, X.shape[0], X.dtype, binary_labels=isinstance(loss_fn, LogisticLoss))
    lam = check_lam(lam, X.dtype)
    X_model = add_bias_column(X) if network.bias else X
    if network.W1.shape[0] != X_model.shape[1]:
        raise ValueError(f"network.W1 has {network.W1.shape[0]} rows but X has "
                         f"{X_model.shape[1]} columns{' with the bias column' if network.bias else ''}")
    W1 = jnp.asarray(network.W1, X.dtype)
    w2 = jnp.asarray(network.w2, X.dtype)
    slope = network.slope
    predictions = activation(X_model @ W1, slope) @ w2
    data_loss = loss_fn.value(predictions, y)
    objective = data_loss + lam * network.weight_decay()  # nonconvex_objective, reusing predictions
    convex_objective = data_loss + lam * reverse_map_regulariser(X_model, W1, w2)
    rho = -loss_fn.grad(predictions, y)

    exact = has_exact_oracle(X_model, network.bias)
    if exact:
        value, unit = exact_violation(X_model, rho, slope)
        dual_value = jnp.abs(value)
        scale = jnp.minimum(1.0, lam / jnp.maximum(dual_value, jnp.finfo(X.dtype).tiny))
        lower_bound = loss_fn.dual(scale * rho, y)
    else:
        found = search_violations(X_model, rho, slope, neurons=W1, key=key, oracle=oracle)
        value, unit = found.values[0], found.units[:, 0]
        dual_value = jnp.abs(value)
        lower_bound = jnp.asarray(jnp.nan, X.dtype)

    sign = jnp.where(value >= 0, 1.0, -1.0)
    t, improved = best_step(loss_fn, predictions, y, sign * activation(X_model @ unit, slope), lam)
    # The network with the neuron (sqrt(t) u, sign sqrt(t)) added: its weight decay grows
    # by lam t, so its objective is the line search's value plus the old weight decay.
    improved = improved - data_loss + objective
    root = jnp.sqrt(t)
    return Certificate(
        objective=objective,
        convex_objective=convex_objective,
        lower_bound=lower_bound,
        dual_value=dual_value,
        violation=jnp.maximum(dual_value / lam - 1.0, 0.0),
        exact=exact,
        neuron_W1=root * unit,
        neuron_w2=sign * root,
        improved_objective=improved,
    )
