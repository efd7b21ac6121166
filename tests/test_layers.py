"""The layer stack (core.layers) against PyTorch's nn.Sequential, and the receptive field
(core.receptive_field) against the gradient's support, Distill's closed forms and hand-worked presets."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core import layers as L
from core.receptive_field import effective_field, field_table, field_warnings, unit_box
from core.stack_text import parse, to_pytorch, to_text, weights_npz_arrays
from core.stack_weights import PRESET_TEXT, mnist_params, params_from_npz, preset_kernel_params, preset_layers

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

padding_forms = st.one_of(
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)),
    st.sampled_from(["valid", "same", "full"]),
)


@st.composite
def stacks(draw, max_pool_dilation=2):
    """A random stack of 1..5 layers on a random input; (layers, (C, H, W))."""
    channels = draw(st.sampled_from([1, 2, 3, 4]))
    h, w = draw(st.integers(6, 18)), draw(st.integers(6, 18))
    layers: list[L.Layer] = []
    c = channels
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["conv", "conv", "relu", "max", "avg"]))
        if kind == "conv":
            groups = draw(st.sampled_from([g for g in (1, 2) if c % g == 0]))
            out = groups * draw(st.integers(1, 2))
            layers.append(
                L.Conv2d(
                    c,
                    out,
                    (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                    (draw(st.integers(1, 2)), draw(st.integers(1, 2))),
                    draw(padding_forms),
                    (draw(st.integers(1, 2)), draw(st.integers(1, 2))),
                    groups,
                    draw(st.booleans()),
                )
            )
            c = out
        elif kind == "relu":
            layers.append(L.ReLU())
        else:
            k = draw(st.integers(1, 3))
            stride = draw(st.integers(1, 3))
            pad = draw(st.integers(0, k // 2))
            ceil = draw(st.booleans())
            if kind == "max":
                layers.append(L.MaxPool2d(k, stride, pad, draw(st.integers(1, max_pool_dilation)), ceil))
            else:
                layers.append(L.AvgPool2d(k, stride, pad, ceil, draw(st.booleans())))
    try:
        L.stack_shapes(layers, (channels, h, w))
    except ValueError:
        assume(False)
    return layers, (channels, h, w)


# ------------------------------------------------------------------------------------------ PyTorch


def _textbook_padding(padding, k, s, d, n):
    """(lo, hi) along one axis from the textbook rules, written here independently of core.shapes."""
    span = (k - 1) * d + 1
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return span - 1, span - 1
    if padding == "same":
        total = max((math.ceil(n / s) - 1) * s + span - n, 0)
        return total // 2, total - total // 2
    return padding


def _torch_sequential(torch, layers, params, input_size, dtype):
    """Our stack as an nn.Sequential, built by hand; returns (model, index of each layer's output module)."""
    nn = torch.nn
    modules, ends = [], []
    h, w = input_size
    for layer, entry in zip(layers, params, strict=True):
        if isinstance(layer, L.Conv2d):
            (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
            p = layer.padding
            if isinstance(p, str):
                top, bottom = _textbook_padding(p, kh, sh, dh, h)
                left, right = _textbook_padding(p, kw, sw, dw, w)
            elif isinstance(p, int):
                top = bottom = left = right = p
            elif len(p) == 2:
                top = bottom = p[0]
                left = right = p[1]
            else:
                top, bottom, left, right = p
            modules.append(nn.ZeroPad2d((left, right, top, bottom)))
            conv = nn.Conv2d(
                layer.in_channels,
                layer.out_channels,
                (kh, kw),
                (sh, sw),
                0,
                (dh, dw),
                layer.groups,
                layer.bias,
                dtype=dtype,
            )
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(entry.weight))
                if layer.bias:
                    conv.bias.copy_(torch.from_numpy(entry.bias))
            modules.append(conv)
            h = (h + top + bottom - ((kh - 1) * dh + 1)) // sh + 1
            w = (w + left + right - ((kw - 1) * dw + 1)) // sw + 1
        elif isinstance(layer, L.ReLU):
            modules.append(nn.ReLU())
        elif isinstance(layer, L.MaxPool2d):
            modules.append(
                nn.MaxPool2d(
                    layer.kernel_size, layer.stride, layer.padding, layer.dilation, ceil_mode=layer.ceil_mode
                )
            )
        else:
            modules.append(
                nn.AvgPool2d(
                    layer.kernel_size, layer.stride, layer.padding, layer.ceil_mode, layer.count_include_pad
                )
            )
        if not isinstance(layer, L.Conv2d):
            probe = torch.zeros(1, 1, h, w)
            h, w = modules[-1](probe).shape[2:]
        ends.append(len(modules) - 1)
    return nn.Sequential(*modules), ends


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@SETTINGS
@given(case=stacks(), seed=st.integers(0, 2**16), pick=st.floats(0, 1))
def test_every_map_and_the_input_gradient_equal_torch(dtype, tol, case, seed, pick):
    torch = pytest.importorskip("torch")
    layers, (c, h, w) = case
    params = L.kaiming_uniform(layers, seed, dtype)
    x = np.random.default_rng(seed).standard_normal((1, c, h, w)).astype(dtype)
    ours = L.forward(layers, params, x)
    # a max-pool window entirely in the padding (dilation over a 1-pixel map) gives −inf in torch too, and
    # an index outside the map from core.pool.max_pool2d: no gradient to compare
    assume(all(np.isfinite(m).all() for m in ours.maps))
    model, ends = _torch_sequential(
        torch, layers, params, (h, w), torch.float64 if dtype == np.float64 else torch.float32
    )
    xt = torch.tensor(x, requires_grad=True)
    outputs, current = [], xt
    for module in model:
        current = module(current)
        outputs.append(current)
    for index, end in enumerate(ends):
        theirs = outputs[end].detach().numpy()
        assert ours.maps[index + 1].shape == theirs.shape, f"layer {index}"
        assert ours.maps[index + 1].dtype == dtype
        np.testing.assert_allclose(ours.maps[index + 1], theirs, rtol=tol, atol=tol, err_msg=f"layer {index}")
    # gradient of one unit of a random layer
    layer = int(pick * len(layers)) % len(layers)
    _, oc, oh, ow = ours.maps[layer + 1].shape
    rng = np.random.default_rng(seed + 1)
    channel, y, xx = int(rng.integers(oc)), int(rng.integers(oh)), int(rng.integers(ow))
    outputs[ends[layer]][0, channel, y, xx].backward()
    grad = L.unit_gradient(layers, params, ours, layer, channel, y, xx)
    np.testing.assert_allclose(grad, xt.grad.numpy()[0], rtol=tol, atol=tol)


# ------------------------------------------------------------------------------ receptive field


def _support_stack(layers):
    """Max pooling → average pooling with the same window (its gradient reaches every tap, not one)."""
    return [
        L.AvgPool2d(layer.kernel_size, layer.stride, layer.padding, layer.ceil_mode)
        if isinstance(layer, L.MaxPool2d)
        else layer
        for layer in layers
    ]


@SETTINGS
@given(
    case=stacks(max_pool_dilation=1), pick=st.floats(0, 1), where=st.tuples(st.floats(0, 1), st.floats(0, 1))
)
def test_unit_box_is_the_support_of_the_gradient(case, pick, where):
    layers, (c, h, w) = case
    layers = _support_stack(layers)
    params = L.constant_params(layers, 1.0)
    x = np.random.default_rng(0).uniform(0.5, 1.5, (1, c, h, w))
    acts = L.forward(layers, params, x)
    layer = int(pick * len(layers)) % len(layers)
    _, _, oh, ow = acts.maps[layer + 1].shape
    y, xx = min(int(where[0] * oh), oh - 1), min(int(where[1] * ow), ow - 1)
    grad = L.unit_gradient(layers, params, acts, layer, 0, y, xx)
    support = np.any(grad != 0, axis=0)
    box = unit_box(layers, (h, w), layer, y, xx)
    # the exact masks are the support, row by column
    np.testing.assert_array_equal(support, np.outer(box.rows, box.columns))
    rows, cols = np.flatnonzero(support.any(axis=1)), np.flatnonzero(support.any(axis=0))
    if rows.size:
        assert (box.height.exact_start, box.height.exact_stop) == (rows[0], rows[-1] + 1)
        assert (box.width.exact_start, box.width.exact_stop) == (cols[0], cols[-1] + 1)
        # ... and lie inside the theoretical box clipped to the image
        assert box.height.clipped_start <= rows[0] and rows[-1] < box.height.clipped_stop
        assert box.width.clipped_start <= cols[0] and cols[-1] < box.width.clipped_stop
    for axis in (box.height, box.width):
        assert (
            axis.stop - axis.start
            == axis.pad_before + axis.pad_after + axis.clipped_stop - axis.clipped_start
        )


def _distill_closed_form(layers, input_size, axis):
    """r_0, j, u_0 of the last layer by Distill's closed forms (eq. for r_0 and u_0), from the
    layer hyper-parameters alone: r = Σ (k'_l − 1) Π_{i<l} s_i + 1, j = Π s_l, u = −Σ p_l Π_{i<l} s_i."""
    r, product, start = 1, 1, 0
    n = input_size[axis]
    for layer in layers:
        if isinstance(layer, L.ReLU):
            continue
        k, s, d = layer.kernel_size[axis], layer.stride[axis], layer.dilation[axis]
        p = layer.padding
        if isinstance(p, str):
            lo = _textbook_padding(p, k, s, d, n)[0]
        elif isinstance(p, int):
            lo = p
        elif len(p) == 2:
            lo = p[axis]
        else:
            lo = p[0] if axis == 0 else p[2]
        r += ((k - 1) * d) * product
        start -= lo * product
        product *= s
        n = _after(layer, n, axis, input_size)
    return r, product, start


def _after(layer, n, axis, input_size):
    """Output length along ``axis`` by the textbook formula (for 'same' of the next layer)."""
    k, s, d = layer.kernel_size[axis], layer.stride[axis], layer.dilation[axis]
    if isinstance(layer, L.Conv2d):
        p = layer.padding
        if isinstance(p, str):
            lo, hi = _textbook_padding(p, k, s, d, n)
        elif isinstance(p, int):
            lo = hi = p
        elif len(p) == 2:
            lo = hi = p[axis]
        else:
            lo, hi = (p[0], p[1]) if axis == 0 else (p[2], p[3])
        return (n + lo + hi - (k - 1) * d - 1) // s + 1
    p = layer.padding[axis]
    top = n + 2 * p - (k - 1) * d - 1
    out = (-(-top // s) if layer.ceil_mode else top // s) + 1
    if layer.ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


@SETTINGS
@given(case=stacks())
def test_table_follows_distills_closed_forms(case):
    layers, (_, h, w) = case
    table = field_table(layers, (h, w))
    for depth in range(1, len(layers) + 1):
        for axis, name in ((0, "height"), (1, "width")):
            r, j, start = _distill_closed_form(layers[:depth], (h, w), axis)
            got = getattr(table[depth - 1], name)
            assert (got.r, got.j, got.start) == (r, j, start)
            assert got.centre == start + (r - 1) / 2


def _rj(name, size):
    return [
        (row.height.r, row.height.j, row.height.start)
        for row in field_table(preset_layers(name), (size, size))
    ]


def test_preset_fields_worked_by_hand():
    # ResNet stem: conv 7 s2 p3 → r 7, j 2, starts 3 px in the padding; ReLU;
    # pool 3 s2 p1 → 7 + 2·2 = 11, j 4,
    # start −3 − 1·2 = −5 (the well-known 11-pixel field of ResNet's stem)
    assert _rj("resnet_stem", 224) == [(7, 2, -3), (7, 2, -3), (11, 4, -5)]
    # AlexNet: 11 (s4, p2), pool 3 s2: 11 + 2·4 = 19, conv 5 p2: 19 + 4·8 = 51, pool 3 s2: 51 + 2·8 = 67
    assert [r for r, _, _ in _rj("alexnet", 224)] == [11, 11, 19, 51, 51, 67]
    assert [j for _, j, _ in _rj("alexnet", 224)] == [4, 4, 8, 8, 8, 16]
    # VGG: 3×3 stacks give 3, 5, 7; the 2×2 pool adds 1
    assert [r for r, _, _ in _rj("vgg_block", 64)] == [3, 3, 5, 5, 7, 7, 8]
    # dilations 1, 2, 4, 8: 3, 3 + 2·2 = 7, 7 + 2·4 = 15, 15 + 2·8 = 31
    assert [r for r, _, _ in _rj("dilated", 64)][::2] == [3, 7, 15, 31]
    # LeNet-5: 5, pool 2 → 6 (j 2), conv 5 → 6 + 4·2 = 14, pool 2 → 14 + 1·2 = 16 (j 4)
    assert [r for r, _, _ in _rj("lenet5", 28)] == [5, 5, 6, 14, 14, 16]
    assert [r for r, _, _ in _rj("mnist", 28)] == [5, 5, 6]


# Published values: google-research/receptive_field, receptive_field/RECEPTIVE_FIELD_TABLE.md (TF-Slim models,
# resolution 224): end-point → (RF, effective stride, effective padding).
VGG16_TABLE = [
    (3, 1, 1),
    (6, 2, 2),
    (10, 2, 4),
    (16, 4, 6),
    (24, 4, 10),
    (32, 4, 14),
    (44, 8, 18),
    (60, 8, 26),
    (76, 8, 34),
    (100, 16, 42),
    (132, 16, 58),
    (164, 16, 74),
    (212, 32, 90),
]
ALEXNET_V2_TABLE = [
    (11, 4, 0),
    (19, 8, 0),
    (51, 8, 16),
    (99, 16, 32),
    (131, 16, 48),
    (163, 16, 64),
    (195, 32, 64),
]


def test_published_receptive_fields_of_vgg16_and_alexnet():
    conv = "nn.Conv2d({}, {}, 3, padding=1), nn.ReLU()"
    blocks, points, index, c = [], [], -1, 3
    for count in (2, 2, 3, 3, 3):
        for i in range(count):
            blocks.append(conv.format(c, 4))
            c = 4
            index += 2
            if i == 0 or count == 3 and i < count - 1:
                points.append(index - 1)  # conv1_1, conv2_1, conv3_1, conv3_2, ... (the table's end-points)
        blocks.append("nn.MaxPool2d(2)")
        index += 1
        points.append(index)
    vgg = parse("nn.Sequential(" + ", ".join(blocks) + ")")
    table = field_table(vgg, (224, 224))
    assert [(table[i].height.r, table[i].height.j, -table[i].height.start) for i in points] == VGG16_TABLE
    alexnet = parse(
        "nn.Sequential(nn.Conv2d(3, 4, 11, stride=4), nn.MaxPool2d(3, stride=2), "
        "nn.Conv2d(4, 4, 5, padding=2), nn.MaxPool2d(3, stride=2), nn.Conv2d(4, 4, 3, padding=1), "
        "nn.Conv2d(4, 4, 3, padding=1), "
        "nn.Conv2d(4, 4, 3, padding=1), nn.MaxPool2d(3, stride=2))"
    )
    table = field_table(alexnet, (224, 224))
    got = [(row.width.r, row.width.j, -row.width.start) for row in table]
    assert [got[i] for i in (0, 1, 2, 4, 5, 6, 7)] == ALEXNET_V2_TABLE


def test_distill_worked_example_asymmetric_padding():
    # Distill's recurrence by hand, with padding (top 2, bottom 0) then a 3×3 s2 pool with padding 1:
    # conv 3×3 s1: r 3, j 1, u −2; pool 3 s2 p1: r 3 + 2·1 = 5, j 2, u −2 − 1·1 = −3
    layers = parse(
        "nn.Sequential(nn.Conv2d(1, 1, 3, padding=(2, 0, 1, 1)), nn.MaxPool2d(3, stride=2, padding=1))"
    )
    table = field_table(layers, (10, 10))
    assert (table[1].height.r, table[1].height.j, table[1].height.start) == (5, 2, -3)
    assert (table[1].width.r, table[1].width.j, table[1].width.start) == (5, 2, -2)
    # unit (y=4) of the pool: rows −3 + 4·2 = 5 .. 9; unit (y=0): −3..1, 3 rows in the padding
    box = unit_box(layers, (10, 10), 1, 0, 0)
    assert (box.height.start, box.height.stop, box.height.pad_before) == (-3, 2, 3)
    assert (box.height.clipped_start, box.height.clipped_stop) == (0, 2)


def test_warnings_name_unproductive_and_skipping_layers():
    skip = parse("nn.Sequential(nn.Conv2d(1, 1, 2, stride=3))")
    assert any("skips pixels" in w and "layer 0" in w for w in field_warnings(skip, (12, 12)))
    # 3×3 padding 1 on 8 px: the padded input is 10; units entering layer l see 1 + 2l pixels,
    # more than 10 from layer 5 on
    deep = parse("nn.Sequential(" + ", ".join(["nn.Conv2d(1, 1, 3, padding=1)"] * 7) + ")")
    unproductive = [w for w in field_warnings(deep, (8, 8)) if "unproductive" in w]
    assert sorted({int(w.split()[1]) for w in unproductive}) == [5, 6]
    assert any("see 11 pixels, more than the 10-pixel padded input" in w for w in unproductive)
    assert not [w for w in field_warnings(deep, (12, 12)) if "unproductive" in w]
    holes = parse("nn.Sequential(nn.Conv2d(1, 1, 3, dilation=4))")
    assert any("holes" in w for w in field_warnings(holes, (16, 16)))
    assert not field_warnings(preset_layers("dilated"), (64, 64))  # 1, 2, 4, 8 is exactly hole-free


def test_effective_field_grows_like_sqrt_n_while_theoretical_grows_like_n():
    radii, theoretical = [], []
    ns = list(range(1, 17))
    for n in ns:
        layers = [L.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(n)]
        side = 4 * n + 9
        params = L.constant_params(layers, 1.0)
        acts = L.forward(layers, params, np.ones((1, 1, side, side)))
        centre = side // 2
        grad = L.unit_gradient(layers, params, acts, n - 1, 0, centre, centre)
        box = unit_box(layers, (side, side), n - 1, centre, centre)
        erf = effective_field(grad, (box.height.centre, box.width.centre))
        assert abs(erf.density.sum() - 1) < 1e-12
        radii.append(erf.radius)
        theoretical.append((box.height.stop - box.height.start - 1) / 2)
    assert theoretical == [float(n) for n in ns]  # r = 2n + 1
    # log-log slope: ERF radius ∝ n^½, theoretical ∝ n^1
    big = np.array(ns[3:], dtype=float)
    slope = np.polyfit(np.log(big), np.log(np.array(radii[3:])), 1)[0]
    assert 0.35 < slope < 0.65, slope
    # and the ERF is a shrinking share of the theoretical field
    assert radii[15] / theoretical[15] < 0.6 * radii[3] / theoretical[3]


def test_effective_field_radius_is_the_smallest_square_with_the_mass():
    rng = np.random.default_rng(3)
    grad = rng.standard_normal((2, 21, 21)) * np.exp(-((np.arange(21) - 10) ** 2) / 20)[None, :, None]
    erf = effective_field(grad, (10.0, 10.0), 0.9)
    density = np.abs(grad).sum(axis=0) / np.abs(grad).sum()
    r = int(erf.radius)
    assert density[10 - r : 11 + r, 10 - r : 11 + r].sum() >= 0.9 - 1e-12
    assert density[10 - r + 1 : 10 + r, 10 - r + 1 : 10 + r].sum() < 0.9


# ----------------------------------------------------------------------------------- text, weights


@pytest.mark.parametrize(
    "text, words",
    [
        ("nn.Sequential(nn.Linear(3, 4))", ["layer 0", "nn.Linear", "not allowed"]),
        ("nn.Sequential(nn.ReLU(), os.system('x'))", ["layer 1", "os.system", "not allowed"]),
        ("nn.Sequential(nn.Conv2d(3, n, 3))", ["layer 0", "literal", "Name"]),
        ("nn.Sequential(nn.Conv2d(3, 4, 3).cuda())", ["layer 0", "not allowed"]),
        ("nn.Sequential(nn.Conv2d(3, 4, (lambda: 3)()))", ["layer 0", "literal", "Call"]),
        ("nn.Sequential(nn.Conv2d(3, 4, lambda: 3))", ["layer 0", "Lambda"]),
        ("import os", ["expression"]),
        ("__import__('os').system('x')", ["nn.Sequential"]),
        ("nn.Sequential(nn.Conv2d(3, 10**9, 3))", ["layer 0", "literal"]),
        ("nn.Sequential(nn.Conv2d(3, 1000000000, 3))", ["layer 0", "too large"]),
        ("nn.Sequential(nn.Conv2d(3, 4, 3, stride=-1))", ["negative"]),
        ("nn.Sequential(nn.Conv2d(3, 4, 3, foo=1))", ["no argument 'foo'"]),
        ("nn.Sequential(nn.Conv2d(3, 4))", ["needs kernel_size"]),
        ("nn.Sequential(nn.Conv2d(3, 4, 3, padding='circular'))", ["padding"]),
        ("nn.Sequential(nn.Conv2d(3, 4, 3, groups=2))", ["groups"]),
        ("nn.Sequential(nn.Conv2d(3, 4, 3, **{}))", ["**kwargs"]),
        ("nn.Sequential(nn.MaxPool2d(2, padding=2))", ["half the kernel"]),
        ("nn.Sequential(torch.load('x'))", ["not allowed"]),
        ("nn.Sequential(nn.ReLU(), nn.ReLU(1.5))", ["layer 1", "1.5"]),
        ("nn.Sequential(" + "nn.ReLU()," * 65 + ")", ["at most 64"]),
        ("nn.Sequential(nn.Conv2d(3, 4, 3)", ["not a Python expression"]),
    ],
)
def test_parser_refuses_everything_but_literal_layer_calls(text, words):
    with pytest.raises(ValueError) as info:
        parse(text)
    message = str(info.value)
    for word in words:
        assert word in message, message


def test_parser_reads_pytorch_forms():
    layers = parse(
        "torch.nn.Sequential(\n  nn.Conv2d(3, 16, kernel_size=(3, 5), stride=2, padding='same',"
        " bias=False),\n  nn.ReLU(inplace=True),\n  MaxPool2d(2, ceil_mode=True),\n"
        "  nn.AvgPool2d(3, 1, 1, count_include_pad=False),\n)"
    )
    assert layers == [
        L.Conv2d(3, 16, (3, 5), 2, "same", 1, 1, False),
        L.ReLU(),
        L.MaxPool2d(2, None, 0, 1, True),
        L.AvgPool2d(3, 1, 1, False, False),
    ]
    with pytest.raises(ValueError, match="line 4"):
        parse("nn.Sequential(\n nn.ReLU(),\n nn.ReLU(),\n nn.Dropout())")


@SETTINGS
@given(case=stacks())
def test_text_export_round_trips(case):
    layers, _ = case
    assert parse(to_text(layers)) == layers


@pytest.mark.parametrize("weights_file", [False, True])
def test_pytorch_snippet_rebuilds_the_stack_with_our_weights(tmp_path, weights_file):
    torch = pytest.importorskip("torch")
    layers = parse(
        "nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding='same'), nn.ReLU(), "
        "nn.Conv2d(4, 4, 3, padding=(1, 0, 2, 1), groups=2, dilation=2), nn.MaxPool2d(2, ceil_mode=True), "
        "nn.Conv2d(4, 2, 2, padding='full', bias=False))"
    )
    params = L.kaiming_uniform(layers, 5, np.float32)
    x = np.random.default_rng(1).random((1, 3, 17, 15)).astype(np.float32)
    file = None
    if weights_file:
        file = str(tmp_path / "w.npz")
        np.savez(file, **weights_npz_arrays(layers, params))
    source = to_pytorch(layers, params, (17, 15), file)
    scope: dict = {}
    exec(compile(source, "snippet", "exec"), scope)  # our own generated script, run as a user would
    got = scope["model"](torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(L.forward(layers, params, x).maps[-1], got, rtol=1e-5, atol=1e-5)


def test_kaiming_uniform_is_seeded_and_bounded_like_torch():
    layers = parse("nn.Sequential(nn.Conv2d(4, 64, 3, groups=2), nn.ReLU(), nn.Conv2d(64, 8, 1, bias=False))")
    a, b = L.kaiming_uniform(layers, 7), L.kaiming_uniform(layers, 7)
    np.testing.assert_array_equal(a[0].weight, b[0].weight)
    assert not np.array_equal(a[0].weight, L.kaiming_uniform(layers, 8)[0].weight)
    bound = 1 / math.sqrt(2 * 3 * 3)  # torch: 1/√fan_in, fan_in = C/groups·KH·KW
    assert np.abs(a[0].weight).max() <= bound and np.abs(a[0].weight).max() > 0.9 * bound
    assert np.abs(a[0].bias).max() <= bound
    assert a[1] is None and a[2].bias is None and np.abs(a[2].weight).max() <= 1 / 8


def test_npz_weights_round_trip_and_pickle_is_refused(tmp_path):
    layers = parse("nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 1, bias=False))")
    params = L.kaiming_uniform(layers, 1)
    buffer = io.BytesIO()
    np.savez(buffer, **weights_npz_arrays(layers, params))
    loaded = params_from_npz(layers, buffer.getvalue())
    np.testing.assert_array_equal(loaded[0].weight, params[0].weight)
    np.testing.assert_array_equal(loaded[2].weight, params[2].weight)
    pickled = io.BytesIO()
    np.savez(
        pickled,
        **{
            "0.weight": np.array([{"a": 1}], dtype=object),
            "0.bias": np.zeros(2),
            "2.weight": np.zeros((2, 2, 1, 1)),
        },
    )
    with pytest.raises(L.StackError, match="pickle"):
        params_from_npz(layers, pickled.getvalue())
    wrong = io.BytesIO()
    np.savez(
        wrong,
        **{"0.weight": np.zeros((2, 1, 5, 5)), "0.bias": np.zeros(2), "2.weight": np.zeros((2, 2, 1, 1))},
    )
    with pytest.raises(L.StackError, match="layer 0: weight has shape"):
        params_from_npz(layers, wrong.getvalue())
    with pytest.raises(L.StackError, match=r"no 2\.weight"):
        params_from_npz(layers, _npz({"0.weight": np.zeros((2, 1, 3, 3)), "0.bias": np.zeros(2)}))
    with pytest.raises(L.StackError, match="could not read"):
        params_from_npz(layers, b"not a zip")


def _npz(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_presets_parse_fit_their_inputs_and_mnist_weights_load():
    for name, (_, _, shape) in PRESET_TEXT.items():
        layers = preset_layers(name)
        L.stack_shapes(layers, shape)
    layers = preset_layers("mnist")
    params = mnist_params(layers)
    from core import network

    trained, _ = network.load_weights()
    x = np.random.default_rng(0).random((1, 1, 28, 28)).astype(np.float32)
    _, cache = network.forward(trained, x)
    np.testing.assert_allclose(L.forward(layers, params, x).maps[-1], cache.pool, rtol=1e-6)
    with pytest.raises(L.StackError, match="layer 0"):
        mnist_params(preset_layers("lenet5"))


def test_preset_kernels_fill_the_filters():
    layers = parse("nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())")
    params = preset_kernel_params(layers, {0: ["sobel_x", "sobel_y"]})
    from core.kernels import get_preset

    np.testing.assert_allclose(params[0].weight[0, 1], get_preset("sobel_x").weights / 3, rtol=1e-6)
    np.testing.assert_allclose(params[0].weight[3, 0], get_preset("sobel_y").weights / 3, rtol=1e-6)
    with pytest.raises(L.StackError, match="layer 0"):
        preset_kernel_params(layers, {0: ["gaussian_5"]})
    with pytest.raises(L.StackError, match="layer 1"):
        preset_kernel_params(layers, {1: ["sobel_x"]})


def test_stack_errors_name_the_layer_and_field():
    layers = parse("nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(4, 8, 3))")
    with pytest.raises(L.StackError) as info:
        L.stack_shapes(layers, (3, 16, 16))
    assert (info.value.layer, info.value.field) == (2, "in_channels")
    with pytest.raises(L.StackError) as info:
        L.stack_shapes(parse("nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 9))"), (3, 8, 8))
    assert (info.value.layer, info.value.field) == (1, "kernel_size")
    assert "6×6" in str(info.value)
