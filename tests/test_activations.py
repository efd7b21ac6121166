"""core.activations against hand-worked values and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from core.activations import log_softmax, relu, relu_backward, softmax


def test_relu_and_backward_by_hand():
    x = np.array([-2.0, -0.0, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(relu(x), [0, 0, 0, 0.5, 3])
    np.testing.assert_array_equal(relu_backward(np.full(5, 2.0), x), [0, 0, 0, 2, 2])


def test_relu_keeps_dtype_and_converts_integers():
    assert relu(np.ones(3, dtype=np.float32)).dtype == np.float32
    assert relu(np.array([-1, 2])).dtype == np.float64
    assert relu_backward(np.ones(2, dtype=np.float32), np.ones(2, dtype=np.float32)).dtype == np.float32


def test_relu_nan_passes_through():
    assert np.isnan(relu(np.array([np.nan]))[0])


def test_relu_backward_is_the_derivative():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(20)
    x = x[np.abs(x) > 1e-3]
    h = 1e-6
    numeric = (relu(x + h) - relu(x - h)) / (2 * h)
    np.testing.assert_allclose(relu_backward(np.ones_like(x), x), numeric, atol=1e-9)


def test_relu_backward_shape_mismatch():
    with pytest.raises(ValueError, match="does not match"):
        relu_backward(np.ones(3), np.ones(4))


def test_softmax_by_hand():
    p = softmax(np.array([0.0, np.log(3.0)]))
    np.testing.assert_allclose(p, [0.25, 0.75])
    np.testing.assert_allclose(softmax(np.zeros((2, 4))), np.full((2, 4), 0.25))


def test_softmax_is_stable_for_large_inputs():
    z = np.array([[1000.0, 1000.0, -1000.0], [-1e30, 0.0, 1e30]])
    p = softmax(z)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p[0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(p[1], [0.0, 0.0, 1.0])
    lp = log_softmax(z)
    np.testing.assert_allclose(lp[0, :2], [np.log(0.5)] * 2)
    assert lp[0, 2] == pytest.approx(-2000.0 + np.log(0.5))


def test_softmax_axis_and_shift_invariance():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((3, 5))
    p0 = softmax(z, axis=0)
    np.testing.assert_allclose(p0.sum(axis=0), np.ones(5))
    np.testing.assert_allclose(softmax(z + 7.0), softmax(z))
    np.testing.assert_allclose(np.exp(log_softmax(z, axis=0)), p0)
    assert softmax(z.astype(np.float32)).dtype == np.float32
