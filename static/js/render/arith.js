// The arithmetic of one output pixel, from POST /api/explain: window values × kernel values = products per
// input channel, the per-channel sums, Σ + bias = value. Every number is the server's float32 value.
import { el, fmt } from './common.js';

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
        const td = el('td', { class: padded ? 'pad' : '', title: padded ? 'zero padding' : '' }, [
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
  const terms = ex.channel_sums.length > 1 ? ex.channel_sums.map((v) => fmt(v)).join(' + ') : 'Σ products';
  const total = el('p', { class: 'total' }, [
    el('span', { text: `${terms} = ` }),
    el('strong', { id: 'arith-sum', dataset: { value: String(ex.sum) }, text: String(ex.sum) }),
  ]);
  const withBias = el('p', { class: 'total' }, [
    el('span', { text: `${ex.sum} + bias ${ex.bias} = ` }),
    el('strong', { id: 'arith-pre', dataset: { value: String(ex.pre_activation) }, text: String(ex.pre_activation) }),
  ]);
  const result = el('p', { class: 'total result' }, [
    el('span', { text: activation === 'relu' ? `ReLU(${ex.pre_activation}) = ` : 'value in the map = ' }),
    el('strong', {
      id: 'arith-value',
      dataset: { value: String(ex.value), position: `${f},${y},${x}` },
      text: String(ex.value),
    }),
  ]);
  const where = el('p', {
    class: 'note',
    text:
      `filter ${f}, output (${y}, ${x}) = im2col column ${ex.column} (${y}·OW + ${x}); ` +
      `padded rows ${ex.taps.rows.join(', ')}, columns ${ex.taps.cols.join(', ')}`,
  });
  container.replaceChildren(where, ...blocks, total, withBias, result);
}

/**
 * Show a short message in place of the arithmetic.
 * @param {HTMLElement} container
 * @param {string} message
 */
export function renderArithmeticMessage(container, message) {
  container.replaceChildren(el('p', { class: 'note', text: message }));
}
