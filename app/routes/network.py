"""``POST /api/network``: the trained simple ConvNet on one digit, with every layer's activations.

The digit is a bundled MNIST test digit (``"mnist:N"``, used as it is), an uploaded image or sample (an id),
or a drawing (``"drawn"``: a grid of gray levels). Uploads and drawings are preprocessed the MNIST way
(:mod:`app.preprocess`) and the 28×28 the network saw is returned with the result.
"""

from __future__ import annotations

import functools
import re
import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.errors import BodyError
from app.image_source import load_pil, mnist_set
from app.preprocess import preprocess
from app.render import data_url, image_png, indices_png, map_png, to_indices
from app.responses import OrjsonResponse, arr, map_entry, server_timing
from app.schemas import MapOut, Matrix, Message
from app.settings import SettingsDep
from core import network

router = APIRouter(prefix="/api", tags=["network"])

MAX_DRAWN_SIDE = 512
_MNIST_ID = re.compile(r"^mnist:(\d{1,6})$")

GrayLevel = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
DrawnRow = Annotated[list[GrayLevel], Field(min_length=1, max_length=MAX_DRAWN_SIDE)]


class NetworkRequest(BaseModel):
    """Exactly one of ``image`` and ``drawn``."""

    model_config = ConfigDict(extra="forbid")

    image: str | None = Field(
        default=None,
        max_length=80,
        description="'mnist:N' (used as is), 'sample:NAME' or an upload's SHA-256.",
    )
    drawn: list[DrawnRow] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_DRAWN_SIDE,
        description="A drawing: rows of gray levels in [0, 1], any size up to 512×512, either polarity.",
    )
    values: bool = Field(default=True, description="Include the exact values of every map.")

    @model_validator(mode="after")
    def _one_source(self) -> NetworkRequest:
        if (self.image is None) == (self.drawn is None):
            raise ValueError("give exactly one of 'image' (an id) and 'drawn' (a grid of gray levels)")
        return self


class NetworkInput(BaseModel):
    shape: list[int]
    png: str
    values: Matrix
    source: Literal["mnist", "upload", "drawn"]
    preprocessed: bool
    inverted: bool
    empty: bool


class FilterOut(BaseModel):
    index: int
    weights: Matrix
    bias: float
    min: float
    max: float
    png: str


class LayerOut(BaseModel):
    name: Literal["conv", "relu", "pool", "hidden", "output"]
    shape: list[int]
    maps: list[MapOut] | None = None
    values: list[float] | None = None
    min: float | None = None
    max: float | None = None
    png: str | None = None
    logits: list[float] | None = None
    filters: list[FilterOut] | None = None


class ModelInfo(BaseModel):
    architecture: str
    data: str
    evaluated_on: str
    accuracy: float
    epochs: int
    seed: int
    date: str


class NetworkResponse(BaseModel):
    prediction: int
    probabilities: list[float]
    label: int | None
    input: NetworkInput
    layers: list[LayerOut]
    model: ModelInfo
    timing_ms: dict[str, float]


@functools.lru_cache(maxsize=1)
def trained() -> tuple[network.Params, dict[str, Any]]:
    """The shipped weights and their metadata, loaded once."""
    params, metadata = network.load_weights()
    for array in params.values():
        array.setflags(write=False)
    return params, metadata


@functools.lru_cache(maxsize=1)
def filter_entries() -> list[dict[str, Any]]:
    """The 30 learned 5×5 filters with PNGs (diverging, one symmetric range per filter), computed once."""
    params, _ = trained()
    entries = []
    for index, (kernel, bias) in enumerate(
        zip(params["conv_weight"][:, 0], params["conv_bias"], strict=True)
    ):
        minimum, maximum = float(kernel.min()), float(kernel.max())
        png = indices_png(to_indices(kernel, "diverging", minimum, maximum), "diverging")
        entries.append(
            {"index": index, "weights": arr(kernel), "bias": bias, "min": kernel.min(), "max": kernel.max(),
             "png": data_url(png)}
        )  # fmt: skip
    return entries


def model_info() -> dict[str, Any]:
    _, metadata = trained()
    return {
        "architecture": metadata.get("model", "simple ConvNet"),
        "data": metadata.get("data", ""),
        "evaluated_on": metadata.get("evaluated_on", ""),
        "accuracy": float(metadata.get("accuracy", 0.0)),
        "epochs": int(metadata.get("epochs", 0)),
        "seed": int(metadata.get("seed", 0)),
        "date": str(metadata.get("date", "")),
    }


def _drawn_array(rows: list[list[float]]) -> np.ndarray:
    width = len(rows[0])
    for number, row in enumerate(rows):
        if len(row) != width:
            raise BodyError(
                "drawn",
                f"drawn must be rectangular: row 0 has {width} values but row {number} has {len(row)}",
            )
    return np.asarray(rows, dtype=np.float32)


def network_input(request: NetworkRequest, settings: Any) -> tuple[np.ndarray, dict[str, Any], int | None]:
    """The 28×28 the network sees, a description of where it came from, and the label (MNIST only)."""
    if request.drawn is not None:
        result = preprocess(_drawn_array(request.drawn))
        return result.image, {"source": "drawn", "preprocessed": True, "inverted": result.inverted,
                              "empty": result.empty}, None  # fmt: skip
    image_id = request.image or ""
    picture = load_pil(image_id, settings)  # 404 for unknown ids
    match = _MNIST_ID.match(image_id)
    if match:
        pixels = np.asarray(picture, dtype=np.float32) / np.float32(255.0)
        label = int(mnist_set(settings)[1][int(match.group(1))])
        info = {"source": "mnist", "preprocessed": False, "inverted": False, "empty": not pixels.any()}
        if pixels.shape == (28, 28):
            return pixels, info, label
        result = preprocess(picture)  # a user-given MNIST folder with other sizes: fit it like an upload
        return result.image, {**info, "preprocessed": True, "empty": result.empty}, label
    result = preprocess(picture)
    return result.image, {"source": "upload", "preprocessed": True, "inverted": result.inverted,
                          "empty": result.empty}, None  # fmt: skip


def _maps(stack: np.ndarray, values: bool) -> list[dict[str, Any]]:
    return [map_entry(index, stack[index], values) for index in range(stack.shape[0])]


def network_payload(request: NetworkRequest, settings: Any) -> dict[str, Any]:
    """The ``POST /api/network`` body (see the API contract)."""
    timing: dict[str, float] = {}
    start = time.perf_counter()
    image, info, label = network_input(request, settings)
    timing["load"] = (time.perf_counter() - start) * 1000
    params, _ = trained()
    mark = time.perf_counter()
    probs, cache = network.forward(params, image[None, None])
    timing["forward"] = (time.perf_counter() - mark) * 1000
    mark = time.perf_counter()
    hidden = cache.hidden[0]
    hidden_png, _, _, _ = map_png(hidden.reshape(10, 10))
    layers = [
        {"name": "conv", "shape": list(cache.conv.shape), "maps": _maps(cache.conv[0], request.values),
         "filters": filter_entries()},
        {"name": "relu", "shape": list(cache.relu.shape), "maps": _maps(cache.relu[0], request.values)},
        {"name": "pool", "shape": list(cache.pool.shape), "maps": _maps(cache.pool[0], request.values)},
        {"name": "hidden", "shape": list(cache.hidden.shape), "values": arr(hidden), "min": hidden.min(),
         "max": hidden.max(), "png": data_url(hidden_png)},
        {"name": "output", "shape": list(probs.shape), "values": arr(probs[0]),
         "logits": arr(cache.logits[0])},
    ]  # fmt: skip
    payload = {
        "prediction": int(probs[0].argmax()),
        "probabilities": arr(probs[0]),
        "label": label,
        "input": {
            "shape": [1, 1, 28, 28],
            "png": data_url(image_png(image[None])),
            "values": arr(image),
            **info,
        },
        "layers": layers,
        "model": model_info(),
        "timing_ms": timing,
    }
    timing["encode"] = (time.perf_counter() - mark) * 1000
    return payload


@router.post(
    "/network",
    response_model=NetworkResponse,
    responses={404: {"model": Message, "description": "Unknown image id."},
               410: {"model": Message, "description": "The stored image is corrupt."}},
)  # fmt: skip
def post_network(request: NetworkRequest, settings: SettingsDep) -> Response:
    """Classify one digit with the trained simple ConvNet and show every layer.

    ``image``: ``"mnist:N"`` (a bundled test digit, used as is) or an upload/sample id (preprocessed the
    MNIST way); or ``drawn``: a grid of gray levels in [0, 1]. The answer has the prediction, the 10
    probabilities, the 28×28 input the network saw, and for conv / relu / pool every map (PNG, range,
    values), the 30 learned filters, the 100 hidden units and the output.
    """
    start = time.perf_counter()
    payload = network_payload(request, settings)
    payload["timing_ms"]["total"] = (time.perf_counter() - start) * 1000
    return OrjsonResponse(payload, headers={"Server-Timing": server_timing(payload["timing_ms"])})
