"""core.network / core.train: gradients by finite differences and against PyTorch, training lowers the loss,
the shipped weights' accuracy on the held-out digits, weights files without pickle, the training CLI."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

from core import mnist, network, train

TINY = network.Architecture(input_shape=(1, 10, 10), filters=3, kernel_size=3, hidden=6, classes=4)


def tiny_problem(dtype=np.float64):
    rng = np.random.default_rng(3)
    params = network.init_params(rng, TINY, dtype=dtype)
    # non-zero biases so that every parameter matters
    for name in ("conv_bias", "hidden_bias", "output_bias"):
        params[name] = rng.normal(0, 0.1, params[name].shape).astype(dtype)
    x = rng.random((3, 1, 10, 10)).astype(dtype)
    labels = np.array([0, 3, 1])
    return params, x, labels


def loss_only(params, x, labels) -> float:
    _, cache = network.forward(params, x)
    return network.cross_entropy(cache.logits, labels)


def numerical_grads(params, x, labels, names=None, entries=None, eps=1e-6, rng=None):
    """Central differences of the mean cross-entropy; optionally only ``entries`` random entries per name."""
    out = {}
    for name in names or network.PARAM_NAMES:
        p = params[name]
        flat_indices = (
            range(p.size) if entries is None else rng.choice(p.size, size=min(entries, p.size), replace=False)
        )
        num = np.full(p.size, np.nan)
        for k in flat_indices:
            idx = np.unravel_index(k, p.shape)
            old = p[idx]
            p[idx] = old + eps
            plus = loss_only(params, x, labels)
            p[idx] = old - eps
            minus = loss_only(params, x, labels)
            p[idx] = old
            num[k] = (plus - minus) / (2 * eps)
        out[name] = num.reshape(p.shape)
    return out


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-30))


def test_shapes_by_hand():
    arch = network.MNIST_ARCHITECTURE
    shapes = arch.layer_shapes(batch=2)
    assert shapes["conv"] == (2, 30, 24, 24)  # 28 - 5 + 1
    assert shapes["pool"] == (2, 30, 12, 12)  # 24 / 2
    assert arch.flat_size == 4320
    assert arch.param_shapes()["hidden_weight"] == (100, 4320)
    params = network.init_params(np.random.default_rng(0))
    probs, cache = network.forward(params, np.zeros((2, 1, 28, 28), np.float32))
    assert probs.shape == (2, 10) and probs.dtype == np.float32
    for name in ("conv", "relu", "pool", "hidden"):
        assert getattr(cache, name).shape == shapes[name]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


def test_forward_by_hand_on_tiny_network():
    """Each layer recomputed with plain loops, independently of core."""
    params, x, _ = tiny_problem()
    probs, cache = network.forward(params, x)
    w, b = params["conv_weight"], params["conv_bias"]
    n, f, k = x.shape[0], w.shape[0], w.shape[2]
    conv = np.zeros((n, f, 8, 8))
    for i in range(n):
        for c in range(f):
            for y in range(8):
                for z in range(8):
                    conv[i, c, y, z] = np.sum(x[i, 0, y : y + k, z : z + k] * w[c, 0]) + b[c]
    np.testing.assert_allclose(cache.conv, conv, rtol=1e-12, atol=1e-12)
    relu = np.maximum(conv, 0)
    pool = np.zeros((n, f, 4, 4))
    for y in range(4):
        for z in range(4):
            pool[:, :, y, z] = relu[:, :, 2 * y : 2 * y + 2, 2 * z : 2 * z + 2].max(axis=(2, 3))
    np.testing.assert_allclose(cache.pool, pool, rtol=1e-12)
    hidden = np.maximum(pool.reshape(n, -1) @ params["hidden_weight"].T + params["hidden_bias"], 0)
    logits = hidden @ params["output_weight"].T + params["output_bias"]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-12)


def test_gradient_check_whole_network_float64():
    params, x, labels = tiny_problem()
    analytic = network.loss_and_grads(params, x, labels).grads
    numeric = numerical_grads(params, x, labels)
    for name in network.PARAM_NAMES:
        assert analytic[name].shape == params[name].shape
        err = rel_error(analytic[name], numeric[name])
        assert err < 1e-6, f"{name}: relative error {err:.2e}"


def test_gradient_check_mnist_sized_network_sampled():
    """The real 28×28 network, float64, on two real digits: 12 random entries of every parameter."""
    images, labels = mnist.load_mnist(mnist.BUNDLED_DIR)
    x = network.images_to_input(images[:2], dtype=np.float64)
    rng = np.random.default_rng(7)
    params = network.init_params(rng, dtype=np.float64)
    params["conv_bias"] = rng.normal(0, 0.05, 30)
    analytic = network.loss_and_grads(params, x, labels[:2]).grads
    numeric = numerical_grads(params, x, labels[:2], entries=12, rng=rng)
    for name in network.PARAM_NAMES:
        mask = ~np.isnan(numeric[name])
        err = rel_error(analytic[name][mask], numeric[name][mask])
        assert err < 1e-6, f"{name}: relative error {err:.2e}"


def test_matches_pytorch_forward_and_gradients():
    torch = pytest.importorskip("torch")
    params, x, labels = tiny_problem()
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    tx = torch.tensor(x)
    h = torch.nn.functional.conv2d(tx, tp["conv_weight"], tp["conv_bias"])
    h = torch.nn.functional.max_pool2d(torch.relu(h), 2, 2)
    h = torch.relu(torch.nn.functional.linear(h.flatten(1), tp["hidden_weight"], tp["hidden_bias"]))
    logits = torch.nn.functional.linear(h, tp["output_weight"], tp["output_bias"])
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
    loss.backward()
    ours = network.loss_and_grads(params, x, labels)
    assert ours.loss == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(ours.probs, torch.softmax(logits, 1).detach().numpy(), rtol=1e-10)
    for name in network.PARAM_NAMES:
        np.testing.assert_allclose(ours.grads[name], tp[name].grad.numpy(), rtol=1e-9, atol=1e-12)


def test_backward_is_pure():
    params, x, labels = tiny_problem()
    before = {k: v.copy() for k, v in params.items()}
    network.loss_and_grads(params, x, labels)
    for name in network.PARAM_NAMES:
        np.testing.assert_array_equal(params[name], before[name])


def test_a_few_adam_steps_lower_the_loss():
    images, labels = mnist.load_mnist(mnist.BUNDLED_DIR)
    x = network.images_to_input(images[:64])
    y = labels[:64]
    params = network.init_params(np.random.default_rng(0))
    optimizer = network.Adam(params, lr=1e-3)
    losses = []
    for _ in range(6):
        result = network.loss_and_grads(params, x, y)
        losses.append(result.loss)
        optimizer.step(result.grads)
    final = network.loss_and_grads(params, x, y).loss
    assert final < 0.7 * losses[0], losses
    assert all(v.dtype == np.float32 for v in params.values())


def test_adam_step_by_hand():
    params = {"w": np.array([1.0, -2.0])}
    opt = network.Adam(params, lr=0.1)
    opt.step({"w": np.array([0.5, -4.0])})
    # first step: m̂ = g, v̂ = g², so the update is lr · g / (|g| + eps) = ±lr
    np.testing.assert_allclose(params["w"], [0.9, -1.9], rtol=1e-6)
    opt.step({"w": np.array([0.5, 0.0])})
    m = 0.9 * 0.1 * 0.5 + 0.1 * 0.5
    v = 0.999 * 0.001 * 0.25 + 0.001 * 0.25
    after_first = 1.0 - 0.1 * 0.5 / (0.5 + 1e-8)
    expected = after_first - 0.1 * (m / (1 - 0.81)) / (np.sqrt(v / (1 - 0.999**2)) + 1e-8)
    assert params["w"][0] == pytest.approx(expected, rel=1e-9)


def test_training_is_deterministic_given_the_seed():
    images, labels = mnist.load_mnist(mnist.BUNDLED_DIR)
    config = train.Config(epochs=1, batch_size=50, seed=5)
    a, _ = train.train(images[:100], labels[:100], config)
    b, _ = train.train(images[:100], labels[:100], config)
    c, _ = train.train(images[:100], labels[:100], train.Config(epochs=1, batch_size=50, seed=6))
    for name in network.PARAM_NAMES:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["conv_weight"], c["conv_weight"])


def test_shift_images_by_hand():
    image = np.zeros((1, 5, 5), np.uint8)
    image[0, 2, 2] = 9
    rng = np.random.default_rng(0)
    shifted = train.shift_images(np.repeat(image, 50, axis=0), rng, 1)
    positions = {tuple(np.argwhere(s)[0]) for s in shifted}
    assert positions <= {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)} and len(positions) > 3
    assert all(s.sum() == 9 for s in shifted)


def test_shipped_weights_reach_96_percent_on_held_out_digits():
    params, metadata = network.load_weights()
    assert all(v.dtype == np.float32 for v in params.values())
    images, labels = mnist.load_mnist(mnist.BUNDLED_DIR)
    acc = network.accuracy(params, network.images_to_input(images[8000:]), labels[8000:])
    assert acc >= 0.96
    for key in ("data", "epochs", "seed", "accuracy", "date", "training_seconds", "evaluated_on"):
        assert key in metadata
    assert metadata["accuracy"] == pytest.approx(acc, abs=1e-4)
    assert "first 8000" in metadata["data"]


def test_save_load_round_trip(tmp_path):
    params = network.init_params(np.random.default_rng(1))
    network.save_weights(tmp_path / "w.npz", params, {"epochs": 3, "note": "ünïcode"})
    loaded, metadata = network.load_weights(tmp_path / "w.npz")
    assert metadata == {"epochs": 3, "note": "ünïcode"}
    for name in network.PARAM_NAMES:
        np.testing.assert_array_equal(loaded[name], params[name])
        assert loaded[name].dtype == np.float32


def test_load_weights_rejects_pickled_object_arrays(tmp_path):
    params = network.init_params(np.random.default_rng(1))
    arrays = dict(params)
    arrays["metadata"] = np.array([{"evil": "pickle"}], dtype=object)
    np.savez(tmp_path / "evil.npz", **arrays)
    with pytest.raises(ValueError, match="pickle"):
        network.load_weights(tmp_path / "evil.npz")
    arrays = dict(params)
    arrays["conv_weight"] = np.empty((30, 1, 5, 5), dtype=object)
    np.savez(tmp_path / "evil2.npz", **arrays)
    with pytest.raises(ValueError, match="pickle"):
        network.load_weights(tmp_path / "evil2.npz")


def test_load_weights_rejects_wrong_shapes_and_dtypes(tmp_path):
    params = network.init_params(np.random.default_rng(1))
    bad = dict(params, hidden_weight=np.zeros((100, 10), np.float32))
    np.savez(tmp_path / "shape.npz", **bad)
    with pytest.raises(ValueError, match="hidden_weight"):
        network.load_weights(tmp_path / "shape.npz")
    bad = dict(params, conv_bias=np.zeros(30, np.int32))
    np.savez(tmp_path / "dtype.npz", **bad)
    with pytest.raises(ValueError, match="dtype"):
        network.load_weights(tmp_path / "dtype.npz")
    bad = {k: v for k, v in params.items() if k != "output_bias"}
    np.savez(tmp_path / "missing.npz", **bad)
    with pytest.raises(ValueError, match="output_bias"):
        network.load_weights(tmp_path / "missing.npz")


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_train_cli_on_a_full_mnist_folder(tmp_path, capsys):
    images, labels = mnist.load_mnist(mnist.BUNDLED_DIR)
    folder = tmp_path / "mnist"
    folder.mkdir()
    _write_idx(folder / "train-images-idx3-ubyte.gz", images[:120])
    _write_idx(folder / "train-labels-idx1-ubyte.gz", labels[:120])
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images[200:240])
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels[200:240])
    out = tmp_path / "w.npz"
    argv = ["--epochs", "1", "--batch-size", "60", "--mnist-dir", str(folder), "--out", str(out)]
    assert train.main(argv) == 0
    err = capsys.readouterr().err
    assert "full MNIST training set (120 digits)" in err and "test accuracy" in err
    params, metadata = network.load_weights(out)
    assert metadata["epochs"] == 1 and metadata["evaluation"] == "test" and metadata["evaluated_digits"] == 40
    assert json.loads((tmp_path / "w.json").read_text())["seed"] == 0
    with pytest.raises(SystemExit):
        train.main(["--mnist-dir", str(tmp_path), "--out", str(out)])  # no training files there
