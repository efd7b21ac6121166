// The filter editor's events: preset menus (a preset brings its own size), bias and weight cells (checked: an
// invalid cell is marked, says why in plain words and is not used), and the "random" buttons.
import { filterWeights, parseWeight, randomWeights } from './kernels.js';

/**
 * Bind the events of the filter editor (#filter-list, rebuilt by render/filters.js: delegated handlers).
 * @param {Document} doc
 * @param {Object} app  from main.js
 */
export function bindFilterEditor(doc, app) {
  const filters = doc.getElementById('filter-list');
  const s = () => app.state;

  /**
   * Mark a cell valid or invalid and update its filter's error line.
   * @param {HTMLInputElement} input
   * @param {string} reason  '' when valid
   */
  function mark(input, reason) {
    const f = input.dataset.f;
    if (reason) {
      input.setAttribute('aria-invalid', 'true');
      input.dataset.error = reason;
    } else {
      input.removeAttribute('aria-invalid');
      delete input.dataset.error;
    }
    const box = filters.querySelector(`fieldset.filter[data-f="${f}"]`);
    const line = box?.querySelector('.cell-error');
    if (!line) return;
    const bad = [...box.querySelectorAll('input[aria-invalid="true"]')];
    line.textContent = bad
      .map((cell) => `${cell.classList.contains('bias') ? 'Bias' : `Row ${cell.dataset.i}, column ${cell.dataset.j}${Number(box.dataset.channels) > 1 ? ` of channel ${cell.dataset.c}` : ''}`}: ${cell.dataset.error}`)
      .join(' ');
    for (const cell of bad) cell.setAttribute('aria-describedby', line.id);
  }

  /** The numbers in filter f's grid in (c, kh, kw) order; an invalid cell keeps the value in use. */
  function collectWeights(f) {
    const state = s();
    const current = filterWeights(state, app.presets, app.channelsPerFilter())[f];
    const inputs = [...filters.querySelectorAll(`input.weight[data-f="${f}"]`)];
    inputs.sort((a, b) => a.dataset.c - b.dataset.c || a.dataset.i - b.dataset.i || a.dataset.j - b.dataset.j);
    return inputs.map((input) => {
      const parsed = parseWeight(input.value);
      return parsed.ok ? parsed.value : current[input.dataset.c][input.dataset.i][input.dataset.j];
    });
  }

  /**
   * Check a weight or bias cell; when valid, use it.
   * @param {HTMLInputElement} input
   * @param {boolean} final  the user has left the cell (change): an unfinished number ("5e", "-") is invalid too
   */
  function check(input, final) {
    const parsed = parseWeight(input.value);
    if (!parsed.ok) {
      if (final || !parsed.unfinished) mark(input, parsed.reason);
      return;
    }
    mark(input, '');
    const f = Number(input.dataset.f);
    const state = s();
    app.markInput();
    if (input.classList.contains('bias')) {
      if (state.b[f] === parsed.value) return;
      const b = state.b.slice();
      b[f] = parsed.value;
      app.set({ b });
      return;
    }
    const k = state.k.slice();
    const w = state.w.slice();
    const weights = collectWeights(f);
    if (k[f] === 'custom' && w[f] && w[f].every((v, i) => Math.fround(v) === Math.fround(weights[i]))) return;
    k[f] = 'custom';
    w[f] = weights;
    app.set({ k, w });
  }

  filters.addEventListener('input', (event) => {
    if (event.target.matches('input.weight, input.bias')) check(event.target, false);
  });
  filters.addEventListener('change', (event) => {
    const target = event.target;
    if (target.matches('input.weight, input.bias')) {
      check(target, true);
      return;
    }
    if (!target.matches('select.preset')) return;
    const f = Number(target.dataset.f);
    app.markInput();
    if (target.value === 'custom') {
      const k = s().k.slice();
      const w = s().w.slice();
      w[f] = collectWeights(f);
      k[f] = 'custom';
      app.set({ k, w });
    } else {
      app.choosePreset(f, target.value);
    }
  });
  filters.addEventListener('click', (event) => {
    const button = event.target.closest('button.random');
    if (!button) return;
    const f = Number(button.dataset.f);
    const state = s();
    const seed = (Date.now() + f * 7919) % 2147483647;
    const k = state.k.slice();
    const w = state.w.slice();
    k[f] = 'custom';
    w[f] = randomWeights(app.channelsPerFilter() * state.kh * state.kw, seed);
    app.markInput();
    app.set({ k, w });
  });
}
