// The shape panel: every formula with the current numbers substituted (from the server's core.shapes
// explanation), the parameter and multiply-add counts and the im2col memory.
import { el, fmt } from './common.js';

/**
 * Human text for a byte count.
 * @param {number} bytes
 * @returns {string}
 */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
}

/**
 * Render the worked steps and facts of a POST /api/conv answer.
 * @param {HTMLElement} container
 * @param {Object} conv  the /api/conv answer (steps, facts, padding, conv.shape, pool)
 */
export function renderShapePanel(container, conv) {
  const rows = conv.steps.map((s) =>
    el('tr', {}, [
      el('th', { scope: 'row', text: s.quantity }),
      el('td', { class: 'formula', text: s.formula }),
      el('td', { class: 'formula', text: s.substituted }),
      el('td', { class: 'value', text: String(s.value) }),
    ]),
  );
  const table = el('table', { class: 'steps' }, [
    el('thead', {}, [
      el('tr', {}, [
        el('th', { scope: 'col', text: 'quantity' }),
        el('th', { scope: 'col', text: 'formula' }),
        el('th', { scope: 'col', text: 'with the numbers' }),
        el('th', { scope: 'col', text: '=' }),
      ]),
    ]),
    el('tbody', {}, rows),
  ]);
  const facts = conv.facts || {};
  const p = conv.padding;
  const list = el('ul', { class: 'facts' }, [
    el('li', { text: `input ${conv.input.shape.join(' × ')} → conv ${conv.conv.shape.join(' × ')}` +
      (conv.pool ? ` → pool ${conv.pool.shape.join(' × ')}` : '') }),
    el('li', { text: `padding top ${p.top}, bottom ${p.bottom}, left ${p.left}, right ${p.right}` }),
    el('li', { text: `parameters ${fmt(facts.params)}, multiply-adds ${Number(facts.macs).toLocaleString('en')}` }),
    el('li', {
      text: `im2col ${(facts.im2col_shape || []).join(' × ')} = ${formatBytes(facts.im2col_bytes || 0)}` +
        ` (${facts.duplication}× the input)`,
    }),
  ]);
  container.replaceChildren(list, table);
}

/**
 * Render the warnings (e.g. rows no window reaches) as a list.
 * @param {HTMLElement} list  a <ul>
 * @param {string[]} warnings
 */
export function renderWarnings(list, warnings) {
  list.replaceChildren(...warnings.map((w) => el('li', { text: w })));
}
