// A JavaScript mirror of core/shapes.py: the same formulas and the same sentences, used only to clamp the
// sliders and to explain an impossible setting before asking the server. The browser test compares it
// with POST /api/shape on many configurations, so the two cannot drift apart silently.
//
//   effective kernel    k_eff = (k - 1) * d + 1
//   convolution output  o = floor((n + p_lo + p_hi - k_eff) / s) + 1
//   pooling output      o = floor((n + 2p - k_eff) / s) + 1   (PyTorch; symmetric p <= k / 2)

import { channelCount } from './state.js';

/**
 * @typedef {{top: number, bottom: number, left: number, right: number}} Padding
 */

/**
 * Span of a dilated kernel along one axis.
 * @param {number} k kernel size
 * @param {number} d dilation
 * @returns {number} (k - 1) * d + 1
 */
export function effectiveKernel(k, d = 1) {
  if (k < 1 || d < 1) {
    throw new Error(`kernel size and dilation must be at least 1, got kernel ${k}, dilation ${d}`);
  }
  return (k - 1) * d + 1;
}

/**
 * Total 'same' padding along one axis (output = ceil(n / s)).
 * @returns {number}
 */
function sameTotal(n, k, s, d) {
  const kEff = effectiveKernel(k, d);
  if (s === 1) return kEff - 1;
  const out = Math.ceil(n / s);
  return Math.max((out - 1) * s + kEff - n, 0);
}

/**
 * Resolve any padding form to explicit (top, bottom, left, right), as core.shapes.resolve_padding.
 * @param {number|number[]|string} padding int, [ph, pw], [top, bottom, left, right], 'valid' | 'same' | 'full'
 * @param {number[]} kernel [kh, kw]
 * @param {number[]} stride [sh, sw]
 * @param {number[]} dilation [dh, dw]
 * @param {number[]} inputSize [H, W]
 * @returns {Padding}
 */
export function resolvePadding(padding, kernel, stride = [1, 1], dilation = [1, 1], inputSize = null) {
  const [kh, kw] = kernel;
  const [sh, sw] = stride;
  const [dh, dw] = dilation;
  if (typeof padding === 'string') {
    const word = padding.trim().toLowerCase();
    if (word === 'valid') return { top: 0, bottom: 0, left: 0, right: 0 };
    if (word === 'full') {
      const ph = (kh - 1) * dh;
      const pw = (kw - 1) * dw;
      return { top: ph, bottom: ph, left: pw, right: pw };
    }
    if (word === 'same') {
      const th = sameTotal(inputSize[0], kh, sh, dh);
      const tw = sameTotal(inputSize[1], kw, sw, dw);
      const top = Math.floor(th / 2);
      const left = Math.floor(tw / 2);
      return { top, bottom: th - top, left, right: tw - left };
    }
    throw new Error(`unknown padding '${padding}'`);
  }
  let values;
  if (typeof padding === 'number') values = [padding, padding, padding, padding];
  else if (padding.length === 2) values = [padding[0], padding[0], padding[1], padding[1]];
  else values = padding.slice(0, 4);
  if (Math.min(...values) < 0) throw new Error(`padding cannot be negative, got ${padding}`);
  return { top: values[0], bottom: values[1], left: values[2], right: values[3] };
}

/**
 * One axis of a convolution; throws the same sentence as the server when the kernel does not fit.
 * @returns {number} output size along the axis
 */
function axisOutput(n, k, s, lo, hi, d, axis) {
  const kEff = effectiveKernel(k, d);
  const padded = n + lo + hi;
  if (kEff > padded) {
    const word = axis === 'width' ? 'wide' : 'tall';
    const dil = d > 1 ? ` with dilation ${d}` : '';
    throw new Error(
      `kernel ${k}${dil} spans ${kEff} pixels but the padded input is only ${padded} ${word} ` +
        `(${n} + ${lo} + ${hi}); use a smaller kernel or dilation, or more padding`,
    );
  }
  return Math.floor((padded - kEff) / s) + 1;
}

/**
 * @typedef {Object} WindowGeometry
 * @property {number} height
 * @property {number} width
 * @property {number[]} kernel     [kh, kw]
 * @property {number[]} stride     [sh, sw]
 * @property {number[]} dilation   [dh, dw]
 * @property {Padding} padding
 * @property {number[]} effective  [kh_eff, kw_eff]
 * @property {number[]} padded     [H + top + bottom, W + left + right]
 * @property {number[]} output     [OH, OW]
 * @property {number[]} uncovered  trailing padded rows / columns no window reaches
 */

/**
 * Resolve a sliding window over an H × W input (core.shapes.window_geometry).
 * @param {number[]} inputSize [H, W]
 * @param {number[]} kernel [kh, kw]
 * @param {number[]} stride [sh, sw]
 * @param {number|number[]|string} padding
 * @param {number[]} dilation [dh, dw]
 * @returns {WindowGeometry}
 */
export function windowGeometry(inputSize, kernel, stride, padding, dilation) {
  const [h, w] = inputSize;
  const pad = resolvePadding(padding, kernel, stride, dilation, inputSize);
  const oh = axisOutput(h, kernel[0], stride[0], pad.top, pad.bottom, dilation[0], 'height');
  const ow = axisOutput(w, kernel[1], stride[1], pad.left, pad.right, dilation[1], 'width');
  const effective = [effectiveKernel(kernel[0], dilation[0]), effectiveKernel(kernel[1], dilation[1])];
  const padded = [h + pad.top + pad.bottom, w + pad.left + pad.right];
  return {
    height: h,
    width: w,
    kernel: [...kernel],
    stride: [...stride],
    dilation: [...dilation],
    padding: pad,
    effective,
    padded,
    output: [oh, ow],
    uncovered: [(padded[0] - effective[0]) % stride[0], (padded[1] - effective[1]) % stride[1]],
  };
}

/**
 * Check a whole convolution layer (core.shapes.conv_geometry) and return its geometry.
 * @param {number[]} inputShape [N, C, H, W]
 * @param {number[]} weightShape [F, C/groups, KH, KW]
 * @returns {{window: WindowGeometry, outputShape: number[]}}
 */
export function convGeometry(inputShape, weightShape, stride, padding, dilation, groups = 1) {
  const [n, c, h, w] = inputShape;
  const [f, cg, kh, kw] = weightShape;
  if (!Number.isInteger(groups) || groups < 1) throw new Error(`groups must be a positive int, got ${groups}`);
  if (c % groups) throw new Error(`groups (${groups}) must divide the input channels (${c})`);
  if (f % groups) throw new Error(`groups (${groups}) must divide the number of filters (${f})`);
  if (cg !== c / groups) {
    throw new Error(
      `weight has ${cg} input channels per filter but the input has ${c} channels in ` +
        `${groups} group(s), so each filter needs ${c / groups}`,
    );
  }
  const window = windowGeometry([h, w], [kh, kw], stride, padding, dilation);
  return { window, outputShape: [n, f, ...window.output] };
}

/**
 * Validate pooling padding (symmetric, at most half the kernel).
 * @returns {number[]} [ph, pw]
 */
export function poolPadding(padding, kernel) {
  const [kh, kw] = kernel;
  const [ph, pw] = padding;
  if (ph > Math.floor(kh / 2) || pw > Math.floor(kw / 2)) {
    throw new Error(
      `pooling padding must be at most half the kernel size: padding (${ph}, ${pw}) ` +
        `with kernel (${kh}, ${kw}) allows at most (${Math.floor(kh / 2)}, ${Math.floor(kw / 2)})`,
    );
  }
  return [ph, pw];
}

function poolAxis(n, k, s, p, d, ceilMode, axis) {
  const kEff = effectiveKernel(k, d);
  const numerator = n + 2 * p - kEff;
  // Math.floor rounds towards −inf like PyTorch: in ceil mode a window a little wider than the padded input
  // still gives one clipped output.
  let out = Math.floor((numerator + (ceilMode ? s - 1 : 0)) / s) + 1;
  if (ceilMode && (out - 1) * s >= n + p) out -= 1;
  if (out < 1) {
    const word = axis === 'width' ? 'wide' : 'tall';
    throw new Error(`pooling window ${k} spans ${kEff} pixels but the padded input is only ${n + 2 * p} ${word}`);
  }
  return out;
}

/**
 * Pooling output size by PyTorch's rule (core.shapes.pool_output_size).
 * @param {number[]} inputSize [H, W]
 * @param {number[]} kernel [kh, kw]
 * @param {number[]|null} stride [sh, sw]; null = kernel
 * @param {number[]} padding [ph, pw]
 * @returns {number[]} [PH, PW]
 */
export function poolOutputSize(inputSize, kernel, stride = null, padding = [0, 0], dilation = [1, 1], ceilMode = false) {
  const s = stride ?? kernel;
  const [ph, pw] = poolPadding(padding, kernel);
  return [
    poolAxis(inputSize[0], kernel[0], s[0], ph, dilation[0], ceilMode, 'height'),
    poolAxis(inputSize[1], kernel[1], s[1], pw, dilation[1], ceilMode, 'width'),
  ];
}

/**
 * Output size of a transposed convolution: o = (n - 1) s - 2p + (k - 1) d + 1 + output_padding.
 * @returns {number[]} [OH, OW]
 */
export function convTransposeOutputSize(inputSize, kernel, stride, padding, outputPadding = [0, 0], dilation = [1, 1]) {
  return [0, 1].map(
    (a) => (inputSize[a] - 1) * stride[a] - 2 * padding[a] + effectiveKernel(kernel[a], dilation[a]) + outputPadding[a],
  );
}

/**
 * True when `fn` runs without throwing.
 * @param {Function} fn
 * @returns {boolean}
 */
function fits(fn) {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}

/**
 * Largest value in [lo, hi] for which `ok(value)` holds, searching down from hi (lo if none).
 * @returns {number}
 */
function largest(lo, hi, ok) {
  for (let v = hi; v > lo; v -= 1) if (ok(v)) return v;
  return lo;
}

/**
 * The sentence `fn` throws, or '' when it does not throw.
 * @param {Function} fn
 * @returns {string}
 */
function why(fn) {
  try {
    fn();
    return '';
  } catch (error) {
    return error.message;
  }
}

/**
 * Every slider's allowed range for the current input, found by asking the formulas above with the other
 * settings held fixed, so that an invalid setting cannot be reached.
 * @param {Object} state   the page state (see state.js)
 * @param {number[]} inputSize [H, W] of the image the server computes on
 * @param {Object} limits  GET /api/limits
 * @returns {Object} key → {min, max}, plus `groups` → allowed values and `convOutput` → [OH, OW] or null
 */
export function sliderBounds(state, inputSize, limits) {
  const pad = state.pad === 'explicit' ? [state.pt, state.pb, state.pl, state.pr] : state.pad;
  const geom = (kh, kw, sh, sw, dh, dw, p) => windowGeometry(inputSize, [kh, kw], [sh, sw], p, [dh, dw]);
  const { kh, kw, sh, sw, dh, dw } = state;
  const maxK = limits.max_kernel;
  const maxD = limits.max_dilation;
  const bounds = {
    kh: { min: 1, max: largest(1, maxK, (v) => fits(() => geom(v, kw, sh, sw, dh, dw, pad))) },
    kw: { min: 1, max: largest(1, maxK, (v) => fits(() => geom(kh, v, sh, sw, dh, dw, pad))) },
    dh: { min: 1, max: largest(1, maxD, (v) => fits(() => geom(kh, kw, sh, sw, v, dw, pad))) },
    dw: { min: 1, max: largest(1, maxD, (v) => fits(() => geom(kh, kw, sh, sw, dh, v, pad))) },
    sh: { min: 1, max: limits.max_stride },
    sw: { min: 1, max: limits.max_stride },
  };
  // say why a slider stops short of its usual maximum (the sentence the server would give)
  const tries = {
    kh: (v) => geom(v, kw, sh, sw, dh, dw, pad),
    kw: (v) => geom(kh, v, sh, sw, dh, dw, pad),
    dh: (v) => geom(kh, kw, sh, sw, v, dw, pad),
    dw: (v) => geom(kh, kw, sh, sw, dh, v, pad),
  };
  for (const [key, attempt] of Object.entries(tries)) {
    const limit = key[0] === 'k' ? maxK : maxD;
    const b = bounds[key];
    b.reason = b.max < limit ? `${b.max} at most here: ${why(() => attempt(b.max + 1))}` : '';
  }
  // explicit padding never makes a setting impossible by growing; shrinking it might.
  for (const key of ['pt', 'pb', 'pl', 'pr']) {
    const minimum = (() => {
      for (let v = 0; v <= limits.max_padding; v += 1) {
        const p = [state.pt, state.pb, state.pl, state.pr];
        p[['pt', 'pb', 'pl', 'pr'].indexOf(key)] = v;
        if (fits(() => geom(kh, kw, sh, sw, dh, dw, p))) return v;
      }
      return limits.max_padding;
    })();
    bounds[key] = { min: minimum, max: limits.max_padding };
  }
  let convOutput = null;
  try {
    convOutput = geom(kh, kw, sh, sw, dh, dw, pad).output;
  } catch {
    convOutput = null;
  }
  bounds.convOutput = convOutput;
  if (convOutput) {
    const poolOk = (k, s, p) => fits(() => poolOutputSize(convOutput, [k, k], [s, s], [p, p]));
    bounds.pk = { min: 1, max: largest(1, 8, (v) => poolOk(v, state.ps, Math.min(state.pp, Math.floor(v / 2)))) };
    bounds.ps = { min: 1, max: 8 };
    bounds.pp = { min: 0, max: Math.min(4, Math.floor(state.pk / 2)) };
  } else {
    bounds.pk = { min: 1, max: 8 };
    bounds.ps = { min: 1, max: 8 };
    bounds.pp = { min: 0, max: Math.min(4, Math.floor(state.pk / 2)) };
  }
  const c = channelCount(state);
  const f = state.k.length;
  bounds.groups = [];
  for (let g = 1; g <= Math.min(c, f); g += 1) if (c % g === 0 && f % g === 0) bounds.groups.push(g);
  return bounds;
}
