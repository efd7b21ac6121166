"""Request and response models of the Layers API (``POST /api/stack``, ``POST /api/stack/field``).

Every limit is a constant here and appears in ``Field``. A layer is a JSON object with a ``type``
(``"Conv2d"``, ``"ReLU"``, ``"MaxPool2d"``, ``"AvgPool2d"``) and PyTorch's argument names, so a schema error
is reported at ``["body", "layers", index, type, field]``; a stack can instead come as ``text``
(``nn.Sequential(...)``, parsed by :mod:`core.stack_text`) or as a ``preset``. Combination errors that
need the image (channels that do not chain, a window larger than its map, work above the budget) are
raised by :mod:`app.stack_compute` in the same 422 shape, at ``["body", "layers", index, field]``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.schemas import (
    IMAGE_ID_PATTERN,
    MAX_SIDE,
    MIN_SIDE,
    MapOut,
    Padding,
    PoolPad,
    PresetName,
    as_tuple,
)
from core.shapes import pool_padding
from core.stack_text import MAX_TEXT

# ------------------------------------------------------------------------------------------- limits

MAX_STACK_LAYERS = 32
MAX_STACK_CHANNELS = 64
MAX_STACK_KERNEL = 11
MAX_STACK_STRIDE = 8
MAX_STACK_DILATION = 8
MAX_STACK_POOL = 8
MAX_STACK_MAPS = 1024
"""Maps drawn per request (layers × channels): each is one PNG."""
MAX_STACK_BYTES = 256 * 1024 * 1024
"""Memory of all activations of one forward pass (float32)."""
MAX_NPZ_BASE64 = 4 * 1024 * 1024
"""Characters of an uploaded ``.npz`` (base64)."""
MAX_VALUES_FIELD = 64 * 64
"""The ERF's exact values come with the answer up to this many input pixels."""

PairOf = Field(min_length=2, max_length=2, description="(height, width)")
KernelInt = Annotated[int, Field(ge=1, le=MAX_STACK_KERNEL)]
Kernel = KernelInt | Annotated[list[KernelInt], PairOf]
StrideInt = Annotated[int, Field(ge=1, le=MAX_STACK_STRIDE)]
Stride = StrideInt | Annotated[list[StrideInt], PairOf]
DilationInt = Annotated[int, Field(ge=1, le=MAX_STACK_DILATION)]
Dilation = DilationInt | Annotated[list[DilationInt], PairOf]
PoolInt = Annotated[int, Field(ge=1, le=MAX_STACK_POOL)]
PoolSize = PoolInt | Annotated[list[PoolInt], PairOf]
Channels = Annotated[int, Field(ge=1, le=MAX_STACK_CHANNELS)]


class Conv2dSpec(BaseModel):
    """``nn.Conv2d``; ``kernels`` fills the filters with preset kernels (cycled) instead of the weights."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Conv2d"]
    in_channels: Channels
    out_channels: Channels
    kernel_size: Kernel
    stride: Stride = 1
    padding: Padding = 0
    dilation: Dilation = 1
    groups: Annotated[int, Field(ge=1, le=MAX_STACK_CHANNELS)] = 1
    bias: bool = True
    kernels: Annotated[list[PresetName], Field(min_length=1, max_length=MAX_STACK_CHANNELS)] | None = Field(
        default=None, description="Preset kernel names, one per filter in turn (GET /api/kernels)."
    )

    @model_validator(mode="after")
    def _groups_divide(self) -> Conv2dSpec:
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"groups ({self.groups}) must divide in_channels ({self.in_channels}) and out_channels "
                f"({self.out_channels})"
            )
        return self


class ReLUSpec(BaseModel):
    """``nn.ReLU``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["ReLU"]


class MaxPool2dSpec(BaseModel):
    """``nn.MaxPool2d``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["MaxPool2d"]
    kernel_size: PoolSize
    stride: PoolSize | None = Field(default=None, description="Defaults to kernel_size.")
    padding: PoolPad = Field(default=0, description="Symmetric; at most half the kernel size.")
    dilation: Dilation = 1
    ceil_mode: bool = False

    @model_validator(mode="after")
    def _padding_fits(self) -> MaxPool2dSpec:
        pool_padding(as_tuple(self.padding), as_tuple(self.kernel_size))
        return self


class AvgPool2dSpec(BaseModel):
    """``nn.AvgPool2d``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["AvgPool2d"]
    kernel_size: PoolSize
    stride: PoolSize | None = Field(default=None, description="Defaults to kernel_size.")
    padding: PoolPad = Field(default=0, description="Symmetric; at most half the kernel size.")
    ceil_mode: bool = False
    count_include_pad: bool = True

    @model_validator(mode="after")
    def _padding_fits(self) -> AvgPool2dSpec:
        pool_padding(as_tuple(self.padding), as_tuple(self.kernel_size))
        return self


LayerSpec = Annotated[Conv2dSpec | ReLUSpec | MaxPool2dSpec | AvgPool2dSpec, Field(discriminator="type")]


class WeightsSpec(BaseModel):
    """Where the convolution weights come from."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["random", "mnist", "npz"] = Field(
        default="random",
        description="random: Kaiming-uniform (PyTorch's default) from `seed`; mnist: the trained network's "
        "conv layer (layer 0 must be Conv2d(1, 30, 5)); npz: `npz` holds '<layer>.weight' and "
        "'<layer>.bias'.",
    )
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    npz: str | None = Field(
        default=None,
        max_length=MAX_NPZ_BASE64,
        description="The .npz file, base64 (no pickle is ever loaded).",
    )

    @model_validator(mode="after")
    def _npz_given(self) -> WeightsSpec:
        if (self.source == "npz") != (self.npz is not None):
            raise ValueError("give `npz` (base64 .npz bytes) exactly when source is 'npz'")
        return self


class StackRequest(BaseModel):
    """An image and a stack: exactly one of ``layers``, ``text`` and ``preset``."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(
        pattern=IMAGE_ID_PATTERN,
        description="An upload's SHA-256, 'mnist:N' or 'sample:NAME'.",
        examples=["sample:astronaut"],
    )
    color: Literal["gray", "rgb"] = "rgb"
    max_side: Annotated[int, Field(ge=MIN_SIDE, le=MAX_SIDE)] | None = Field(
        default=None, description="Downscale (Lanczos, aspect kept) so the longer side is at most this."
    )
    layers: Annotated[list[LayerSpec], Field(min_length=1, max_length=MAX_STACK_LAYERS)] | None = None
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)] | None = Field(
        default=None,
        description="nn.Sequential(...) of Conv2d, ReLU, MaxPool2d and AvgPool2d with literal arguments.",
        examples=["nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))"],
    )
    preset: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")] | None = Field(
        default=None, description="mnist, lenet5, vgg_block, resnet_stem, alexnet or dilated."
    )
    weights: WeightsSpec = Field(default_factory=WeightsSpec)
    values: bool = Field(default=False, description="Exact values of maps up to 64×64.")

    @model_validator(mode="after")
    def _one_stack(self) -> StackRequest:
        given = [name for name in ("layers", "text", "preset") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of 'layers', 'text' and 'preset' (got {given or 'none'})")
        return self


class FieldRequest(StackRequest):
    """The stack plus one unit: output ``(channel, y, x)`` of layer ``layer`` (0-based)."""

    layer: Annotated[int, Field(ge=0, lt=MAX_STACK_LAYERS)]
    channel: Annotated[int, Field(ge=0, lt=MAX_STACK_CHANNELS)] = 0
    y: Annotated[int, Field(ge=0, le=100_000)]
    x: Annotated[int, Field(ge=0, le=100_000)]
    depth: bool = Field(
        default=True, description="Also r and the ERF radius of every conv/pool layer above the same point."
    )


class ActivationRequest(StackRequest):
    """The stack plus the index of one of its ``Conv2d`` layers, whose real input is wanted."""

    layer: Annotated[int, Field(ge=0, lt=MAX_STACK_LAYERS)] = Field(
        description="0-based index of a Conv2d of the stack: its input (the previous layer's output, or the "
        "image for layer 0) is stored."
    )


# ------------------------------------------------------------------------------------------ responses


class AxisFieldOut(BaseModel):
    size: int
    kernel: int
    stride: int
    dilation: int
    pad_lo: int
    pad_hi: int
    r: int
    j: int
    start: int
    centre: float


class LayerOut(BaseModel):
    index: int
    name: str
    text: str
    shape: list[int]
    height: AxisFieldOut
    width: AxisFieldOut
    maps: list[MapOut]
    macs: int
    weight: list[list[list[list[float]]]] | None = None
    bias: list[float] | None = None


class StackInput(BaseModel):
    shape: list[int]
    png: str


class StackResponse(BaseModel):
    input: StackInput
    layers: list[LayerOut]
    warnings: list[str]
    text: str
    pytorch: str
    weights_npz: str | None
    timing_ms: dict[str, float]


class AxisBoxOut(BaseModel):
    start: int
    stop: int
    clipped_start: int
    clipped_stop: int
    pad_before: int
    pad_after: int
    exact_start: int
    exact_stop: int
    centre: float


class BoxOut(BaseModel):
    layer: int
    y: int
    x: int
    height: AxisBoxOut
    width: AxisBoxOut


class ErfOut(BaseModel):
    png: str
    radius: float
    mass: float
    total: float
    centre: list[float]
    max: float
    values: list[list[float]] | None


class FieldResponse(BaseModel):
    unit: dict[str, int]
    value: float
    box: BoxOut
    theoretical_radius: list[float]
    erf: ErfOut
    depth: list[dict[str, Any]] | None
    timing_ms: dict[str, float]


class OpenedConvOut(BaseModel):
    """A Conv2d's settings resolved on its input, in the forms ``POST /api/conv`` takes."""

    in_channels: int
    out_channels: int
    kernel_size: list[int] = Field(description="(KH, KW)")
    stride: list[int]
    dilation: list[int]
    padding: list[int] = Field(description="(top, bottom, left, right), resolved on the input")
    groups: int
    weight: list[list[list[list[float]]]] = Field(description="(F, C/groups, KH, KW)")
    bias: list[float] | None
    relu_after: bool = Field(description="The next layer of the stack is a ReLU.")
    pool_after: dict[str, Any] | None = Field(
        description="The pooling layer right after it (or after its ReLU): mode ('max'/'avg'), kernel_size, "
        "stride, padding, dilation, ceil_mode, count_include_pad; null when there is none."
    )


class ActivationResponse(BaseModel):
    id: str = Field(description="'act:<SHA-256 of the stored .npy>': the `image` of the conv endpoints.")
    layer: int
    shape: list[int] = Field(description="(C, H, W)")
    min: float
    max: float
    conv: OpenedConvOut


class StackPreset(BaseModel):
    name: str
    description: str
    text: str
    input: list[int]


class StackPresetList(BaseModel):
    presets: list[StackPreset]
