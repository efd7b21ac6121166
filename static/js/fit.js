// Settings that no longer fit the input are KEPT (the page says why and offers a fix); this module computes
// the one-click fix and the words that describe it. It never changes the state by itself.
import { effectiveKernel, poolOutputSize, resolvePadding, windowGeometry } from './shapes.js';
import { PROPERTIES } from './state.js';

/** key → words ("kernel height"), from the state table. */
const LABELS = Object.fromEntries(PROPERTIES.filter((p) => p.label).map((p) => [p.key, p.label]));

/** The keys a fix may change, in the order they are described. */
const FIX_KEYS = ['kh', 'kw', 'dh', 'dw', 'pt', 'pb', 'pl', 'pr', 'groups', 'pk', 'pp'];

/**
 * The padding argument of a (partial) state.
 * @param {Object} t
 * @returns {string|number[]}
 */
function paddingOf(t) {
  return t.pad === 'explicit' ? [t.pt, t.pb, t.pl, t.pr] : t.pad;
}

/**
 * Whether one axis of the convolution fits: the dilated kernel spans no more than the padded input.
 * @param {Object} t  state-like {kh, kw, sh, sw, dh, dw, pad, pt, pb, pl, pr}
 * @param {number[]} size [H, W]
 * @param {number} axis 0 = rows, 1 = columns
 * @returns {boolean}
 */
function axisFits(t, size, axis) {
  const p = resolvePadding(paddingOf(t), [t.kh, t.kw], [t.sh, t.sw], [t.dh, t.dw], size);
  const k = axis ? t.kw : t.kh;
  const d = axis ? t.dw : t.dh;
  const lo = axis ? p.left : p.top;
  const hi = axis ? p.right : p.bottom;
  return effectiveKernel(k, d) <= size[axis] + lo + hi;
}

/**
 * The smallest change that makes the settings fit an H × W input: per axis, first a smaller dilation (the
 * kernel keeps its taps), then, if even dilation 1 is too wide, a smaller kernel; then the groups and the
 * pooling. Padding is never changed.
 * @param {Object} state   the page state
 * @param {number[]} size  [H, W] of the input the server computes on
 * @param {number[]} allowedGroups  groups the channel and filter counts allow
 * @returns {Object} the changed keys only (empty when the settings already fit)
 */
export function fitToInput(state, size, allowedGroups) {
  const t = { ...state };
  for (const axis of [0, 1]) {
    const [k, d] = axis ? ['kw', 'dw'] : ['kh', 'dh'];
    while (!axisFits(t, size, axis) && t[d] > 1) t[d] -= 1;
    while (!axisFits(t, size, axis) && t[k] > 1) t[k] -= 1;
  }
  if (!allowedGroups.includes(t.groups)) t.groups = 1;
  if (t.pool !== 'none') {
    t.pp = Math.min(t.pp, Math.floor(t.pk / 2));
    let output = null;
    try {
      output = windowGeometry(size, [t.kh, t.kw], [t.sh, t.sw], paddingOf(t), [t.dh, t.dw]).output;
    } catch {
      output = null;
    }
    const poolFits = () => {
      try {
        poolOutputSize(output, [t.pk, t.pk], [t.ps, t.ps], [t.pp, t.pp]);
        return true;
      } catch {
        return false;
      }
    };
    while (output && !poolFits() && t.pk > 1) {
      t.pk -= 1;
      t.pp = Math.min(t.pp, Math.floor(t.pk / 2));
    }
  }
  const changes = {};
  for (const key of FIX_KEYS) if (t[key] !== state[key]) changes[key] = t[key];
  return changes;
}

/**
 * Words for a set of changes: "dilation (rows) 2 → 1, kernel width 11 → 9".
 * @param {Object} before  the state before
 * @param {Object} changes key → new value
 * @returns {string}
 */
export function describeChanges(before, changes) {
  return Object.entries(changes)
    .map(([key, value]) => `${LABELS[key] || key} ${before[key]} → ${value}`)
    .join(', ');
}

/**
 * Size text of a kernel ("5 × 5").
 * @param {number[][]} kernel (h, w)
 * @returns {number[]} [h, w]
 */
export function kernelSize(kernel) {
  return [kernel.length, kernel.length ? kernel[0].length : 0];
}
