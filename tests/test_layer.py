"""The convex layer: a feature extractor below it trains end to end with optax, and its
gradient equals finite differences."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import cvxnn_jax as cn


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((48, 3))
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2]
    return jnp.asarray(X[:24]), jnp.asarray(y[:24]), jnp.asarray(X[24:]), jnp.asarray(y[24:])


def test_extractor_trains_end_to_end_and_gradient_matches_finite_differences():
    X_train, y_train, X_val, y_val = _data()
    extractor = eqx.nn.Linear(3, 2, key=jax.random.PRNGKey(0))
    features = lambda extractor, X: jax.vmap(extractor)(X)
    layer = cn.ConvexLayer.from_features(jax.random.PRNGKey(1), features(extractor, X_train),
                                         num_gates=8, lam=jnp.asarray(1e-2))
    assert layer.gates.shape[0] == 3  # two features and the bias column

    def loss(models):
        extractor, layer = models
        predictions = layer(features(extractor, X_train), y_train, features(extractor, X_val))
        return jnp.mean((predictions - y_val) ** 2)

    value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(loss))
    value, (grads, layer_grads) = value_and_grad((extractor, layer))

    # The layer predicts what fit on the features predicts.
    reference = cn.fit(features(extractor, X_train), y_train, 1e-2, gates=layer.gates, bias=True,
                       tol=1e-9).network.predict(features(extractor, X_val))
    # (Compiled in another program: the same solve to its tolerance, not bit for bit.)
    np.testing.assert_allclose(value, jnp.mean((reference - y_val) ** 2), rtol=1e-8)
    # lam (an array) gets a gradient; the gates are held fixed.
    assert jnp.isfinite(layer_grads.lam) and float(layer_grads.lam) != 0.0
    assert float(jnp.max(jnp.abs(layer_grads.gates))) == 0.0

    # Gradient with respect to the extractor's weights against central differences.
    direction = np.random.default_rng(2).standard_normal(extractor.weight.shape)
    eps = 1e-5
    shifted = lambda t: (eqx.tree_at(lambda e: e.weight, extractor,
                                     extractor.weight + t * direction), layer)
    numeric = (float(value_and_grad(shifted(eps))[0])
               - float(value_and_grad(shifted(-eps))[0])) / (2 * eps)
    np.testing.assert_allclose(float(jnp.vdot(grads.weight, direction)), numeric, rtol=1e-4)
    assert float(jnp.max(jnp.abs(grads.bias))) > 0

    # End-to-end training of the extractor with optax (lam held): the validation loss falls.
    optimizer = optax.adam(1e-2)
    state = optimizer.init(eqx.filter(extractor, eqx.is_array))

    losses = []
    for _ in range(25):  # the compiled value_and_grad above serves every step
        value, (grads, _) = value_and_grad((extractor, layer))
        updates, state = optimizer.update(grads, state)
        extractor = eqx.apply_updates(extractor, updates)
        losses.append(float(value))
    assert np.mean(losses[-5:]) < 0.8 * losses[0], losses
