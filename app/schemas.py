"""Request and response models. Every limit of the API is a constant here and appears in ``Field``.

The request models check what can be checked without the image (value ranges, list lengths, pooling
padding via :func:`core.shapes.pool_padding`, padding forms via :func:`core.shapes.resolve_padding`).
Combinations that need the image size (a kernel larger than the padded input, channels that do not
match the weight, a work budget) are checked in :mod:`app.compute` and raised as
:class:`app.errors.BodyError`, in the same 422 shape.

The response models describe what the computation endpoints return; those endpoints build their JSON
directly with orjson (numpy arrays included) for speed, so the models are the contract that
``/openapi.json`` publishes and the schemathesis tests check.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    field_validator,
    model_validator,
)

from core.shapes import PADDING_FORMS, PADDING_WORDS, pool_padding

# ------------------------------------------------------------------------------------------- limits

MAX_KERNEL = 11
MAX_STRIDE = 8
MAX_PADDING = 10
MAX_DILATION = 5
MAX_FILTERS_PAGE = 16
MAX_FILTERS = 64
MAX_GROUPS = 64
MAX_CHANNELS_PER_GROUP = 64  # images have 1 (gray) or 3 (rgb) channels; a stored activation up to 64
MAX_SIDE = 512
MIN_SIDE = 8
SIDE_CHOICES = (28, 64, 128, 256, 512)
MAX_WEIGHT_ABS = 1e6
MAX_POOL_KERNEL = 8
MAX_POOL_STRIDE = 8
MAX_POOL_PADDING = 4
MAX_VALUES_PER_MAP = 64 * 64
MAX_MATRIX_VALUES = 50_000
MAX_COORD = 100_000
MAX_TRANSPOSE_SIDE = 16
MAX_TRANSPOSE_CHANNELS = 8
MAX_SHAPE_SIZE = 1_000_000
MNIST_PAGE_LIMIT = 500

IMAGE_ID_PATTERN = r"^([0-9a-f]{64}|mnist:[0-9]{1,7}|sample:[a-z_]{1,32}|act:[0-9a-f]{64})$"
PRESET_PATTERN = r"^[a-z0-9_]{1,40}$"

# ------------------------------------------------------------------------------------------- types

WeightValue = Annotated[
    float, Field(ge=-MAX_WEIGHT_ABS, le=MAX_WEIGHT_ABS, allow_inf_nan=False, description="A finite weight.")
]
PresetName = Annotated[str, Field(pattern=PRESET_PATTERN, description="A preset from GET /api/kernels.")]
KernelRow = Annotated[list[WeightValue], Field(min_length=1, max_length=MAX_KERNEL)]
Kernel2D = Annotated[list[KernelRow], Field(min_length=1, max_length=MAX_KERNEL, description="(KH, KW)")]
FilterWeights = Annotated[list[Kernel2D], Field(min_length=1, max_length=MAX_CHANNELS_PER_GROUP)]
Weight4D = Annotated[
    list[FilterWeights], Field(min_length=1, max_length=MAX_FILTERS, description="(F, C/groups, KH, KW)")
]
PresetList = Annotated[list[PresetName], Field(min_length=1, max_length=MAX_FILTERS)]


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, list) and value:
        depth, value = depth + 1, value[0]
    return depth


def _weight_form(value: Any) -> str | None:
    """Which form a weight is in, so that a bad one gets the errors of its own form only."""
    if isinstance(value, str):
        return "preset"
    if isinstance(value, list) and value and isinstance(value[0], str):
        return "presets"
    return "full" if _depth(value) >= 3 else "kernel"


WeightSpec = Annotated[
    Annotated[PresetName, Tag("preset")]
    | Annotated[PresetList, Tag("presets")]
    | Annotated[Kernel2D, Tag("kernel")]
    | Annotated[Weight4D, Tag("full")],
    Discriminator(_weight_form),
]


Pair = Field(min_length=2, max_length=2, description="(height, width)")
StrideInt = Annotated[int, Strict(), Field(ge=1, le=MAX_STRIDE)]
Stride = StrideInt | Annotated[list[StrideInt], Pair]
DilationInt = Annotated[int, Strict(), Field(ge=1, le=MAX_DILATION)]
Dilation = DilationInt | Annotated[list[DilationInt], Pair]
PadInt = Annotated[int, Strict(), Field(ge=0, le=MAX_PADDING)]


def _padding_form(value: Any) -> Any:
    """One sentence for a padding of none of the accepted forms (not one error per branch of the union)."""
    if isinstance(value, str) and value not in PADDING_WORDS:
        raise ValueError(f"padding {value!r} is not understood; padding must be {PADDING_FORMS}")
    if isinstance(value, list) and len(value) not in (2, 4):
        raise ValueError(
            f"a padding list has 2 values (pad_h, pad_w) or 4 (top, bottom, left, right), not {len(value)}"
        )
    return value


Padding = Annotated[
    PadInt
    | Annotated[list[PadInt], Field(min_length=2, max_length=2, description="(pad_h, pad_w)")]
    | Annotated[list[PadInt], Field(min_length=4, max_length=4, description="(top, bottom, left, right)")]
    | Literal["valid", "same", "full"],
    BeforeValidator(_padding_form),
]
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
PoolSizeInt = Annotated[int, Strict(), Field(ge=1, le=MAX_POOL_KERNEL)]
PoolSize = PoolSizeInt | Annotated[list[PoolSizeInt], Pair]
PoolStrideInt = Annotated[int, Strict(), Field(ge=1, le=MAX_POOL_STRIDE)]
PoolStride = PoolStrideInt | Annotated[list[PoolStrideInt], Pair]
PoolPadInt = Annotated[int, Strict(), Field(ge=0, le=MAX_POOL_PADDING)]
PoolPad = PoolPadInt | Annotated[list[PoolPadInt], Pair]
OutputPadInt = Annotated[int, Strict(), Field(ge=0, le=MAX_STRIDE - 1)]
OutputPad = OutputPadInt | Annotated[list[OutputPadInt], Pair]
Coord = Annotated[int, Strict(), Field(ge=0, le=MAX_COORD)]


def as_tuple(value: Any) -> Any:
    """Lists → tuples (what ``core`` takes for pairs); anything else unchanged."""
    return tuple(value) if isinstance(value, list) else value


# ------------------------------------------------------------------------------------------- requests


class PoolSpec(BaseModel):
    """Pooling after the convolution (and activation)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["max", "avg"] = "max"
    kernel_size: PoolSize = 2
    stride: PoolStride | None = Field(default=None, description="Defaults to kernel_size.")
    padding: PoolPad = Field(default=0, description="Symmetric; at most half the kernel size.")
    ceil_mode: bool = False
    count_include_pad: bool = Field(default=True, description="avg only: padded zeros count in the divisor.")

    @model_validator(mode="after")
    def _padding_fits(self) -> PoolSpec:
        pool_padding(as_tuple(self.padding), as_tuple(self.kernel_size))
        return self


class Region(BaseModel):
    """A window of every map, ``[y0, y1) × [x0, x1)`` (at most 64×64)."""

    y0: Coord
    y1: Coord
    x0: Coord
    x1: Coord

    @model_validator(mode="after")
    def _ordered(self) -> Region:
        if self.y1 <= self.y0 or self.x1 <= self.x0:
            raise ValueError(
                f"region must have y0 < y1 and x0 < x1, got y {self.y0}..{self.y1}, x {self.x0}..{self.x1}"
            )
        area = (self.y1 - self.y0) * (self.x1 - self.x0)
        if area > MAX_VALUES_PER_MAP:
            raise ValueError(f"region covers {area} values per map; at most {MAX_VALUES_PER_MAP} (64×64)")
        return self


class ConvRequest(BaseModel):
    """The fields every computation on an image shares (``POST /api/conv``)."""

    image: str = Field(
        pattern=IMAGE_ID_PATTERN,
        description="An upload's SHA-256, 'mnist:N', 'sample:NAME', or 'act:<SHA-256>': a layer's real input "
        "stored by POST /api/stack/activation (used as stored: its C channels and values).",
        examples=["mnist:0", "sample:camera"],
    )
    color: Literal["gray", "rgb"] = Field(
        default="gray",
        description="gray = Pillow 'L' / 255 (1 channel); rgb = R, G, B / 255 (3 channels). Ignored for an "
        "'act:' image, which keeps its own channels.",
    )
    max_side: Annotated[int, Strict(), Field(ge=MIN_SIDE, le=MAX_SIDE)] | None = Field(
        default=None,
        description="Downscale (Lanczos, aspect kept) so the longer side is at most this. An 'act:' image is "
        "never resized: leave it out, or give at least its longer side (422 otherwise).",
    )
    weight: WeightSpec = Field(
        default="identity",
        description="A preset name, a list of preset names (one filter each), a (KH, KW) kernel (one filter, "
        "repeated on every input channel of its group), or the full (F, C/groups, KH, KW) weights.",
        examples=["sobel_x", ["sobel_x", "sobel_y"], [[0, 1, 0], [1, -4, 1], [0, 1, 0]]],
    )
    bias: Annotated[list[WeightValue], Field(min_length=1, max_length=MAX_FILTERS)] | None = Field(
        default=None, description="One per filter."
    )
    stride: Stride = 1
    padding: Padding = 0
    padding_mode: PaddingMode = Field(
        default="zeros",
        description="What the padding holds (PyTorch's padding_mode): zeros, reflect (mirror, edge not "
        "repeated; padding must be smaller than the image), replicate (edge repeated) or circular (wrap "
        "around; padding at most the image).",
    )
    dilation: Dilation = 1
    groups: Annotated[int, Strict(), Field(ge=1, le=MAX_GROUPS)] = 1
    activation: Literal["none", "relu"] = "none"
    pool: PoolSpec | None = None
    values: bool = Field(default=False, description="Include exact values (maps up to 64×64).")
    region: Region | None = Field(default=None, description="Exact values of this window of every conv map.")

    @field_validator("weight")
    @classmethod
    def _weight_rectangular(cls, weight: Any) -> Any:
        if isinstance(weight, list) and weight and isinstance(weight[0], list):
            _check_rectangular(weight, "weight")
        return weight


def _check_rectangular(value: list[Any], name: str) -> None:
    """Raise ``ValueError`` unless the nested list is a full box (no ragged rows)."""

    def shape_of(v: Any) -> tuple[int, ...]:
        if not isinstance(v, list):
            return ()
        if not any(isinstance(item, list) for item in v):
            return (len(v),)  # a row of numbers (the common case: no call per number)
        shapes = {shape_of(item) for item in v}
        if len(shapes) != 1:
            lengths = sorted({s[0] for s in shapes if s})
            raise ValueError(
                f"{name} is ragged: lists at the same depth have different lengths "
                f"({', '.join(map(str, lengths))}); every filter needs the same number of channels, rows and "
                "columns"
            )
        return (len(v), *shapes.pop())

    shape_of(value)


class ExplainRequest(ConvRequest):
    """``POST /api/explain``: one output position."""

    position: Annotated[list[Coord], Field(min_length=3, max_length=3)] = Field(
        description="(f, y, x) in conv-output coordinates."
    )


class Im2colRequest(ConvRequest):
    """``POST /api/im2col``."""

    indices: bool = Field(
        default=False, description="Include the (k, i, j) index arrays (small matrices only)."
    )
    columns: (
        Annotated[list[Annotated[int, Strict(), Field(ge=0, le=10**7)]], Field(min_length=2, max_length=2)]
        | None
    ) = Field(default=None, description="[start, stop): exact values of these columns.")


class Upstream(BaseModel):
    """The gradient arriving from above."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ones", "onehot", "random"] = "ones"
    position: Annotated[list[Coord], Field(min_length=3, max_length=3)] | None = Field(
        default=None, description="(f, y, x) of the one-hot (kind 'onehot')."
    )
    seed: Annotated[int, Strict(), Field(ge=0, le=2**32 - 1)] = 0

    @model_validator(mode="after")
    def _position_for_onehot(self) -> Upstream:
        if self.kind == "onehot" and self.position is None:
            raise ValueError("upstream kind 'onehot' needs a position [f, y, x]")
        return self


class BackwardRequest(ConvRequest):
    """``POST /api/backward``."""

    upstream: Upstream = Field(default_factory=Upstream)
    target: Literal["conv", "pool"] = Field(
        default="conv",
        description="conv: the upstream gradient is on the (activated) conv output; pool: on the pooled "
        "output, routed back through the pool first.",
    )


TransposeValue = Annotated[float, Field(ge=-MAX_WEIGHT_ABS, le=MAX_WEIGHT_ABS, allow_inf_nan=False)]
TRow = Annotated[list[TransposeValue], Field(min_length=1, max_length=MAX_TRANSPOSE_SIDE)]
TPlane = Annotated[list[TRow], Field(min_length=1, max_length=MAX_TRANSPOSE_SIDE)]
TStack = Annotated[list[TPlane], Field(min_length=1, max_length=MAX_TRANSPOSE_CHANNELS)]
KRow = Annotated[list[TransposeValue], Field(min_length=1, max_length=MAX_KERNEL)]
KPlane = Annotated[list[KRow], Field(min_length=1, max_length=MAX_KERNEL)]
KOut = Annotated[list[KPlane], Field(min_length=1, max_length=MAX_TRANSPOSE_CHANNELS)]
KIn = Annotated[list[KOut], Field(min_length=1, max_length=MAX_TRANSPOSE_CHANNELS)]


class TransposeRequest(BaseModel):
    """``POST /api/transpose``: a transposed convolution of a small input given by value."""

    x: TPlane | TStack = Field(description="(H, W) one channel, or (C, H, W); H, W ≤ 16.")
    weight: KPlane | KIn = Field(description="(KH, KW), or (C_in, C_out/groups, KH, KW).")
    bias: (
        Annotated[list[TransposeValue], Field(min_length=1, max_length=MAX_TRANSPOSE_CHANNELS * 8)] | None
    ) = None
    stride: Stride = 1
    padding: (
        Annotated[int, Strict(), Field(ge=0, le=MAX_PADDING)]
        | Annotated[
            list[Annotated[int, Strict(), Field(ge=0, le=MAX_PADDING)]], Field(min_length=2, max_length=2)
        ]
    ) = 0
    output_padding: OutputPad = 0
    dilation: Dilation = 1
    groups: Annotated[int, Strict(), Field(ge=1, le=MAX_TRANSPOSE_CHANNELS)] = 1

    @field_validator("x", "weight")
    @classmethod
    def _rectangular(cls, value: Any, info: Any) -> Any:
        _check_rectangular(value, info.field_name)
        return value


BigInt = Annotated[int, Strict(), Field(ge=1, le=MAX_SHAPE_SIZE)]
BigPair = BigInt | Annotated[list[BigInt], Field(min_length=2, max_length=2)]
BigPad = Annotated[int, Strict(), Field(ge=0, le=MAX_SHAPE_SIZE)]


class ShapeRequest(BaseModel):
    """``POST /api/shape``: sizes only, no image (any size up to 1,000,000)."""

    input_size: BigPair = Field(description="(H, W) or one int for a square input.")
    channels: BigInt = 1
    filters: BigInt = 1
    kernel_size: BigPair = 3
    stride: BigPair = 1
    padding: (
        BigPad
        | Annotated[list[BigPad], Field(min_length=2, max_length=2)]
        | Annotated[list[BigPad], Field(min_length=4, max_length=4)]
        | Literal["valid", "same", "full"]
    ) = 0
    dilation: BigPair = 1
    groups: BigInt = 1
    batch: BigInt = 1
    bias: bool = True
    pool: PoolSpec | None = None


# ------------------------------------------------------------------------------------------- responses

Matrix = list[list[float]]


class Message(BaseModel):
    """An error: ``{"detail": "sentence"}``."""

    detail: str


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    """FastAPI's 422 body: ``{"detail": [{"loc", "msg", "type"}]}``."""

    detail: list[ValidationIssue]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    problems: list[str] = Field(description="One sentence per reason the service is not ready.")


class KernelInfo(BaseModel):
    name: str
    description: str
    size: list[int]
    weights: Matrix


class KernelList(BaseModel):
    kernels: list[KernelInfo]


class MnistItem(BaseModel):
    id: str
    index: int
    label: int


class MnistList(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[MnistItem]


class SampleInfo(BaseModel):
    id: str
    name: str
    width: int
    height: int
    channels: int
    description: str
    credit: str
    licence: str


class SampleList(BaseModel):
    samples: list[SampleInfo]


class UploadResult(BaseModel):
    id: str
    width: int
    height: int
    channels: Literal[1, 3]
    original_width: int
    original_height: int
    downscaled: bool


class ImageMeta(UploadResult):
    """An upload's answer plus what ``GET /api/images/{id}`` adds: the kind of image, and MNIST's label."""

    channels: int = Field(description="1 or 3 for an image; an activation's C (1..64).")  # type: ignore[assignment]
    kind: Literal["upload", "mnist", "sample", "activation"]
    label: int | None = None


class Limits(BaseModel):
    max_kernel: int
    max_stride: int
    max_padding: int
    max_dilation: int
    max_filters: int
    max_filters_api: int
    max_groups: int
    max_side: int
    min_side: int
    max_upload_bytes: int
    max_pixels: int
    max_macs: int
    max_im2col_bytes: int
    max_pool_kernel: int
    max_pool_stride: int
    max_pool_padding: int
    max_values_per_map: int
    max_matrix_values: int
    side_choices: list[int]


class StepOut(BaseModel):
    quantity: str
    formula: str
    substituted: str
    value: int | float | str


class PaddingOut(BaseModel):
    top: int
    bottom: int
    left: int
    right: int


class InputOut(BaseModel):
    shape: list[int] = Field(description="[N, C, H, W] of the input after loading (max_side, color).")
    png: str | None = Field(
        description="The input as a PNG data URL; null with ``?input=shape`` (the client already has it)."
    )


class LevelsOut(BaseModel):
    """A picture as 8-bit colour-map levels (``?pictures=levels``), coloured by the client."""

    shape: list[int] = Field(description="[H, W], or [C, H, W] for C maps side by side with one scale.")
    colormap: Literal["diverging", "sequential"]
    b64: str = Field(description="Base64 of the uint8 levels, row-major.")


class MapOut(BaseModel):
    index: int
    min: float
    max: float
    colormap: Literal["diverging", "sequential"]
    png: str | None = Field(default=None, description="PNG data URL (``?pictures=png``, the default).")
    levels: LevelsOut | None = Field(default=None, description="With ``?pictures=levels``, instead of png.")
    values: Matrix | None = None
    argmax: list[list[int]] | None = None


class RegionOut(BaseModel):
    y0: int
    y1: int
    x0: int
    x1: int


class ConvBlock(BaseModel):
    shape: list[int]
    activation: Literal["none", "relu"]
    maps: list[MapOut]
    region: RegionOut | None = None


class PoolBlock(BaseModel):
    shape: list[int]
    mode: Literal["max", "avg"]
    maps: list[MapOut]


class ConvResponse(BaseModel):
    input: InputOut
    padding: PaddingOut
    conv: ConvBlock
    pool: PoolBlock | None
    steps: list[StepOut]
    warnings: list[str]
    facts: dict[str, Any]
    timing_ms: dict[str, float]
    explain: ExplainResponse | None = Field(
        default=None, description="With ``?explain=f,y,x``: POST /api/explain's answer there (null outside)."
    )
    channels: dict[str, Any] | None = Field(
        default=None, description="With ``?channels=f``: filter f's per-channel contributions as conv maps."
    )


class ColumnsOut(BaseModel):
    start: int
    stop: int
    values: Matrix


class IndicesOut(BaseModel):
    k: list[int]
    i: list[list[int]]
    j: list[list[int]]


class ProductOut(BaseModel):
    shape: list[int]
    values: Matrix | None
    png: str
    min: float
    max: float
    png_column_step: int


class Im2colResponse(BaseModel):
    shape: list[int]
    rows: int
    cols: int
    row_labels: list[list[int]]
    out_size: list[int]
    values: Matrix | None
    png: str
    png_column_step: int = Field(description="The heat map shows every n-th column when the matrix is wide.")
    min: float
    max: float
    columns: ColumnsOut | None
    indices: IndicesOut | None
    w_col: Matrix
    groups: int
    product: ProductOut
    duplication: float
    im2col_bytes: int
    input_bytes: int


class TapsOut(BaseModel):
    rows: list[int]
    cols: list[int]
    input_rows: list[int]
    input_cols: list[int]
    in_padding: list[list[bool]]
    source_rows: list[int | None] = Field(
        default_factory=list, description="Input row each tap reads (None: a zero of the padding)."
    )
    source_cols: list[int | None] = Field(default_factory=list, description="Input column each tap reads.")
    padding_mode: str = "zeros"


class ExplainResponse(BaseModel):
    position: list[int]
    column: int
    group: int
    channels: list[int]
    taps: TapsOut
    window: list[Matrix]
    kernel: list[Matrix]
    products: list[Matrix]
    channel_sums: list[float]
    sum: float
    bias: float
    pre_activation: float
    value: float


class PictureOut(BaseModel):
    shape: list[int]
    png: str | None = None
    levels: LevelsOut | None = None
    min: float
    max: float
    values: list[Any] | None = None


class OverlapOut(BaseModel):
    shape: list[int]
    max: int
    png: str | None = None
    levels: LevelsOut | None = None
    values: list[list[int]] | None


class ValuesOut(BaseModel):
    shape: list[int] | None = None
    values: list[Any]


class BackwardResponse(BaseModel):
    upstream: PictureOut
    grad_x: PictureOut
    grad_weight: ValuesOut
    grad_bias: ValuesOut
    overlap: OverlapOut
    pool_grad: PictureOut | None


class ArrayOut(BaseModel):
    shape: list[int]
    values: list[Any]


class TransposeResponse(BaseModel):
    input: ArrayOut
    output: ArrayOut
    steps: list[StepOut]
    columns: ArrayOut


class ShapeResponse(BaseModel):
    conv: dict[str, Any]
    pool: dict[str, Any] | None
    warnings: list[str]


ConvResponse.model_rebuild()  # its ``explain`` is an ExplainResponse, defined after it
