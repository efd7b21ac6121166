// The transposed convolution as col2im of a GEMM, from POST /api/transpose (which uses core's col2im, the
// same one the backward pass uses for grad_x):
//
//   INPUT x (H × W)  →  columns = Wᵀ·X (KH·KW × H·W): column j is input value x_j times the whole kernel
//                    →  col2im adds column j's KH × KW patch into the OUTPUT y at (r·s, c·s)  →  OUTPUT y (larger)
//
// One input cell is selected (hover, click or arrow keys on the input): its column and the output cells it
// adds into are outlined, so the "each input spreads a kernel-sized stamp" picture is visible.
import { drawMatrix, el, fmt } from './common.js';

/**
 * Drop leading length-1 axes until two remain.
 * @param {*} values nested arrays
 * @returns {number[][]}
 */
function squeeze(values) {
  let v = values;
  while (Array.isArray(v) && Array.isArray(v[0]) && Array.isArray(v[0][0])) v = v[0];
  return v;
}

/**
 * The output cells input cell (r, c) adds into: (r·sh + i·dh − ph, c·sw + j·dw − pw) for every tap (i, j).
 * @param {number[]} cell  [r, c] in the input
 * @param {Object} request  the /api/transpose body (weight KH×KW, stride, dilation, padding)
 * @returns {number[][]} [[y, x], ...] (may fall outside the output when padding crops it)
 */
export function footprint(cell, request) {
  const [r, c] = cell;
  const kh = request.weight.length;
  const kw = request.weight[0].length;
  const [sh, sw] = request.stride;
  const [dh, dw] = request.dilation;
  const [ph, pw] = request.padding;
  const cells = [];
  for (let i = 0; i < kh; i += 1) for (let j = 0; j < kw; j += 1) cells.push([r * sh + i * dh - ph, c * sw + j * dw - pw]);
  return cells;
}

/**
 * A labelled matrix figure (role in bold above, details below).
 * @returns {HTMLElement}
 */
function matrixFigure(id, role, detail, values, cell, options = {}) {
  const canvas = el('canvas', {
    id,
    'aria-label': `${role}: ${detail}`,
    tabindex: options.focusable ? '0' : null,
    dataset: { values: JSON.stringify(values) },
  });
  drawMatrix(canvas, values, { cell, ...options.draw });
  return el('figure', { class: `small-map tr-figure${options.className ? ` ${options.className}` : ''}` }, [
    el('figcaption', { class: 'tr-role', text: role }),
    canvas,
    el('figcaption', { text: detail }),
  ]);
}

/**
 * Render a POST /api/transpose answer.
 * @param {HTMLElement} container
 * @param {Object} data  the answer {input, output, steps, columns}
 * @param {Object} request  the body sent (x, weight, stride, padding, dilation)
 * @param {Object} context {filter, position: [y, x] of the patch's top-left in the feature map, cell: [r, c]}
 */
export function renderTranspose(container, data, request, context) {
  const input = squeeze(data.input.values);
  const output = squeeze(data.output.values);
  const columns = squeeze(data.columns.values);
  const [h, w] = [input.length, input[0].length];
  const [kh, kw] = [request.weight.length, request.weight[0].length];
  const [oh, ow] = [output.length, output[0].length];
  const cell = context.cell && context.cell[0] < h && context.cell[1] < w ? context.cell : [Math.floor(h / 2), Math.floor(w / 2)];
  const column = cell[0] * w + cell[1];
  const stamp = footprint(cell, request);
  const big = Math.max(oh, ow) > 9 ? 22 : 30;
  const colCell = Math.max(12, Math.min(24, Math.floor(300 / Math.max(columns[0].length, 1))));
  const arrow = (text) => el('span', { class: 'tr-arrow', text });
  const [fy, fx] = context.position;
  container.replaceChildren(
    el('p', {
      class: 'note',
      text:
        'The transposed convolution goes the other way: a small input becomes a larger output. Here the INPUT is ' +
        (context.fromMap
          ? `the ${h}×${w} patch of feature map ${context.filter} at rows ${fy}–${fy + h - 1}, columns ${fx}–${fx + w - 1} (rounded to 2 decimals)`
          : `a ${h}×${w} grid of ones (this feature map is too large for its values to be sent)`) +
        `, with filter ${context.filter}'s ${kh}×${kw} kernel${context.perFilter > 1 ? ' (its input-channel-0 slice)' : ''}, stride ${request.stride.join('×')}, dilation ` +
        `${request.dilation.join('×')}. Select an input cell (hover, click, or focus it and use the arrow keys) to see where it goes.`,
    }),
    el('div', { class: 'figure-row tr-flow' }, [
      matrixFigure('tr-input', 'INPUT x', `${h}×${w}; selected x[${cell[0]}, ${cell[1]}] = ${fmt(input[cell[0]][cell[1]])}`,
        input, big, { focusable: true, className: 'tr-in', draw: { highlightCells: [cell], cellColour: '#f0a000' } }),
      arrow('×'),
      matrixFigure('tr-kernel', 'kernel w', `${kh}×${kw}`, request.weight, big),
      arrow('→'),
      matrixFigure('tr-columns', 'columns = Wᵀ·X', `${columns.length}×${columns[0].length}: column ${column} = ` +
        `x[${cell[0]}, ${cell[1]}] · w`, columns, colCell, { draw: { highlightCol: column } }),
      arrow('col2im →'),
      matrixFigure('tr-output', 'OUTPUT y', `${oh}×${ow} = col2im(columns); outlined: the ${kh * kw} cells x[${cell[0]}, ` +
        `${cell[1]}] · w is added into`, output, big, { className: 'tr-out', draw: { highlightCells: stamp } }),
    ]),
    el('ul', { class: 'facts' }, data.steps.map((s) => el('li', { text: `${s.quantity} = ${s.formula} = ${s.substituted} = ${s.value}` }))),
    el('p', {
      class: 'note',
      text: 'col2im is the same function that builds grad_x in the backward pass: the transposed convolution of ' +
        'the upstream gradient with the kernel is the gradient of the convolution with respect to its input.',
    }),
  );
  container.dataset.cell = `${cell[0]},${cell[1]}`;
}

/**
 * The input cell under a pointer on the transpose input canvas, or null.
 * @param {PointerEvent} event
 * @param {HTMLCanvasElement} canvas
 * @param {number} rows
 * @param {number} cols
 * @returns {number[]|null}
 */
export function transposeCellAt(event, canvas, rows, cols) {
  const rect = canvas.getBoundingClientRect();
  const r = Math.floor(((event.clientY - rect.top) / rect.height) * rows);
  const c = Math.floor(((event.clientX - rect.left) / rect.width) * cols);
  return r >= 0 && c >= 0 && r < rows && c < cols ? [r, c] : null;
}
