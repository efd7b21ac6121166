"""POST /api/network and the MNIST preprocessing (app.preprocess), through FastAPI's TestClient."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.preprocess import SIDE, center_of_mass, preprocess
from app.settings import Settings
from core import mnist, network


@pytest.fixture(scope="module")
def net_client(tmp_path_factory):
    settings = Settings(store_dir=tmp_path_factory.mktemp("store"))
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def digits():
    return mnist.load_mnist(mnist.BUNDLED_DIR)


def png_pixels(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("L"))


def held_out_correct(digits, count=3):
    """Held-out digits (8000..) that the shipped network classifies correctly, found with core directly."""
    images, labels = digits
    params, _ = network.load_weights()
    probs = network.predict(params, network.images_to_input(images[8000:8040]))
    right = np.flatnonzero(probs.argmax(axis=1) == labels[8000:8040]) + 8000
    return [int(i) for i in right[:count]]


def test_mnist_digits_are_classified_and_every_layer_is_there(net_client, digits):
    images, labels = digits
    for index in held_out_correct(digits):
        response = net_client.post("/api/network", json={"image": f"mnist:{index}"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["prediction"] == labels[index] == body["label"]
        probs = np.array(body["probabilities"])
        assert probs.shape == (10,) and probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert int(probs.argmax()) == body["prediction"]
        # the input is the MNIST digit itself, not re-preprocessed
        assert body["input"]["preprocessed"] is False and body["input"]["source"] == "mnist"
        np.testing.assert_allclose(np.array(body["input"]["values"]), images[index] / 255.0, atol=1e-6)
        np.testing.assert_array_equal(png_pixels(body["input"]["png"]), images[index])
        layers = {layer["name"]: layer for layer in body["layers"]}
        assert [layer["name"] for layer in body["layers"]] == ["conv", "relu", "pool", "hidden", "output"]
        assert layers["conv"]["shape"] == [1, 30, 24, 24] and len(layers["conv"]["maps"]) == 30
        assert layers["relu"]["shape"] == [1, 30, 24, 24]
        assert layers["pool"]["shape"] == [1, 30, 12, 12] and len(layers["pool"]["maps"]) == 30
        assert layers["hidden"]["shape"] == [1, 100] and len(layers["hidden"]["values"]) == 100
        assert layers["output"]["values"] == body["probabilities"]
        filters = layers["conv"]["filters"]
        assert len(filters) == 30 and np.array(filters[0]["weights"]).shape == (5, 5)
        assert png_pixels(filters[0]["png"]).shape == (5, 5)
        assert png_pixels(layers["pool"]["maps"][0]["png"]).shape == (12, 12)
    assert body["model"]["accuracy"] >= 0.96


def test_layer_values_match_an_independent_recomputation(net_client, digits):
    """conv map f at (y, x) = Σ w·patch + b recomputed by hand from the returned filters and input."""
    images, _ = digits
    body = net_client.post("/api/network", json={"image": "mnist:8001"}).json()
    x = np.array(body["input"]["values"])
    layers = {layer["name"]: layer for layer in body["layers"]}
    for f in (0, 7, 29):
        w = np.array(layers["conv"]["filters"][f]["weights"])
        b = layers["conv"]["filters"][f]["bias"]
        conv = np.array(layers["conv"]["maps"][f]["values"])
        for y, z in ((0, 0), (11, 13), (23, 23)):
            assert conv[y, z] == pytest.approx(float((w * x[y : y + 5, z : z + 5]).sum() + b), abs=1e-4)
        relu = np.array(layers["relu"]["maps"][f]["values"])
        np.testing.assert_allclose(relu, np.maximum(conv, 0), atol=1e-6)
        pool = np.array(layers["pool"]["maps"][f]["values"])
        np.testing.assert_allclose(pool, relu.reshape(12, 2, 12, 2).max(axis=(1, 3)), atol=1e-6)
        assert layers["conv"]["maps"][f]["min"] == pytest.approx(conv.min(), abs=1e-6)
    logits = np.array(layers["output"]["logits"])
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(body["probabilities"], expected, rtol=1e-5)


def test_drawn_digit_works_either_polarity(net_client, digits):
    images, labels = digits
    index = held_out_correct(digits, 1)[0]
    # a "drawing": the MNIST digit enlarged 4× (112×112), bright ink on black, as the page's canvas sends it
    big = np.kron(images[index] / 255.0, np.ones((4, 4)))
    body = net_client.post("/api/network", json={"drawn": np.round(big, 3).tolist()}).json()
    assert body["input"]["source"] == "drawn" and body["input"]["preprocessed"] is True
    assert body["input"]["inverted"] is False and body["label"] is None
    assert body["prediction"] == labels[index]
    # dark ink on white paper is inverted first and gives the same answer
    paper = net_client.post("/api/network", json={"drawn": np.round(1 - big, 3).tolist()}).json()
    assert paper["input"]["inverted"] is True and paper["prediction"] == labels[index]
    np.testing.assert_allclose(paper["input"]["values"], body["input"]["values"], atol=1e-3)


def test_blank_drawing_is_reported_empty(net_client):
    body = net_client.post("/api/network", json={"drawn": [[0.0] * 40] * 40}).json()
    assert body["input"]["empty"] is True
    assert np.array(body["input"]["values"]).max() == 0.0


def test_uploaded_picture_is_preprocessed(net_client, digits):
    images, labels = digits
    index = held_out_correct(digits, 2)[1]
    # black ink on a white 90×60 page, digit off-centre
    page = np.full((90, 60), 255, np.uint8)
    page[10:66, 4:60] = 255 - np.kron(images[index], np.ones((2, 2), np.uint8))
    buffer = io.BytesIO()
    Image.fromarray(page, "L").save(buffer, format="PNG")
    upload = net_client.post("/api/images", files={"file": ("digit.png", buffer.getvalue(), "image/png")})
    assert upload.status_code in (200, 201), upload.text
    body = net_client.post("/api/network", json={"image": upload.json()["id"]}).json()
    assert body["input"]["source"] == "upload" and body["input"]["inverted"] is True
    assert body["prediction"] == labels[index]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"image": "mnist:0", "drawn": [[0.5]]},
        {"drawn": [[0.1, 0.2], [0.3]]},  # ragged
        {"drawn": [[1.5]]},  # out of range
        {"drawn": []},
        {"drawn": "not a grid"},
        {"drawn": [[0.0] * 513]},
        {"image": "mnist:0", "extra": 1},
        {"image": 7},
    ],
)
def test_bad_input_is_422(net_client, payload):
    response = net_client.post("/api/network", json=payload)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)


def test_unknown_image_is_404(net_client):
    assert net_client.post("/api/network", json={"image": "mnist:10000"}).status_code == 404
    assert net_client.post("/api/network", json={"image": "nope"}).status_code == 404


# ------------------------------------------------------------------------------------------ preprocessing


def test_preprocess_fits_20x20_and_centres_the_mass():
    rng = np.random.default_rng(0)
    canvas = np.zeros((200, 300))
    canvas[30:150, 200:260] = rng.random((120, 60)) * 0.5 + 0.5  # a tall blob far right
    result = preprocess(canvas)
    image = result.image
    assert image.shape == (SIDE, SIDE) and image.dtype == np.float32
    assert not result.inverted and not result.empty
    assert image.max() == pytest.approx(1.0, abs=1e-6) and image.min() >= 0
    rows = np.flatnonzero(image.max(axis=1) > 0.1)
    cols = np.flatnonzero(image.max(axis=0) > 0.1)
    assert rows[-1] - rows[0] + 1 == 20  # the longer side fills the 20-pixel box
    assert 8 <= cols[-1] - cols[0] + 1 <= 12  # aspect kept: 120×60 → 20×10
    cy, cx = center_of_mass(image)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_preprocess_of_an_mnist_digit_is_close_to_itself(digits):
    images, _ = digits
    # MNIST digits are already preprocessed this way: doing it again changes little
    com = np.array([center_of_mass(images[i].astype(float)) for i in range(0, 10000, 50)])
    np.testing.assert_allclose(com.mean(axis=0), [14.0, 14.0], atol=0.3)  # where MNIST puts the mass
    for index in range(10):
        original = images[index] / 255.0
        again = preprocess(original).image
        assert np.abs(again - original).mean() < 0.01


def test_preprocess_inverts_a_white_page_with_an_rgba_image():
    rgba = np.zeros((50, 50, 4), np.uint8)  # transparent everywhere: composited on white
    rgba[10:40, 20:25] = (0, 0, 0, 255)  # a black bar "1"
    result = preprocess(Image.fromarray(rgba, "RGBA"))
    assert result.inverted and not result.empty
    assert result.image.max() == pytest.approx(1.0, abs=1e-6)


def test_preprocess_rejects_non_2d():
    with pytest.raises(ValueError, match=r"2-D grid of gray levels, got shape \(2, 3, 4\)"):
        preprocess(np.zeros((2, 3, 4)))
