"""``nn.Sequential(...)`` text ⇄ a layer stack, and a runnable PyTorch snippet.

The text is parsed with :mod:`ast` and walked by hand — never ``eval``: only the calls
``nn.Sequential``, ``nn.Conv2d``, ``nn.ReLU``, ``nn.MaxPool2d`` and ``nn.AvgPool2d`` (also spelt
``torch.nn.X`` or bare ``X``) are allowed, with literal arguments (ints, booleans, strings, tuples/lists
of ints, ``None``). Anything else — another attribute, a name, a lambda, an import, an expression, an
int larger than :data:`MAX_INT` — raises :class:`StackTextError` naming the layer and the line/column.

Export: :func:`to_text` writes the same form back (``parse(to_text(layers)) == layers``);
:func:`to_pytorch` writes a script that rebuilds the stack in PyTorch with our weights. PyTorch's
``Conv2d`` has no 4-sided padding nor ``'same'`` with a stride or ``'full'``, so those become an explicit
``nn.ZeroPad2d`` before a ``Conv2d(padding=0)``, resolved for the given input size.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.layers import AvgPool2d, Conv2d, Layer, MaxPool2d, Params, ReLU, windows

MAX_TEXT = 20_000
"""Characters of stack text accepted."""
MAX_LAYERS = 64
MAX_INT = 4096
"""Largest int literal accepted (channels, kernel sizes ...): the parser refuses huge numbers outright."""

_SIGNATURES: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    # positional names, keyword defaults (PyTorch's)
    "Conv2d": (
        ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"),
        {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True, "padding_mode": "zeros"},
    ),
    "ReLU": (("inplace",), {"inplace": False}),
    "MaxPool2d": (
        ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"),
        {"stride": None, "padding": 0, "dilation": 1, "return_indices": False, "ceil_mode": False},
    ),
    "AvgPool2d": (
        ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
        {
            "stride": None,
            "padding": 0,
            "ceil_mode": False,
            "count_include_pad": True,
            "divisor_override": None,
        },
    ),
}
_REQUIRED = {"Conv2d": 3, "ReLU": 0, "MaxPool2d": 1, "AvgPool2d": 1}
ALLOWED = "nn.Sequential(...) of nn.Conv2d, nn.ReLU, nn.MaxPool2d and nn.AvgPool2d with literal arguments"


class StackTextError(ValueError):
    """A refusal of the parser, pointing at the offending call.

    Attributes
    ----------
    layer : int or None
        0-based index of the layer inside ``nn.Sequential`` (``None`` outside any layer).
    line, column : int
        1-based position in the text.
    """

    def __init__(self, message: str, node: ast.AST | None = None, layer: int | None = None) -> None:
        self.line = getattr(node, "lineno", 1) if node is not None else 1
        self.column = getattr(node, "col_offset", 0) + 1 if node is not None else 1
        self.layer = layer
        where = f"line {self.line}, column {self.column}"
        if layer is not None:
            where = f"layer {layer} ({where})"
        super().__init__(f"{where}: {message}")
        self.message = message


def _call_name(node: ast.expr) -> str | None:
    """``nn.X`` / ``torch.nn.X`` / ``X`` → ``"X"``; anything else → None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    parts.reverse()
    if len(parts) == 1 or parts[:-1] in (["nn"], ["torch", "nn"]):
        return parts[-1]
    return None


def _literal(node: ast.expr, layer: int, call: str) -> Any:
    """A literal argument: int (0..MAX_INT), bool, None, str, or a tuple/list of ints."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or value is None or isinstance(value, str):
            if isinstance(value, str) and len(value) > 16:
                raise StackTextError(f"{call}: string argument too long", node, layer)
            return value
        if isinstance(value, int):
            if value > MAX_INT:
                raise StackTextError(f"{call}: {value} is too large (at most {MAX_INT})", node, layer)
            return value
        raise StackTextError(
            f"{call}: only ints, booleans, strings and tuples are allowed, got {value!r}", node, layer
        )
    if isinstance(node, (ast.Tuple, ast.List)):
        if len(node.elts) > 4:
            raise StackTextError(f"{call}: a tuple has at most 4 values", node, layer)
        values = [_literal(element, layer, call) for element in node.elts]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise StackTextError(f"{call}: a tuple may only hold ints", node, layer)
        return tuple(values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        raise StackTextError(f"{call}: negative numbers are not allowed", node, layer)
    raise StackTextError(
        f"{call}: arguments must be literals (ints, booleans, strings, tuples), not {type(node).__name__}",
        node,
        layer,
    )


def _layer(node: ast.expr, index: int) -> Layer:
    if not isinstance(node, ast.Call):
        raise StackTextError(
            f"expected a layer call, got {type(node).__name__}; allowed: {ALLOWED}", node, index
        )
    name = _call_name(node.func)
    if name not in _SIGNATURES:
        shown = ast.unparse(node.func) if len(ast.unparse(node.func)) < 60 else "this call"
        raise StackTextError(f"{shown} is not allowed; allowed: {ALLOWED}", node, index)
    positional, defaults = _SIGNATURES[name]
    if len(node.args) > len(positional):
        raise StackTextError(f"{name} takes at most {len(positional)} positional arguments", node, index)
    args: dict[str, Any] = {}
    for key, value in zip(positional, node.args, strict=False):
        args[key] = _literal(value, index, name)
    for keyword in node.keywords:
        if keyword.arg is None:
            raise StackTextError(f"{name}: **kwargs are not allowed", keyword.value, index)
        if keyword.arg not in positional and keyword.arg not in defaults:
            raise StackTextError(
                f"{name} has no argument {keyword.arg!r}; it takes {', '.join(positional)}",
                keyword.value,
                index,
            )
        if keyword.arg in args:
            raise StackTextError(f"{name}: {keyword.arg} given twice", keyword.value, index)
        args[keyword.arg] = _literal(keyword.value, index, name)
    missing = [key for key in positional[: _REQUIRED[name]] if key not in args]
    if missing:
        raise StackTextError(f"{name} needs {', '.join(missing)}", node, index)
    return _build(name, {**{k: v for k, v in defaults.items() if k not in args}, **args}, node, index)


def _build(name: str, args: dict[str, Any], node: ast.AST, index: int) -> Layer:
    try:
        if name == "ReLU":
            return ReLU()
        if name == "Conv2d":
            if args.pop("padding_mode") != "zeros":
                raise ValueError("only padding_mode='zeros' is supported")
            return Conv2d(**args)
        if args.pop("return_indices", False) or args.pop("divisor_override", None) is not None:
            raise ValueError("return_indices and divisor_override are not supported")
        if name == "MaxPool2d":
            return MaxPool2d(**args)
        return AvgPool2d(**args)
    except (TypeError, ValueError) as exc:
        raise StackTextError(f"{name}: {exc}", node, index) from None


def parse(text: str) -> list[Layer]:
    """Parse ``nn.Sequential(...)`` text into layers (see the module docstring for what is allowed).

    Raises
    ------
    StackTextError
        With the layer index, line and column of the first thing refused.
    """
    if len(text) > MAX_TEXT:
        raise StackTextError(f"the text has {len(text)} characters; at most {MAX_TEXT}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise StackTextError(f"not a Python expression: {exc.msg}; expected {ALLOWED}") from None
    body = tree.body
    if not isinstance(body, ast.Call) or _call_name(body.func) != "Sequential":
        raise StackTextError(f"the text must be one nn.Sequential(...) call; allowed: {ALLOWED}", body)
    if body.keywords:
        raise StackTextError("nn.Sequential takes layers only, no keywords", body)
    if not body.args:
        raise StackTextError("nn.Sequential needs at least one layer", body)
    if len(body.args) > MAX_LAYERS:
        raise StackTextError(f"{len(body.args)} layers; at most {MAX_LAYERS}", body)
    return [_layer(node, index) for index, node in enumerate(body.args)]


# --------------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------------


def _pair_text(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"({pair[0]}, {pair[1]})"


def _padding_text(padding: Any) -> str:
    if isinstance(padding, str):
        return repr(padding)
    if isinstance(padding, tuple):
        if len(padding) == 2:
            return _pair_text(padding)  # type: ignore[arg-type]
        return "(" + ", ".join(str(v) for v in padding) + ")"
    return str(padding)


def layer_text(layer: Layer) -> str:
    """One layer as ``nn.X(...)``, only non-default arguments after the required ones."""
    if isinstance(layer, ReLU):
        return "nn.ReLU()"
    if isinstance(layer, Conv2d):
        parts = [str(layer.in_channels), str(layer.out_channels), _pair_text(layer.kernel_size)]
        if layer.stride != (1, 1):
            parts.append(f"stride={_pair_text(layer.stride)}")
        if layer.padding != 0:
            parts.append(f"padding={_padding_text(layer.padding)}")
        if layer.dilation != (1, 1):
            parts.append(f"dilation={_pair_text(layer.dilation)}")
        if layer.groups != 1:
            parts.append(f"groups={layer.groups}")
        if not layer.bias:
            parts.append("bias=False")
        return f"nn.Conv2d({', '.join(parts)})"
    parts = [_pair_text(layer.kernel_size)]
    if layer.stride != layer.kernel_size:
        parts.append(f"stride={_pair_text(layer.stride)}")  # type: ignore[arg-type]
    if layer.padding != (0, 0):
        parts.append(f"padding={_pair_text(layer.padding)}")
    if isinstance(layer, MaxPool2d) and layer.dilation != (1, 1):
        parts.append(f"dilation={_pair_text(layer.dilation)}")
    if layer.ceil_mode:
        parts.append("ceil_mode=True")
    if isinstance(layer, AvgPool2d) and not layer.count_include_pad:
        parts.append("count_include_pad=False")
    return f"nn.{layer.name}({', '.join(parts)})"


def to_text(layers: Sequence[Layer]) -> str:
    """The stack as ``nn.Sequential(...)`` text, one layer per line; :func:`parse` reads it back."""
    inner = "".join(f"    {layer_text(layer)},\n" for layer in layers)
    return f"nn.Sequential(\n{inner})"


def _torch_layers(layers: Sequence[Layer], input_size: tuple[int, int]) -> tuple[list[str], list[int]]:
    """PyTorch layer lines and, for each of our layers, the index of its module in the torch Sequential."""
    lines: list[str] = []
    positions: list[int] = []
    for layer, window in zip(layers, windows(layers, input_size), strict=True):
        if isinstance(layer, Conv2d):
            (pt, pl), (pb, pr) = window.pad_lo, window.pad_hi
            symmetric = pt == pb and pl == pr
            if not symmetric:
                lines.append(f"nn.ZeroPad2d(({pl}, {pr}, {pt}, {pb}))")
            explicit = Conv2d(
                layer.in_channels,
                layer.out_channels,
                layer.kernel_size,
                layer.stride,
                (pt, pl) if symmetric else 0,
                layer.dilation,
                layer.groups,
                layer.bias,
            )
            positions.append(len(lines))
            lines.append(layer_text(explicit))
        else:
            positions.append(len(lines))
            lines.append(layer_text(layer))
    return lines, positions


def _tensor_text(array: np.ndarray) -> str:
    return "torch.tensor(" + repr(np.asarray(array, dtype=np.float64).tolist()) + ")"


def to_pytorch(
    layers: Sequence[Layer],
    params: Params,
    input_size: tuple[int, int],
    weights_file: str | None = None,
) -> str:
    """A runnable script that rebuilds the stack in PyTorch with these weights.

    Parameters
    ----------
    layers, params
        The stack and its weights.
    input_size : (H, W)
        Resolves ``'same'`` with a stride, ``'full'`` and 4-sided padding into ``nn.ZeroPad2d``.
    weights_file : str, optional
        Load the weights from this ``.npz`` (keys ``"<layer>.weight"``, ``"<layer>.bias"``, our layer
        indices, as :func:`weights_npz_arrays` writes) instead of writing them into the script.

    Returns
    -------
    str
        Python source defining ``model`` (float32, eval mode).
    """
    lines, positions = _torch_layers(layers, input_size)
    out = [
        "# Rebuilt by convlens: the same layers and weights as in the Layers view.",
        "import torch",
        "from torch import nn",
    ]
    if weights_file is not None:
        out.append("import numpy as np")
    out.append("")
    out.append("model = nn.Sequential(")
    out.extend(f"    {line}," for line in lines)
    out.append(")")
    if weights_file is not None:
        out.append(f"weights = np.load({weights_file!r}, allow_pickle=False)")
    out.append("with torch.no_grad():")
    wrote = False
    for index, (layer, entry) in enumerate(zip(layers, params, strict=True)):
        if not isinstance(layer, Conv2d) or entry is None:
            continue
        module = f"model[{positions[index]}]"
        for name, array in (("weight", entry.weight), ("bias", entry.bias)):
            if array is None:
                continue
            source = (
                f"torch.from_numpy(weights['{index}.{name}'])"
                if weights_file is not None
                else _tensor_text(array)
            )
            out.append(f"    {module}.{name}.copy_({source})")
            wrote = True
    if not wrote:
        out.append("    pass")
    out.append("model.eval()")
    channels = next((layer.in_channels for layer in layers if isinstance(layer, Conv2d)), 1)
    out.append(f"# x = torch.rand(1, {channels}, {input_size[0]}, {input_size[1]}); maps = model(x)")
    return "\n".join(out) + "\n"


def weights_npz_arrays(layers: Sequence[Layer], params: Params) -> dict[str, np.ndarray]:
    """The weights as ``{"<layer>.weight": ..., "<layer>.bias": ...}`` (``nn.Sequential.state_dict()`` keys
    for a stack without inserted padding layers)."""
    arrays: dict[str, np.ndarray] = {}
    for index, (layer, entry) in enumerate(zip(layers, params, strict=True)):
        if isinstance(layer, Conv2d) and entry is not None:
            arrays[f"{index}.weight"] = entry.weight
            if entry.bias is not None:
                arrays[f"{index}.bias"] = entry.bias
    return arrays
