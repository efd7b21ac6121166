// The input with its padding drawn distinctly, the rows/columns no window reaches greyed, and (on an overlay)
// the receptive field of the selected output pixel with every dilated tap as its own cell.
import { drawBorder } from './border.js';
import { sizeCanvas } from './common.js';

/**
 * Pixels per input pixel for the base canvas and the CSS display size.
 * @param {number[]} padded [PH, PW]
 * @param {number} target  CSS pixels for the longer side
 * @returns {{cell: number, display: number}} integer intrinsic pixels per cell; CSS pixels per cell
 */
export function inputScale(padded, target = 380) {
  const longest = Math.max(padded[0], padded[1]);
  return { cell: Math.max(1, Math.floor(target / longest)), display: target / longest };
}

/**
 * Draw the padded input: the image at (left, top), zero padding hatched, uncovered rows/columns greyed.
 * @param {HTMLCanvasElement} canvas
 * @param {HTMLImageElement} image   the input PNG (W × H)
 * @param {Object} geometry  window geometry from shapes.js (padding, padded, uncovered)
 * @param {string} [mode]  padding_mode: 'zeros' hatches the padding; the others draw the copied pixels, tinted
 */
export function drawInput(canvas, image, geometry, mode = 'zeros') {
  const [ph, pw] = geometry.padded;
  const { cell, display } = inputScale(geometry.padded);
  sizeCanvas(canvas, pw * cell, ph * cell, pw * display, ph * display);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  // hatch the padding (value 0) so that it reads as "not part of the image"
  ctx.save();
  ctx.strokeStyle = '#d98a00';
  ctx.lineWidth = Math.max(1, cell / 6);
  ctx.beginPath();
  const step = Math.max(4, cell);
  for (let d = -canvas.height; d < canvas.width; d += step) {
    ctx.moveTo(d, canvas.height);
    ctx.lineTo(d + canvas.height, 0);
  }
  ctx.stroke();
  ctx.restore();
  const { top, left } = geometry.padding;
  ctx.drawImage(image, left * cell, top * cell, geometry.width * cell, geometry.height * cell);
  if (mode !== 'zeros') drawBorder(ctx, image, geometry, mode, cell);
  // grey the trailing rows / columns that no window reaches
  const [ur, uc] = geometry.uncovered;
  ctx.fillStyle = 'rgba(150, 150, 150, 0.75)';
  if (ur) ctx.fillRect(0, (ph - ur) * cell, canvas.width, ur * cell);
  if (uc) ctx.fillRect((pw - uc) * cell, 0, uc * cell, canvas.height);
}

/**
 * Padded coordinates of every tap of output (y, x): rows y·s + i·d, columns x·s + j·d.
 * @param {Object} geometry
 * @param {number} y
 * @param {number} x
 * @returns {{rows: number[], cols: number[]}}
 */
export function tapCoordinates(geometry, y, x) {
  const [kh, kw] = geometry.kernel;
  const [sh, sw] = geometry.stride;
  const [dh, dw] = geometry.dilation;
  return {
    rows: Array.from({ length: kh }, (_, i) => y * sh + i * dh),
    cols: Array.from({ length: kw }, (_, j) => x * sw + j * dw),
  };
}

/**
 * Output positions (y or x) along one axis that read padded index p, i.e. p = o·s + t·d for some tap t.
 * @returns {number[]}
 */
export function outputsReading(p, k, s, d, outSize) {
  const out = [];
  for (let o = 0; o < outSize; o += 1) {
    const offset = p - o * s;
    if (offset >= 0 && offset % d === 0 && offset / d < k) out.push(o);
  }
  return out;
}

/**
 * Draw the overlay: padding border, the receptive field of `position`, and the hovered input pixel.
 * @param {HTMLCanvasElement} overlay  positioned over the input canvas
 * @param {Object} geometry
 * @param {Object} marks {position: [f, y, x] | null, hoverInput: [py, px] | null}
 */
export function drawInputOverlay(overlay, geometry, marks) {
  const [ph, pw] = geometry.padded;
  const { display } = inputScale(geometry.padded);
  const ratio = window.devicePixelRatio || 1;
  const width = pw * display;
  const height = ph * display;
  sizeCanvas(overlay, Math.round(width * ratio), Math.round(height * ratio), width, height);
  const ctx = overlay.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const { top, left } = geometry.padding;
  ctx.strokeStyle = '#ffb000';
  ctx.setLineDash([4, 3]);
  ctx.lineWidth = 1.5;
  ctx.strokeRect(left * display, top * display, geometry.width * display, geometry.height * display);
  ctx.setLineDash([]);
  if (marks.position) {
    const [, y, x] = marks.position;
    const { rows, cols } = tapCoordinates(geometry, y, x);
    const y0 = rows[0] * display;
    const x0 = cols[0] * display;
    const y1 = (rows[rows.length - 1] + 1) * display;
    const x1 = (cols[cols.length - 1] + 1) * display;
    ctx.fillStyle = 'rgba(0, 200, 255, 0.12)';
    ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
    ctx.strokeStyle = '#00c8ff';
    ctx.lineWidth = Math.max(1.5, Math.min(3, display / 4));
    for (const r of rows) {
      for (const c of cols) ctx.strokeRect(c * display + 1, r * display + 1, Math.max(1, display - 2), Math.max(1, display - 2));
    }
    ctx.setLineDash([5, 3]);
    ctx.strokeStyle = '#ffffff';
    ctx.lineWidth = 1;
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.setLineDash([]);
  }
  if (marks.hoverInput) {
    const [r, c] = marks.hoverInput;
    ctx.strokeStyle = '#ff3df2';
    ctx.lineWidth = 2;
    ctx.strokeRect(c * display, r * display, Math.max(2, display), Math.max(2, display));
  }
}

/**
 * The padded (row, col) under a pointer event on the input overlay, or null outside.
 * @param {PointerEvent} event
 * @param {HTMLElement} target
 * @param {Object} geometry
 * @returns {number[]|null}
 */
export function inputCellAt(event, target, geometry) {
  const rect = target.getBoundingClientRect();
  const display = rect.width / geometry.padded[1]; // the CSS may show the canvas smaller (narrow screens)
  const r = Math.floor((event.clientY - rect.top) / display);
  const c = Math.floor((event.clientX - rect.left) / display);
  if (r < 0 || c < 0 || r >= geometry.padded[0] || c >= geometry.padded[1]) return null;
  return [r, c];
}
