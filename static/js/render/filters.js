// The filter editor: per filter a preset menu, a bias, a "random" button and an editable numeric grid per
// input channel. Rebuilt only when its structure changes (so typing keeps focus); values are refreshed in place.
import { el } from './common.js';
import { formatNumber } from '../state.js';

/**
 * Structure key: the editor is rebuilt when this changes.
 * @returns {string}
 */
function structureKey(count, cg, kh, kw, groups, names) {
  return `${count}|${cg}|${kh}|${kw}|${groups}|${names.join(",")}`;
}

/**
 * Render (or refresh) the filter editor.
 * @param {HTMLElement} container
 * @param {Object} state  page state (k, b)
 * @param {number[][][][]} weights  (F, C/groups, KH, KW) as sent to the API
 * @param {string[]} presetNames
 * @param {Map<string, Object>} presets  name → {description}
 * @param {number} groups
 */
export function renderFilters(container, state, weights, presetNames, presets, groups) {
  const count = weights.length;
  const cg = weights[0].length;
  const key = structureKey(count, cg, state.kh, state.kw, groups, presetNames);
  if (container.dataset.key !== key) {
    container.dataset.key = key;
    container.replaceChildren(...weights.map((filter, f) => buildFilter(f, filter, presetNames, groups, cg, count)));
  }
  weights.forEach((filter, f) => {
    const box = container.children[f];
    const select = box.querySelector('select.preset');
    if (select.value !== state.k[f]) select.value = state.k[f];
    const preset = presets.get(state.k[f]);
    let description = preset?.description ?? 'your own numbers';
    if (preset && preset.weights) {
      const [ph, pw] = [preset.weights.length, preset.weights[0].length];
      if (ph > state.kh || pw > state.kw) {
        description += ` (a ${ph} × ${pw} kernel: only its centre ${state.kh} × ${state.kw} is used here)`;
      } else if (ph < state.kh || pw < state.kw) {
        description += ` (a ${ph} × ${pw} kernel, centred in ${state.kh} × ${state.kw} with zeros around)`;
      }
    }
    box.querySelector('.preset-help').textContent = description;
    // an invalid cell keeps what was typed (marked, with its reason) until it is corrected
    const bias = box.querySelector('input.bias');
    const keep = (input) => document.activeElement === input || input.getAttribute('aria-invalid') === 'true';
    if (!keep(bias) && Number(bias.value) !== state.b[f]) bias.value = formatNumber(state.b[f]);
    box.querySelectorAll('input.weight').forEach((input) => {
      const { c, i, j } = input.dataset;
      const value = filter[c][i][j];
      if (!keep(input) && Number(input.value) !== value) input.value = formatNumber(value);
    });
  });
}

/**
 * One filter's controls.
 * @returns {HTMLElement}
 */
function buildFilter(f, filter, presetNames, groups, cg, count) {
  const selectId = `preset-${f}`;
  const biasId = `bias-${f}`;
  const options = [...presetNames, 'custom'].map((name) => el('option', { value: name, text: name }));
  const grids = filter.map((channel, c) =>
    el(
      'div',
      { class: 'weight-grid', role: 'group', 'aria-label': `filter ${f}, channel ${c} weights` },
      [
        el('span', { class: 'grid-title', text: `input channel ${Math.floor(f / (count / groups)) * cg + c}` }),
        el(
          'div',
          { class: 'grid', dataset: { cols: String(channel[0].length) } },
          channel.flatMap((row, i) =>
            row.map((value, j) =>
              el('input', {
                type: 'text',
                inputmode: 'decimal',
                autocomplete: 'off',
                spellcheck: 'false',
                class: 'weight',
                value: formatNumber(value),
                dataset: { f: String(f), c: String(c), i: String(i), j: String(j) },
                'aria-label': `filter ${f} channel ${c} row ${i} column ${j}`,
              }),
            ),
          ),
        ),
      ],
    ),
  );
  return el('fieldset', { class: 'filter', dataset: { f: String(f), channels: String(cg) } }, [
    el('legend', { text: `Filter ${f}` }),
    el('div', { class: 'row' }, [
      el('label', { for: selectId, text: 'Preset' }),
      el('select', { id: selectId, class: 'preset', dataset: { f: String(f) } }, options),
      el('button', { type: 'button', class: 'random', dataset: { f: String(f) }, text: 'Random' }),
    ]),
    el('small', { class: 'help preset-help' }),
    el('div', { class: 'row' }, [
      el('label', { for: biasId, text: 'Bias' }),
      el('input', {
        id: biasId, type: 'text', inputmode: 'decimal', autocomplete: 'off', spellcheck: 'false', class: 'bias',
        dataset: { f: String(f) }, value: '0',
      }),
    ]),
    ...grids,
    el('small', { class: 'cell-error', id: `filter-${f}-error`, role: 'alert' }),
  ]);
}
