// Border modes (PyTorch's padding_mode): which input pixel each padded position copies, the rules PyTorch
// enforces, and the drawing of a copied border so that it reads as "copied", not as part of the image.
// The twin of core.im2col.border_index and core.shapes.check_padding_mode.

/**
 * The input index held at each position of a padded axis.
 * @param {number} n       input length
 * @param {number} before  padding before the input
 * @param {number} after   padding after it
 * @param {'zeros'|'reflect'|'replicate'|'circular'} mode
 * @returns {Array<number|null>} length before + n + after; null where the padding holds a zero
 */
export function borderIndex(n, before, after, mode) {
  const out = [];
  for (let p = 0; p < before + n + after; p += 1) {
    let t = p - before;
    if (t < 0 || t >= n) {
      if (mode === 'zeros') {
        out.push(null);
        continue;
      }
      if (mode === 'replicate') t = Math.min(Math.max(t, 0), n - 1);
      else if (mode === 'circular') t = ((t % n) + n) % n;
      else {
        t = Math.abs(t);
        if (t > n - 1) t = 2 * (n - 1) - t;
      }
    }
    out.push(t);
  }
  return out;
}

/**
 * Throw the server's sentence when a border mode does not fit the padding (PyTorch's rules).
 * @param {string} mode
 * @param {{top: number, bottom: number, left: number, right: number}} padding
 * @param {number[]} size  [H, W] of the input
 */
export function borderProblem(mode, padding, size) {
  const axes = [
    ['height', size[0], padding.top, padding.bottom],
    ['width', size[1], padding.left, padding.right],
  ];
  for (const [axis, n, lo, hi] of axes) {
    if (mode === 'reflect' && Math.max(lo, hi) >= n) {
      throw new Error(
        `padding_mode 'reflect' needs padding smaller than the input ${axis}: padding (${lo}, ${hi}) with ` +
          `input ${axis} ${n} allows at most ${n - 1} per side`,
      );
    }
    if (mode === 'circular' && Math.max(lo, hi) > n) {
      throw new Error(
        `padding_mode 'circular' needs padding at most the input ${axis}: padding (${lo}, ${hi}) with ` +
          `input ${axis} ${n} would wrap around more than once`,
      );
    }
  }
}

/**
 * Fill the border of an input canvas with the pixels it copies, tinted so that it stays distinct.
 * Rows are copied from the image first, then whole columns from the canvas itself (which also fills the
 * corners with x[row source, column source]).
 * @param {CanvasRenderingContext2D} ctx  the input canvas, image already drawn at (left, top)
 * @param {HTMLImageElement} image  W × H
 * @param {Object} geometry  window geometry (padding, padded, height, width)
 * @param {string} mode  'reflect' | 'replicate' | 'circular'
 * @param {number} cell  canvas pixels per input pixel
 */
export function drawBorder(ctx, image, geometry, mode, cell) {
  const { top, bottom, left, right } = geometry.padding;
  const [ph, pw] = geometry.padded;
  const h = geometry.height;
  const w = geometry.width;
  const rows = borderIndex(h, top, bottom, mode);
  const cols = borderIndex(w, left, right, mode);
  ctx.save();
  ctx.imageSmoothingEnabled = false;
  for (let p = 0; p < ph; p += 1) {
    if (p >= top && p < top + h) continue;
    ctx.drawImage(image, 0, rows[p], w, 1, left * cell, p * cell, w * cell, cell);
  }
  for (let q = 0; q < pw; q += 1) {
    if (q >= left && q < left + w) continue;
    const source = (left + cols[q]) * cell;
    ctx.drawImage(ctx.canvas, source, 0, cell, ph * cell, q * cell, 0, cell, ph * cell);
  }
  // tint the copies and hatch them lightly: the values are real, but they are not the image
  ctx.fillStyle = 'rgba(217, 138, 0, 0.28)';
  ctx.fillRect(0, 0, pw * cell, top * cell);
  ctx.fillRect(0, (top + h) * cell, pw * cell, bottom * cell);
  ctx.fillRect(0, top * cell, left * cell, h * cell);
  ctx.fillRect((left + w) * cell, top * cell, right * cell, h * cell);
  ctx.restore();
}

/**
 * Legend text for the padding swatch.
 * @param {string} mode
 * @returns {string}
 */
export function borderLegend(mode) {
  return {
    zeros: 'zero padding',
    reflect: 'padding: reflected copies (c b | a b c)',
    replicate: 'padding: replicated edge (a a | a b c)',
    circular: 'padding: wrapped around (b c | a b c)',
  }[mode] || 'padding';
}
