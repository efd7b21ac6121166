// Small drawing helpers shared by the pure rendering functions: element creation, colour maps,
// number formatting, decoding PNG data URLs and sizing canvases.

/**
 * Create an element with properties/attributes and children (no inline styles: CSP style-src 'self').
 * @param {string} tag
 * @param {Object} [props]  `class`, `text`, `dataset`, any attribute
 * @param {Array<Node|string>} [children]
 * @returns {HTMLElement}
 */
export function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) node.append(child);
  return node;
}

/**
 * Short text for a number: integers as they are, others with up to `digits` significant digits.
 * @param {number} v
 * @param {number} [digits]
 * @returns {string}
 */
export function fmt(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (Number.isInteger(v)) return String(v);
  const text = Number(v.toPrecision(digits)).toString();
  return text === '-0' ? '0' : text;
}

/**
 * Diverging blue–white–red colour for t in [−1, 1] (white = 0).
 * @param {number} t
 * @returns {number[]} [r, g, b] 0..255
 */
export function diverging(t) {
  const u = Math.max(-1, Math.min(1, t));
  if (u >= 0) return [Math.round(255 - 75 * u), Math.round(255 * (1 - u)), Math.round(255 * (1 - u))];
  const a = -u;
  return [Math.round(255 * (1 - a)), Math.round(255 * (1 - 0.7 * a)), Math.round(255 - 75 * a)];
}

/**
 * Sequential black→white colour for t in [0, 1].
 * @param {number} t
 * @returns {number[]} [r, g, b]
 */
export function sequential(t) {
  const v = Math.round(255 * Math.max(0, Math.min(1, t)));
  return [v, v, v];
}

/**
 * A colour function for values in [lo, hi]: diverging around 0 when lo < 0, else sequential.
 * @param {number} lo
 * @param {number} hi
 * @returns {(v: number) => number[]}
 */
export function colourScale(lo, hi) {
  if (lo < 0) {
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    return (v) => diverging(v / m);
  }
  if (hi === lo) return () => constantColour(lo);
  const span = hi - lo;
  return (v) => sequential((v - lo) / span);
}

/**
 * The colour of a constant non-negative map (as app/render.py draws it): black for zeros, else the neutral
 * mid-grey (palette index 128), so that e.g. an upstream gradient of ones does not look like zeros.
 * @param {number} v  the constant
 * @returns {number[]} [r, g, b]
 */
export function constantColour(v) {
  return v === 0 ? [0, 0, 0] : [128, 128, 128];
}

/**
 * Whether a map with this range is constant, and the sentence that says so.
 * @param {number} lo
 * @param {number} hi
 * @returns {string} '' when the map is not constant
 */
export function constantText(lo, hi) {
  return lo === hi && Number.isFinite(lo) ? `constant: every value = ${fmt(lo, 6)}` : '';
}

/**
 * CSS colour text for [r, g, b].
 * @param {number[]} rgb
 * @returns {string}
 */
export function css(rgb) {
  return `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
}

/** Cache of decoded data URLs (the same PNG is often drawn by several views). */
const decoded = new Map();

/**
 * Decode a PNG data URL to an ImageBitmap-like drawable (HTMLImageElement), cached by URL.
 * @param {string} url
 * @returns {Promise<HTMLImageElement>}
 */
export async function loadImage(url) {
  if (decoded.has(url)) return decoded.get(url);
  const image = new Image();
  image.src = url;
  await image.decode();
  if (decoded.size > 24) decoded.delete(decoded.keys().next().value);
  decoded.set(url, image);
  return image;
}

/**
 * Give a canvas an intrinsic size (only when it changes, which clears it) and a CSS display size.
 * @param {HTMLCanvasElement} canvas
 * @param {number} width   intrinsic pixels
 * @param {number} height
 * @param {number} [displayWidth]  CSS pixels (default = width)
 * @param {number} [displayHeight]
 */
export function sizeCanvas(canvas, width, height, displayWidth = width, displayHeight = height) {
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  canvas.style.width = `${displayWidth}px`;
  canvas.style.height = `${displayHeight}px`;
}

/**
 * Scale that shows an h × w grid at about `target` CSS pixels on its longer side.
 * @returns {number} CSS pixels per cell (may be fractional, at least 0.25)
 */
export function fitScale(h, w, target) {
  return Math.max(0.25, Math.min(40, target / Math.max(h, w)));
}

/**
 * Draw a 2-D array of numbers as coloured cells onto a canvas, with the numbers written in when cells are big.
 * @param {HTMLCanvasElement} canvas
 * @param {number[][]} values (rows, cols)
 * @param {Object} [options] {cell: px, lo, hi, highlightRow, highlightCol, numbers: bool,
 *   highlightCells: [[r, c], ...] outlined in cellColour}
 */
export function drawMatrix(canvas, values, options = {}) {
  const rows = values.length;
  const cols = rows ? values[0].length : 0;
  const cell = options.cell ?? 24;
  let lo = options.lo;
  let hi = options.hi;
  if (lo === undefined || hi === undefined) {
    const flat = values.flat();
    lo = Math.min(...flat, 0);
    hi = Math.max(...flat, 0);
  }
  const colour = colourScale(lo, hi);
  sizeCanvas(canvas, cols * cell, rows * cell);
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = `${Math.max(8, Math.floor(cell * 0.38))}px system-ui, sans-serif`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  for (let r = 0; r < rows; r += 1) {
    for (let c = 0; c < cols; c += 1) {
      const rgb = colour(values[r][c]);
      ctx.fillStyle = css(rgb);
      ctx.fillRect(c * cell, r * cell, cell, cell);
      if (options.numbers !== false && cell >= 22) {
        const luminance = 0.3 * rgb[0] + 0.59 * rgb[1] + 0.11 * rgb[2];
        ctx.fillStyle = luminance < 128 ? '#fff' : '#000';
        ctx.fillText(fmt(values[r][c], 2), c * cell + cell / 2, r * cell + cell / 2);
      }
    }
  }
  ctx.strokeStyle = 'rgba(0,0,0,0.25)';
  ctx.lineWidth = 1;
  if (cell >= 6) {
    for (let r = 0; r <= rows; r += 1) {
      ctx.beginPath();
      ctx.moveTo(0, r * cell + 0.5);
      ctx.lineTo(cols * cell, r * cell + 0.5);
      ctx.stroke();
    }
    for (let c = 0; c <= cols; c += 1) {
      ctx.beginPath();
      ctx.moveTo(c * cell + 0.5, 0);
      ctx.lineTo(c * cell + 0.5, rows * cell);
      ctx.stroke();
    }
  }
  ctx.lineWidth = 3;
  ctx.strokeStyle = '#f0a000';
  if (options.highlightRow !== undefined && options.highlightRow !== null) {
    ctx.strokeRect(1.5, options.highlightRow * cell + 1.5, cols * cell - 3, cell - 3);
  }
  if (options.highlightCol !== undefined && options.highlightCol !== null) {
    ctx.strokeRect(options.highlightCol * cell + 1.5, 1.5, cell - 3, rows * cell - 3);
  }
  ctx.strokeStyle = options.cellColour || '#f0a000';
  for (const [r, c] of options.highlightCells || []) {
    if (r >= 0 && c >= 0 && r < rows && c < cols) ctx.strokeRect(c * cell + 1.5, r * cell + 1.5, cell - 3, cell - 3);
  }
}

/**
 * Draw a horizontal colour bar for [lo, hi] with the end values and zero labelled.
 * @param {HTMLCanvasElement} canvas
 * @param {number} lo
 * @param {number} hi
 * @param {string} colormap 'diverging' | 'sequential'
 * @param {number} [width] CSS pixels
 */
export function drawColourBar(canvas, lo, hi, colormap, width = 200) {
  // a canvas not yet in the document has no computed style: take the page's (projector mode has white ink)
  const style = getComputedStyle(canvas.isConnected ? canvas : document.body);
  const fontSize = Math.round((parseFloat(style.fontSize) || 14) * 0.8);
  const height = 18 + fontSize;
  sizeCanvas(canvas, width, height);
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, width, height);
  if (lo === hi) {
    // a constant map has no range: one swatch of its colour, and its value
    ctx.fillStyle = css(colourScale(lo, hi)(lo));
    ctx.fillRect(0, 0, Math.min(width, 40), 14);
    ctx.strokeStyle = '#888';
    ctx.strokeRect(0.5, 0.5, Math.min(width, 40) - 1, 13);
    ctx.fillStyle = style.color || '#000';
    ctx.font = `${fontSize}px system-ui, sans-serif`;
    ctx.textBaseline = 'top';
    ctx.textAlign = 'left';
    ctx.fillText(`= ${fmt(lo, 6)} everywhere`, 0, 18);
    return;
  }
  const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  const [a, b] = colormap === 'diverging' ? [-m, m] : [lo, hi];
  const colour = colormap === 'diverging' ? (v) => diverging(v / m) : (v) => sequential((v - lo) / (hi - lo || 1));
  for (let x = 0; x < width; x += 1) {
    ctx.fillStyle = css(colour(a + ((b - a) * x) / (width - 1)));
    ctx.fillRect(x, 0, 1, 14);
  }
  ctx.strokeStyle = '#888';
  ctx.strokeRect(0.5, 0.5, width - 1, 13);
  ctx.fillStyle = style.color || '#000';
  ctx.font = `${fontSize}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  ctx.textAlign = 'left';
  ctx.fillText(fmt(a, 3), 0, 18);
  ctx.textAlign = 'right';
  ctx.fillText(fmt(b, 3), width, 18);
  if (a < 0 && b > 0) {
    ctx.textAlign = 'center';
    ctx.fillText('0', (width * (0 - a)) / (b - a), 18);
  }
}
