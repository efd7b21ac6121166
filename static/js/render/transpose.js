// The transposed convolution as col2im of a GEMM: columns = Wᵀ · X (each input value times the whole kernel),
// then col2im adds every column back into the (larger) output. From POST /api/transpose.
import { drawMatrix, el } from './common.js';

/**
 * A labelled matrix figure.
 * @returns {HTMLElement}
 */
function matrixFigure(title, values, cell = 26) {
  const canvas = el('canvas', { 'aria-label': title });
  drawMatrix(canvas, values, { cell });
  return el('figure', { class: 'small-map' }, [el('figcaption', { text: title }), canvas]);
}

/**
 * Render a POST /api/transpose answer.
 * @param {HTMLElement} container
 * @param {Object} data
 * @param {Object} request  the body sent (stride, padding, weight)
 */
export function renderTranspose(container, data, request) {
  const input = squeeze(data.input.values);
  const output = squeeze(data.output.values);
  const columns = squeeze(data.columns.values);
  const steps = el('ul', { class: 'facts' }, data.steps.map((s) => el('li', { text: `${s.quantity} = ${s.formula} = ${s.substituted} = ${s.value}` })));
  container.replaceChildren(
    el('p', {
      class: 'note',
      text: `input x (${input.length}×${input[0].length}) with kernel w (${request.weight.length}×${request.weight[0].length}), ` +
        `stride ${request.stride.join('×')}, padding ${request.padding.join('×')}: each column of Wᵀ·X is one input ` +
        'value times the kernel; col2im adds the columns into the output.',
    }),
    el('div', { class: 'figure-row' }, [
      matrixFigure('input x', input),
      matrixFigure('kernel w', request.weight),
      matrixFigure(`columns Wᵀ·X ${data.columns.shape.join('×')}`, columns, 18),
      matrixFigure(`output ${data.output.shape.join('×')} = col2im(columns)`, output),
    ]),
    steps,
  );
}

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
