// The GEMM view laid out as the multiplication is written on a board:
//
//              X_col (C·KH·KW × OH·OW)
//   W_col      Y = W_col · X_col (F × OH·OW)  → reshape to (F, OH, OW)
//
// W_col's rows line up with Y's rows and X_col's columns with Y's columns; the selected filter's row and the
// selected output's column are highlighted in every factor.
import { drawMatrix, el, sizeCanvas } from './common.js';

/**
 * Build the GEMM figure once (canvases reused afterwards).
 * @param {HTMLElement} container
 * @returns {Object} the canvases and captions by role
 */
function ensureLayout(container) {
  if (!container.dataset.built) {
    container.replaceChildren(
      el('div', { class: 'gemm-grid' }, [
        el('p', { class: 'gemm-corner note' }),
        el('figure', { class: 'gemm-x' }, [
          el('figcaption', { class: 'note' }),
          el('canvas', { id: 'gemm-x', 'aria-label': 'X_col, the im2col matrix' }),
        ]),
        el('figure', { class: 'gemm-w' }, [
          el('canvas', { id: 'gemm-w', 'aria-label': 'W_col, one row per filter' }),
          el('figcaption', { class: 'note' }),
        ]),
        el('figure', { class: 'gemm-y' }, [
          el('canvas', { id: 'gemm-y', 'aria-label': 'Y = W_col · X_col' }),
          el('figcaption', { class: 'note' }),
        ]),
      ]),
      el('p', { class: 'gemm-note note' }),
    );
    container.dataset.built = '1';
  }
  return {
    w: container.querySelector('#gemm-w'),
    x: container.querySelector('#gemm-x'),
    y: container.querySelector('#gemm-y'),
    corner: container.querySelector('.gemm-corner'),
    xCaption: container.querySelector('.gemm-x figcaption'),
    wCaption: container.querySelector('.gemm-w figcaption'),
    yCaption: container.querySelector('.gemm-y figcaption'),
    note: container.querySelector('.gemm-note'),
  };
}

/**
 * Draw a heat map image stretched to width × height CSS pixels, with a highlighted row and column.
 * @param {HTMLCanvasElement} canvas
 * @param {CanvasImageSource} image  natural size cols × rows
 * @param {number} rows
 * @param {number} cols
 * @param {number} width   CSS pixels
 * @param {number} rowHeight  CSS pixels per row
 * @param {Object} marks {row, col}
 */
function drawStretched(canvas, image, rows, cols, width, rowHeight, marks) {
  const height = rows * rowHeight;
  const cw = width / cols;
  const ratio = window.devicePixelRatio || 1;
  sizeCanvas(canvas, Math.round(width * ratio), Math.round(height * ratio), width, height);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.imageSmoothingEnabled = cw < 1;
  ctx.drawImage(image, 0, 0, width, height);
  ctx.lineWidth = 2;
  if (marks.row !== null && marks.row !== undefined) {
    ctx.strokeStyle = '#f0a000';
    ctx.strokeRect(1, marks.row * rowHeight + 1, width - 2, rowHeight - 2);
  }
  if (marks.col !== null && marks.col !== undefined) {
    ctx.strokeStyle = '#00c8ff';
    ctx.strokeRect(marks.col * cw - 1.5, 1, Math.max(cw, 2) + 3, height - 2);
  }
}

/**
 * Render W_col · X_col = Y with highlights.
 * @param {HTMLElement} container
 * @param {Object} data  POST /api/im2col answer (w_col, product, rows, cols, groups, out_size)
 * @param {HTMLImageElement} xImage  decoded im2col heat map (cols × rows)
 * @param {HTMLImageElement} yImage  decoded product heat map (cols × F)
 * @param {Object} marks {filter, column}
 */
export function renderGemm(container, data, xImage, yImage, marks) {
  const parts = ensureLayout(container);
  const f = data.w_col.length;
  const r = data.w_col[0].length;
  // one cell size for W_col's cells, X_col's rows and Y's rows, so that the factors line up
  const cell = Math.max(2, Math.min(28, Math.floor(260 / Math.max(r, f * 2))));
  drawMatrix(parts.w, data.w_col, { cell, highlightRow: marks.filter, numbers: cell >= 22 });
  const available = Math.max(200, container.clientWidth - r * cell - 40);
  const width = Math.min(available, Math.max(120, data.cols * 12));
  drawStretched(parts.x, xImage, data.rows, data.cols, width, data.rows === r ? cell : (cell * r) / data.rows, { col: marks.column });
  drawStretched(parts.y, yImage, f, data.cols, width, cell, { row: marks.filter, col: marks.column });
  const [oh, ow] = data.out_size;
  parts.corner.textContent = 'W_col · X_col = Y';
  parts.xCaption.textContent = `X_col: ${data.rows} × ${data.cols} (im2col)`;
  parts.wCaption.textContent = `W_col: ${f} × ${r}${data.groups > 1 ? ` (${data.groups} groups: each filter reads its group's rows)` : ''}`;
  parts.yCaption.textContent = `Y: ${f} × ${data.cols} → reshape to (${f}, ${oh}, ${ow}) = the feature maps`;
  const column = marks.column ?? 0;
  parts.note.textContent =
    `Y[${marks.filter}, ${column}] = row ${marks.filter} of W_col · column ${column} of X_col ` +
    `= output (${Math.floor(column / ow)}, ${column % ow}) of filter ${marks.filter}. ` +
    `X_col holds the ${data.input_bytes / 4} input values ${data.duplication}× over ` +
    `(${(data.im2col_bytes / 1024).toFixed(1)} KiB in float32).`;
}
