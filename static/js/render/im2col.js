// The im2col matrix X_col (C·KH·KW rows × OH·OW columns) as a zoomable, scrollable heat map with row labels
// (c, kh, kw) and column labels (oh, ow). Only the visible part is drawn (a sticky canvas inside a scroller
// sized like the whole matrix), so a 27 × 65,536 matrix scrolls as smoothly as a 9 × 784 one.
import { colourScale, fmt } from './common.js';

export const LABEL_W = 86;
export const LABEL_H = 34;

/**
 * A drawable source for a mode: the server's heat map PNG for 'values', or a grey image of k, i or j.
 * @param {Object} data  POST /api/im2col answer
 * @param {HTMLImageElement|null} heat  decoded `png`
 * @param {string} mode  'values' | 'k' | 'i' | 'j'
 * @returns {{image: CanvasImageSource|null, step: number, numbers: ((r: number, c: number) => number)|null}}
 */
export function matrixSource(data, heat, mode) {
  if (mode === 'values') {
    // a wide matrix's heat map holds every png_column_step-th column only
    return { image: heat, step: data.png_column_step || 1, numbers: data.values ? (r, c) => data.values[r][c] : null };
  }
  if (!data.indices) return { image: null, numbers: null };
  const { rows, cols } = data;
  const get = mode === 'k' ? (r) => data.indices.k[r] : (r, c) => data.indices[mode][r][c];
  let hi = 0;
  for (let r = 0; r < rows; r += 1) for (let c = 0; c < cols; c += 1) hi = Math.max(hi, get(r, c));
  const canvas = document.createElement('canvas');
  canvas.width = cols;
  canvas.height = rows;
  const ctx = canvas.getContext('2d');
  const pixels = ctx.createImageData(cols, rows);
  const colour = colourScale(0, hi || 1);
  for (let r = 0; r < rows; r += 1) {
    for (let c = 0; c < cols; c += 1) {
      const [red, green, blue] = colour(get(r, c));
      const o = (r * cols + c) * 4;
      pixels.data[o] = red * 0.55 + 60;
      pixels.data[o + 1] = green * 0.7 + 40;
      pixels.data[o + 2] = blue * 0.5 + 90;
      pixels.data[o + 3] = 255;
    }
  }
  ctx.putImageData(pixels, 0, 0);
  return { image: canvas, step: 1, numbers: get };
}

/**
 * Size the scroller's spacer for the whole matrix at `zoom` pixels per cell.
 * @param {HTMLElement} spacer
 * @param {Object} data
 * @param {number} zoom
 */
export function sizeMatrix(spacer, data, zoom) {
  spacer.style.width = `${LABEL_W + data.cols * zoom}px`;
  spacer.style.height = `${LABEL_H + data.rows * zoom}px`;
  const scroller = spacer.parentElement;
  const scrollbar = scroller.offsetHeight - scroller.clientHeight;
  scroller.style.height = `${Math.min(360, LABEL_H + data.rows * zoom + Math.max(scrollbar, 16))}px`;
}

/**
 * Draw the visible window of the matrix with its labels and the highlighted column.
 * @param {HTMLElement} scroller  the scrolling element (the canvas sticks to its top-left)
 * @param {HTMLCanvasElement} canvas
 * @param {Object} data  POST /api/im2col answer
 * @param {{image: CanvasImageSource|null, step: number, numbers: Function|null}} source
 * @param {Object} view {zoom, column: number|null, rowGroup: [start, stop] | null}
 */
export function drawMatrixView(scroller, canvas, data, source, view) {
  const zoom = view.zoom;
  const width = Math.min(scroller.clientWidth, LABEL_W + data.cols * zoom);
  const height = Math.min(Math.max(scroller.clientHeight, 60), LABEL_H + data.rows * zoom);
  const ratio = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  const style = getComputedStyle(scroller);
  ctx.fillStyle = style.backgroundColor && style.backgroundColor !== 'rgba(0, 0, 0, 0)' ? style.backgroundColor : '#fff';
  ctx.fillRect(0, 0, width, height);
  const c0 = Math.floor(scroller.scrollLeft / zoom);
  const r0 = Math.floor(scroller.scrollTop / zoom);
  const visibleCols = Math.min(data.cols - c0, Math.ceil((width - LABEL_W) / zoom) + 1);
  const visibleRows = Math.min(data.rows - r0, Math.ceil((height - LABEL_H) / zoom) + 1);
  const dx = LABEL_W - (scroller.scrollLeft - c0 * zoom);
  const dy = LABEL_H - (scroller.scrollTop - r0 * zoom);
  ctx.save();
  ctx.beginPath();
  ctx.rect(LABEL_W, LABEL_H, width - LABEL_W, height - LABEL_H);
  ctx.clip();
  ctx.imageSmoothingEnabled = false;
  if (source.image && visibleCols > 0 && visibleRows > 0) {
    const step = source.step || 1;
    const sw = Math.max(1, Math.min(visibleCols / step, source.image.width - c0 / step));
    ctx.drawImage(source.image, c0 / step, r0, sw, visibleRows, dx, dy, sw * step * zoom, visibleRows * zoom);
  }
  if (source.numbers && zoom >= 22) {
    ctx.font = `${Math.floor(zoom * 0.36)}px system-ui, sans-serif`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    for (let r = 0; r < visibleRows; r += 1) {
      for (let c = 0; c < visibleCols; c += 1) {
        const v = source.numbers(r0 + r, c0 + c);
        ctx.fillStyle = '#000';
        ctx.fillText(fmt(v, 2), dx + c * zoom + zoom / 2 + 0.5, dy + r * zoom + zoom / 2 + 0.5);
        ctx.fillStyle = '#fff';
        ctx.fillText(fmt(v, 2), dx + c * zoom + zoom / 2, dy + r * zoom + zoom / 2);
      }
    }
  }
  if (view.column !== null && view.column !== undefined) {
    const x = dx + (view.column - c0) * zoom;
    ctx.strokeStyle = '#00c8ff';
    ctx.lineWidth = 2;
    ctx.strokeRect(x, LABEL_H, Math.max(zoom, 2), data.rows * zoom);
  }
  if (view.rowGroup) {
    const [a, b] = view.rowGroup;
    ctx.strokeStyle = '#f0a000';
    ctx.lineWidth = 2;
    ctx.strokeRect(LABEL_W, dy + (a - r0) * zoom, width - LABEL_W, (b - a) * zoom);
  }
  ctx.restore();
  // labels
  ctx.fillStyle = style.color || '#000';
  ctx.font = `${Math.round((parseFloat(style.fontSize) || 14) * 0.8)}px system-ui, sans-serif`;
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'right';
  const rowEvery = Math.max(1, Math.ceil((parseFloat(ctx.font) + 1) / zoom));
  ctx.save();
  ctx.beginPath();
  ctx.rect(0, LABEL_H, LABEL_W, height - LABEL_H);
  ctx.clip();
  for (let r = 0; r < visibleRows; r += 1) {
    const row = r0 + r;
    if (row % rowEvery) continue;
    const [c, kh, kw] = data.row_labels[row];
    ctx.fillText(`(${c}, ${kh}, ${kw})`, LABEL_W - 6, dy + r * zoom + zoom / 2);
  }
  ctx.restore();
  ctx.save();
  ctx.beginPath();
  ctx.rect(LABEL_W, 0, width - LABEL_W, LABEL_H);
  ctx.clip();
  ctx.textAlign = 'left';
  const ow = data.out_size[1];
  // one label per colEvery columns: as many as fit without touching, at the current (projector) font size
  const widest = ctx.measureText(`(${data.out_size[0] - 1}, ${ow - 1})`).width;
  const colEvery = Math.max(1, Math.ceil((widest + 8) / zoom));
  for (let c = 0; c < visibleCols; c += 1) {
    const col = c0 + c;
    if (col % colEvery) continue;
    const x = dx + c * zoom;
    ctx.fillText(`(${Math.floor(col / ow)}, ${col % ow})`, x + 1, 10);
    ctx.fillRect(x, LABEL_H - 8, 1, 8);
  }
  ctx.restore();
  ctx.textAlign = 'left';
  ctx.fillText('(c, kh, kw) ↓', 2, LABEL_H - 8);
  ctx.fillText('(oh, ow) →', 2, 10);
}

/**
 * The (row, column) of the matrix under a pointer, or null.
 * @param {PointerEvent} event
 * @param {HTMLCanvasElement} canvas
 * @param {HTMLElement} scroller
 * @param {Object} data
 * @param {number} zoom
 * @returns {number[]|null}
 */
export function matrixCellAt(event, canvas, scroller, data, zoom) {
  const rect = canvas.getBoundingClientRect();
  const x = event.clientX - rect.left - LABEL_W + scroller.scrollLeft;
  const y = event.clientY - rect.top - LABEL_H + scroller.scrollTop;
  const r = Math.floor(y / zoom);
  const c = Math.floor(x / zoom);
  if (r < 0 || c < 0 || r >= data.rows || c >= data.cols) return null;
  return [r, c];
}

/**
 * Scroll so that matrix column `column` is visible.
 * @param {HTMLElement} scroller
 * @param {number} column
 * @param {number} zoom
 */
export function revealColumn(scroller, column, zoom) {
  const x = column * zoom;
  const visible = scroller.clientWidth - LABEL_W;
  if (x < scroller.scrollLeft || x + zoom > scroller.scrollLeft + visible) {
    scroller.scrollLeft = Math.max(0, x - visible / 2);
  }
}
