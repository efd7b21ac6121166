"""POST /api/stack/activation: a Conv2d of a stack opened on its real input.

The stored activation is checked against core's forward pass and against PyTorch's ``nn.Sequential`` prefix
built here layer by layer (with the weights the API publishes as ``.npz``); the single-layer endpoints run
on it (conv, explain, im2col, backward, conv.png) and their maps are checked against ``torch.nn.functional``
on that PyTorch prefix. Then hostile ids (422/404, never 500), a corrupt or foreign stored file (410, never
unpickled) and the limits (layer index, not a Conv2d, too large to store, max_side).
"""

from __future__ import annotations

import base64
import hashlib
import io
import pickle

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.image_source import load_array
from app.main import create_app
from app.settings import Settings
from core import layers as L
from core.stack_text import parse

LENET = (
    "nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), "
    "nn.ReLU(), nn.MaxPool2d(2))"
)
GROUPED = (
    "nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), "
    "nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), "
    "nn.Conv2d(8, 4, 3, padding=2, dilation=2, groups=2))"
)
HEX64 = "0123456789abcdef" * 4


def _stack(client, **body):
    body = {"image": "mnist:0", "color": "gray", "max_side": 28, "text": LENET, **body}
    return client.post("/api/stack", json=body)


def _open(client, layer, **body):
    body = {"image": "mnist:0", "color": "gray", "max_side": 28, "text": LENET, "layer": layer, **body}
    return client.post("/api/stack/activation", json=body)


def _weights(client, **body):
    """The stack's weights as the API publishes them (its .npz download)."""
    answer = _stack(client, **body).json()
    archive = np.load(io.BytesIO(base64.b64decode(answer["weights_npz"])), allow_pickle=False)
    return {name: archive[name] for name in archive.files}


def _conv_body(opened, **extra):
    conv = opened["conv"]
    return {
        "image": opened["id"],
        "weight": conv["weight"],
        "bias": conv["bias"],
        "stride": conv["stride"],
        "padding": conv["padding"],
        "dilation": conv["dilation"],
        "groups": conv["groups"],
        "values": True,
        **extra,
    }


def _torch_lenet(torch, weights):
    """LeNet as nn.Sequential, written out here, with the API's weights."""
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )
    with torch.no_grad():
        for index in (0, 3):
            model[index].weight.copy_(torch.from_numpy(weights[f"{index}.weight"]))
            model[index].bias.copy_(torch.from_numpy(weights[f"{index}.bias"]))
    return model


def test_the_stored_activation_is_the_stack_prefix_and_conv_on_it_is_the_next_layer(client, settings):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    response = _open(client, 3)
    assert response.status_code == 200, response.text
    opened = response.json()
    assert opened["id"].startswith("act:") and len(opened["id"]) == 68
    assert opened["shape"] == [6, 14, 14]
    conv = opened["conv"]
    assert (conv["in_channels"], conv["out_channels"], conv["kernel_size"], conv["padding"]) == (
        6,
        16,
        [5, 5],
        [0, 0, 0, 0],
    )
    assert conv["relu_after"] is True and conv["groups"] == 1
    # the stack's pool after that ReLU, for the convolution view's pooling
    assert conv["pool_after"] == {
        "mode": "max",
        "kernel_size": [2, 2],
        "stride": [2, 2],
        "padding": [0, 0],
        "dilation": [1, 1],
        "ceil_mode": False,
        "count_include_pad": True,
    }
    # the file: <sha256>.npy in the upload store, named by its bytes, a plain float32 array
    digest = opened["id"][4:]
    data = (settings.store_dir / f"{digest}.npy").read_bytes()
    assert hashlib.sha256(data).hexdigest() == digest
    stored = np.load(io.BytesIO(data), allow_pickle=False)
    assert stored.dtype == np.float32 and stored.shape == (6, 14, 14)
    # = core's forward pass up to layer 3 ...
    layers = parse(LENET)
    x = load_array("mnist:0", "gray", 28, settings)
    np.testing.assert_array_equal(stored, L.forward(layers, L.kaiming_uniform(layers, 0), x).maps[3][0])
    # ... and PyTorch's nn.Sequential prefix with the weights the API publishes
    weights = _weights(client)
    np.testing.assert_allclose(
        np.array(conv["weight"], dtype=np.float32), weights["3.weight"], rtol=0, atol=0
    )
    model = _torch_lenet(torch, weights)
    tx = torch.from_numpy(np.array(x))
    prefix = model[:3](tx).detach()
    np.testing.assert_allclose(stored, prefix[0].numpy(), rtol=1e-5, atol=1e-6)
    assert opened["min"] == pytest.approx(float(stored.min())) and opened["max"] == pytest.approx(
        float(stored.max())
    )
    # POST /api/conv on the activation with layer 3's weights = layer 3's pre-activation in PyTorch ...
    answer = client.post("/api/conv", json=_conv_body(opened))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["input"]["shape"] == [1, 6, 14, 14] and body["conv"]["shape"] == [1, 16, 10, 10]
    assert body["input"]["png"].startswith("data:image/png;base64,")
    pre = F.conv2d(prefix, torch.from_numpy(weights["3.weight"]), torch.from_numpy(weights["3.bias"]))[
        0
    ].numpy()
    maps = np.array([m["values"] for m in body["conv"]["maps"]])
    np.testing.assert_allclose(maps, pre, rtol=1e-5, atol=1e-5)
    # ... and with its ReLU and pool, the stack's own output in PyTorch
    pooled = client.post(
        "/api/conv", json=_conv_body(opened, activation="relu", pool={"mode": "max", "kernel_size": 2})
    ).json()
    out = model(tx)[0].detach().numpy()
    np.testing.assert_allclose(
        np.array([m["values"] for m in pooled["pool"]["maps"]]), out, rtol=1e-5, atol=1e-5
    )
    # explain at one output: the window has the 6 channels of the activation, and its sum is torch's value
    f, y, z = 7, 4, 6
    explained = client.post("/api/explain", json={**_conv_body(opened), "position": [f, y, z]}).json()
    assert explained["channels"] == list(range(6))
    assert explained["pre_activation"] == pytest.approx(float(pre[f, y, z]), rel=1e-5, abs=1e-5)
    window = np.array(explained["window"], dtype=np.float32)  # JSON carries the float32 values
    np.testing.assert_array_equal(window, stored[:, y : y + 5, z : z + 5])


def test_every_single_layer_endpoint_takes_the_activation(client):
    opened = _open(client, 3).json()
    body = _conv_body(opened)
    im2col = client.post("/api/im2col", json=body)
    assert im2col.status_code == 200, im2col.text
    assert im2col.json()["rows"] == 6 * 5 * 5 and im2col.json()["cols"] == 10 * 10
    backward = client.post("/api/backward", json={**body, "upstream": {"kind": "ones"}})
    assert backward.status_code == 200, backward.text
    assert np.array(backward.json()["grad_weight"]["values"]).shape == (16, 6, 5, 5)
    rounded = np.round(np.array(opened["conv"]["weight"]), 2).tolist()  # a query holds 20,000 characters
    conv_png = client.get(
        "/api/conv.png", params={"image": opened["id"], "weight": str(rounded).replace(" ", "")}
    )
    assert conv_png.status_code == 200, conv_png.text
    assert conv_png.content.startswith(b"\x89PNG")
    channels = client.post("/api/conv?channels=2", json=body).json()["channels"]
    assert channels["conv"]["shape"] == [1, 6, 10, 10]
    info = client.get(f"/api/images/{opened['id']}").json()
    assert (info["kind"], info["channels"], info["width"], info["height"]) == ("activation", 6, 14, 14)
    picture = client.get(f"/api/images/{opened['id']}.png")
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
    npy = client.get(f"/api/images/{opened['id']}.npy")
    assert npy.status_code == 200
    assert hashlib.sha256(npy.content).hexdigest() == opened["id"][4:]
    # colour does not apply to an activation (it keeps its channels); a max_side that would shrink it is a 422
    rgb = client.post("/api/conv", json={**body, "color": "rgb"}).json()
    assert rgb["input"]["shape"] == [1, 6, 14, 14]
    assert client.post("/api/conv", json={**body, "max_side": 14}).status_code == 200
    small = client.post("/api/conv", json={**body, "max_side": 8})
    assert small.status_code == 422 and small.json()["detail"][0]["loc"] == ["body", "max_side"]
    assert "used as stored" in small.json()["detail"][0]["msg"]
    # a weight with the wrong channel count is refused with the real C in the sentence
    wrong = client.post("/api/conv", json={**body, "weight": [[[[1.0]]]], "bias": None})
    assert wrong.status_code == 422
    message = wrong.json()["detail"][0]["msg"]
    assert "the input has 6 channels in 1 group(s), so each filter needs 6" in message


def test_grouped_dilated_strided_layer_on_an_rgb_photo(client, settings):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    common = {"image": "sample:astronaut", "color": "rgb", "max_side": 64, "text": GROUPED}
    opened = _open(client, 3, **common).json()
    assert opened["shape"] == [8, 17, 17]  # 64 → conv s2 p1 → 32 → avg 3 s2 p1 ceil: ceil(31 / 2) + 1 = 17
    assert opened["conv"]["groups"] == 2 and opened["conv"]["padding"] == [2, 2, 2, 2]
    assert opened["conv"]["relu_after"] is False and opened["conv"]["pool_after"] is None
    weights = _weights(client, **common)
    x = torch.from_numpy(np.array(load_array("sample:astronaut", "rgb", 64, settings)))
    h = F.conv2d(
        x, torch.from_numpy(weights["0.weight"]), torch.from_numpy(weights["0.bias"]), stride=2, padding=1
    )
    h = F.avg_pool2d(F.relu(h), 3, stride=2, padding=1, ceil_mode=True)
    out = F.conv2d(
        h,
        torch.from_numpy(weights["3.weight"]),
        torch.from_numpy(weights["3.bias"]),
        padding=2,
        dilation=2,
        groups=2,
    )
    answer = client.post("/api/conv", json=_conv_body(opened))
    assert answer.status_code == 200, answer.text
    maps = np.array([m["values"] for m in answer.json()["conv"]["maps"]])
    np.testing.assert_allclose(maps, out[0].numpy(), rtol=1e-5, atol=1e-5)
    # layer 0 reads the image itself: its activation is the image's array
    first = _open(client, 0, **common).json()
    assert first["shape"] == [3, 64, 64]
    assert first["conv"]["relu_after"] is True
    assert first["conv"]["pool_after"]["mode"] == "avg" and first["conv"]["pool_after"]["ceil_mode"] is True
    digest = first["id"][4:]
    stored = np.load(settings.store_dir / f"{digest}.npy", allow_pickle=False)
    np.testing.assert_array_equal(stored, x[0].numpy())


@pytest.mark.parametrize(
    ("image", "status"),
    [
        ("act:" + "0" * 64, 404),  # well formed, never stored
        ("act:" + "G" * 64, 422),
        ("act:" + "0" * 63, 422),
        ("act:../../etc/passwd", 422),
        ("act:" + "0" * 64 + ".npy", 422),
        ("ACT:" + "0" * 64, 422),
    ],
)
def test_hostile_activation_ids(client, image, status):
    response = client.post("/api/conv", json={"image": image, "weight": "identity"})
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    "path",
    [
        "/api/images/act:" + "0" * 64,
        "/api/images/act:" + "0" * 64 + ".npy",
        "/api/images/act:" + "0" * 64 + ".png",
        "/api/images/act:xyz.npy",
        "/api/images/" + HEX64 + ".npy",  # an upload id never names an activation
        "/api/images/mnist:0.npy",
    ],
)
def test_hostile_activation_paths_are_404(client, path):
    assert client.get(path).status_code == 404


def test_a_corrupt_or_foreign_stored_activation_is_410_and_never_unpickled(client, settings, monkeypatch):
    opened = _open(client, 3).json()
    path = settings.store_dir / f"{opened['id'][4:]}.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit of one value
    path.write_bytes(bytes(data))
    for response in (
        client.post("/api/conv", json=_conv_body(opened)),
        client.get(f"/api/images/{opened['id']}"),
        client.get(f"/api/images/{opened['id']}.npy"),
    ):
        assert response.status_code == 410, response.text
        assert "corrupt" in response.json()["detail"]
    # a file whose name matches its bytes but that is not a plain float32 .npy: 410, and no pickle runs
    called = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: called.append(a))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: called.append(a))
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    foreign = {
        "pickled": buffer.getvalue(),
        "text": b"not an npy file at all",
        "int64": _npy(np.zeros((2, 4, 4), dtype=np.int64)),
        "2-D": _npy(np.zeros((4, 4), dtype=np.float32)),
        "nan": _npy(np.full((1, 4, 4), np.nan, dtype=np.float32)),
    }
    for name, content in foreign.items():
        digest = hashlib.sha256(content).hexdigest()
        (settings.store_dir / f"{digest}.npy").write_bytes(content)
        response = client.post("/api/conv", json={"image": f"act:{digest}", "weight": "identity"})
        assert response.status_code == 410, (name, response.text)
        assert "cannot be decoded" in response.json()["detail"], name
    assert called == []


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_activation_request_limits(client, tmp_path):
    # the layer index must exist, and be a Conv2d
    past = _open(client, 6)
    assert past.status_code == 422 and past.json()["detail"][0]["loc"] == ["body", "layer"]
    assert "0..5" in past.json()["detail"][0]["msg"]
    relu = _open(client, 1)
    assert relu.status_code == 422
    assert "layer 1 is ReLU" in relu.json()["detail"][0]["msg"] and "0, 3" in relu.json()["detail"][0]["msg"]
    assert _open(client, -1).status_code == 422
    # the stack's own errors and budgets come first, as for POST /api/stack
    assert _open(client, 0, text="nn.Sequential(nn.Conv2d(3, 4, 3))").status_code == 422
    # an activation larger than one stored file may be is a 422 that says so, and nothing is stored
    small = Settings(store_dir=tmp_path / "small", max_upload_bytes=4096)
    with TestClient(create_app(small)) as limited:
        refused = _open(limited, 3)
        assert refused.status_code == 422, refused.text
        assert "cannot be stored" in refused.json()["detail"][0]["msg"]
        assert "4,096" in refused.json()["detail"][0]["msg"]
        assert not list((tmp_path / "small").glob("*.npy"))


def test_activations_count_toward_the_store_and_are_evicted_like_uploads(tmp_path):
    from app.store import UploadStore

    store = UploadStore(tmp_path / "s", max_bytes=3000, retention_seconds=0)
    first = store.save(_npy(np.zeros((1, 16, 16), dtype=np.float32)), activation=True)  # 1,152 bytes
    assert first.image_id.startswith("act:")
    assert [path.suffix for _, _, path in store.usage()] == [".npy"]
    assert store.read(first.image_id) == (tmp_path / "s" / f"{first.image_id[4:]}.npy").read_bytes()
    second = store.save(_npy(np.ones((1, 16, 16), dtype=np.float32)), activation=True)
    third = store.save(_npy(np.full((1, 16, 16), 2, dtype=np.float32)), activation=True)
    assert store.exists(third.image_id) and store.exists(second.image_id)
    assert not store.exists(first.image_id)  # the least recently used one made room
    # the same bytes as an upload id (no prefix) are not found: the two kinds never mix
    assert not store.exists(third.image_id[4:])
