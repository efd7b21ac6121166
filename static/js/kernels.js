// Filter weights: from preset names or custom numbers in the state to the (F, C/groups, KH, KW) nested list
// the API takes. A preset of another size is centred into the current KH × KW (cropped or zero-padded).

/**
 * Centre a 2-D kernel into kh × kw, cropping or zero-padding equally on both sides.
 * @param {number[][]} kernel  (h, w)
 * @param {number} kh
 * @param {number} kw
 * @returns {number[][]} (kh, kw)
 */
export function fitKernel(kernel, kh, kw) {
  const h = kernel.length;
  const w = h ? kernel[0].length : 0;
  const oy = Math.floor((h - kh) / 2);
  const ox = Math.floor((w - kw) / 2);
  const out = [];
  for (let y = 0; y < kh; y += 1) {
    const row = [];
    for (let x = 0; x < kw; x += 1) {
      const sy = y + oy;
      const sx = x + ox;
      row.push(sy >= 0 && sy < h && sx >= 0 && sx < w ? kernel[sy][sx] : 0);
    }
    out.push(row);
  }
  return out;
}

/**
 * The identity kernel (1 in the centre).
 * @returns {number[][]} (kh, kw)
 */
export function identityKernel(kh, kw) {
  return fitKernel([[1]], kh, kw);
}

/**
 * The weights of every filter, as the API takes them.
 * @param {Object} state  page state (k: presets, w: custom flat weights)
 * @param {Map<string, Object>} presets  name → {weights: number[][]}
 * @param {number} cg  input channels per filter (C / groups)
 * @returns {number[][][][]} (F, C/groups, KH, KW)
 */
export function filterWeights(state, presets, cg) {
  const { kh, kw } = state;
  return state.k.map((name, f) => {
    const flat = state.w[f];
    if (name === 'custom' && flat && flat.length === cg * kh * kw) {
      const channels = [];
      for (let c = 0; c < cg; c += 1) {
        const rows = [];
        for (let y = 0; y < kh; y += 1) rows.push(flat.slice((c * kh + y) * kw, (c * kh + y + 1) * kw));
        channels.push(rows);
      }
      return channels;
    }
    const preset = presets.get(name);
    const kernel = preset ? fitKernel(preset.weights, kh, kw) : identityKernel(kh, kw);
    return Array.from({ length: cg }, () => kernel.map((row) => row.slice()));
  });
}

/**
 * Flatten one filter's (C/groups, KH, KW) weights in C order.
 * @param {number[][][]} filter
 * @returns {number[]}
 */
export function flattenFilter(filter) {
  return filter.flat(2);
}

/**
 * Refit a flat custom filter (cg0, kh0, kw0) to (cg, kh, kw): centred per channel; missing channels copy channel 0.
 * @returns {number[]}
 */
export function refitFlat(flat, cg0, kh0, kw0, cg, kh, kw) {
  const channels = [];
  for (let c = 0; c < cg; c += 1) {
    const src = Math.min(c, cg0 - 1);
    const rows = [];
    for (let y = 0; y < kh0; y += 1) rows.push(flat.slice((src * kh0 + y) * kw0, (src * kh0 + y + 1) * kw0));
    channels.push(fitKernel(rows, kh, kw));
  }
  return channels.flat(2);
}

/**
 * A small seeded generator (mulberry32) for reproducible random initialisation.
 * @param {number} seed
 * @returns {() => number} uniform in [0, 1)
 */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * PyTorch's default initialisation of a conv layer: uniform(−b, b) with b = 1 / sqrt(fan_in).
 * @param {number} count  number of weights (C/groups · KH · KW)
 * @param {number} seed
 * @returns {number[]} rounded to 3 decimals so the URL stays short
 */
export function randomWeights(count, seed) {
  const random = seededRandom(seed);
  const bound = 1 / Math.sqrt(count);
  return Array.from({ length: count }, () => Math.round((random() * 2 - 1) * bound * 1000) / 1000);
}

/** Largest absolute weight or bias the API accepts (app/schemas.py MAX_WEIGHT_ABS). */
export const MAX_WEIGHT_ABS = 1e6;

const RANGE_WORDS = 'between −1,000,000 and 1,000,000';

/**
 * Read a weight or bias typed by a person. Accepts "0.5", "-2", ".25", "1e-3", "−1" (a typographic minus)
 * and "0,5" (a decimal comma).
 * @param {string} text
 * @returns {{ok: boolean, value?: number, reason?: string, unfinished?: boolean}}
 *   `unfinished` marks text that may still become a number while it is being typed ("", "-", "5e", "0.")
 */
export function parseWeight(text) {
  const t = String(text).trim().replace(/\u2212/g, '-').replace(/^([-+]?\d*),(\d+)$/, '$1.$2');
  if (t === '') return { ok: false, unfinished: true, reason: `empty: type a number ${RANGE_WORDS}.` };
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) {
    const unfinished = /^[-+]?(\d+\.?\d*|\.\d*)?([eE][-+]?)?$/.test(t);
    return { ok: false, unfinished, reason: `"${text}" is not a number: type a number ${RANGE_WORDS}.` };
  }
  const value = Number(t);
  if (!Number.isFinite(value) || Math.abs(value) > MAX_WEIGHT_ABS) {
    return { ok: false, reason: `${text} is too large: a weight or bias must be ${RANGE_WORDS}.` };
  }
  return { ok: true, value };
}
