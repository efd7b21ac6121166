// The arithmetic of one output pixel, from POST /api/explain: window values × kernel values = products per
// input channel, the per-channel sums, Σ + bias = value. Every number is the server's float32 value.
import { el, fmt } from './common.js';

/**
 * The number of significant digits at which the sum shown (+ bias) and the map's value read the same.
 * The map's matrix multiply adds the products in another order than the window's, so in float32 the two
 * can differ in the last bit; below 9 digits they normally agree.
 * @param {number} sum   Σ products, in the window's order (float32)
 * @param {number} bias
 * @param {number} pre   the map's value before the activation (float32)
 * @returns {number} 1..9
 */
export function sharedDigits(sum, bias, pre) {
  const mine = Math.fround(sum + bias);
  for (let p = 9; p > 1; p -= 1) if (mine.toPrecision(p) === Math.fround(pre).toPrecision(p)) return p;
  return 1;
}

/**
 * A number to p significant digits without trailing zeros ("0.909804", "70.0157", "-2").
 * @param {number} v
 * @param {number} p
 * @returns {string}
 */
export function digits(v, p) {
  if (Number.isInteger(v)) return String(v);
  const text = String(Number(v.toPrecision(p)));
  return text === '-0' ? '0' : text;
}

/**
 * Render the explanation into `container` (replacing its content).
 * @param {HTMLElement} container
 * @param {Object} ex  POST /api/explain answer
 * @param {string} activation 'none' | 'relu'
 */
export function renderArithmetic(container, ex, activation) {
  const [f, y, x] = ex.position;
  const blocks = [];
  ex.window.forEach((channel, c) => {
    const table = el('table', { class: 'taps' }, [
      el('caption', { text: `input channel ${ex.channels[c]} · window × kernel = product` }),
    ]);
    const body = el('tbody');
    channel.forEach((row, i) => {
      const tr = el('tr');
      row.forEach((value, j) => {
        const padded = ex.taps.in_padding[i][j];
        const exact = `${value} × ${ex.kernel[c][i][j]} = ${ex.products[c][i][j]}`;
        const td = el('td', { class: padded ? 'pad' : '', title: padded ? `zero padding: ${exact}` : exact }, [
          el('span', { class: 'w', text: fmt(value) }),
          el('span', { class: 'op', text: '×' }),
          el('span', { class: 'k', text: fmt(ex.kernel[c][i][j]) }),
          el('span', { class: 'eq', text: '=' }),
          el('span', { class: 'p', text: fmt(ex.products[c][i][j]) }),
        ]);
        tr.append(td);
      });
      body.append(tr);
    });
    table.append(body);
    blocks.push(table);
    blocks.push(el('p', { class: 'channel-sum', text: `Σ channel ${ex.channels[c]} = ${ex.channel_sums[c]}` }));
  });
  // every number on these lines to the same precision, so that the sum reads digit for digit as the map value
  const p = sharedDigits(ex.sum, ex.bias, ex.pre_activation);
  const show = (v) => (p === 9 ? String(v) : digits(v, p)); // 9: they agree in full: the exact texts
  const terms = ex.channel_sums.length > 1 ? ex.channel_sums.map(show).join(' + ') : 'Σ products';
  const total = el('p', { class: 'total' }, [
    el('span', { text: `${terms} = ` }),
    el('strong', { id: 'arith-sum', dataset: { value: String(ex.sum) }, title: String(ex.sum), text: show(ex.sum) }),
  ]);
  const withBias = el('p', { class: 'total' }, [
    el('span', { text: `${show(ex.sum)} + bias ${ex.bias} = ` }),
    el('strong', {
      id: 'arith-pre', dataset: { value: String(ex.pre_activation) }, title: String(ex.pre_activation), text: show(ex.pre_activation),
    }),
  ]);
  const result = el('p', { class: 'total result' }, [
    el('span', { text: activation === 'relu' ? `ReLU(${show(ex.pre_activation)}) = ` : 'value in the map = ' }),
    el('strong', {
      id: 'arith-value',
      dataset: { value: String(ex.value), position: `${f},${y},${x}` },
      title: String(ex.value),
      text: show(ex.value),
    }),
  ]);
  const blocksAfter = [];
  if (Math.fround(ex.sum + ex.bias) !== Math.fround(ex.pre_activation)) {
    blocksAfter.push(el('p', {
      class: 'note sum-note',
      id: 'arith-order',
      text:
        `Shown to ${p} significant digits. In full float32 this sum is ${ex.sum} and the map holds ` +
        `${ex.pre_activation}${ex.bias ? ` − bias ${ex.bias}` : ''}: the map adds the same products in the ` +
        'matrix multiply\'s order, and float32 rounds each addition, so the last digit can differ.',
    }));
  }
  const where = el('p', {
    class: 'note',
    text:
      `filter ${f}, output (${y}, ${x}) = im2col column ${ex.column} (${y}·OW + ${x}); ` +
      `padded rows ${ex.taps.rows.join(', ')}, columns ${ex.taps.cols.join(', ')}`,
  });
  container.replaceChildren(where, ...blocks, total, withBias, result, ...blocksAfter);
}

/**
 * Show a short message in place of the arithmetic.
 * @param {HTMLElement} container
 * @param {string} message
 */
export function renderArithmeticMessage(container, message) {
  container.replaceChildren(el('p', { class: 'note', text: message }));
}
