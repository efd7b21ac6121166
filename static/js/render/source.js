// The image pickers: a grid of MNIST digits with their labels and the sample photos.
import { el } from './common.js';

/**
 * Render a page of MNIST digits as buttons (thumbnails from GET /api/images/{id}.png).
 * @param {HTMLElement} grid
 * @param {Object} page  GET /api/mnist answer {total, offset, limit, items: [{id, index, label}]}
 * @param {string} selected  the current image id
 */
export function renderMnistGrid(grid, page, selected) {
  grid.replaceChildren(
    ...page.items.map((item) =>
      el('button', {
        type: 'button',
        class: 'thumb',
        dataset: { image: item.id },
        'aria-pressed': String(item.id === selected),
        'aria-label': `test digit ${item.index}, label ${item.label}`,
      }, [
        el('img', { src: `/api/images/${item.id}.png`, alt: '', width: '28', height: '28', loading: 'lazy' }),
        el('span', { text: String(item.label) }),
      ]),
    ),
  );
  rove(grid);
}

/**
 * Render the sample photos as buttons.
 * @param {HTMLElement} list
 * @param {Object[]} samples  GET /api/samples `samples`
 * @param {string} selected
 */
export function renderSamples(list, samples, selected) {
  list.replaceChildren(
    ...samples.map((s) =>
      el('button', {
        type: 'button',
        class: 'thumb photo',
        dataset: { image: s.id },
        'aria-pressed': String(s.id === selected),
        title: `${s.description || s.name} — ${s.credit || ''} (${s.licence || ''})`,
      }, [
        el('img', { src: `/api/images/${s.id}.png`, alt: '', width: '64', height: '64', loading: 'lazy' }),
        el('span', { text: `${s.name} ${s.width}×${s.height}${s.channels === 3 ? ' RGB' : ''}` }),
      ]),
    ),
  );
  rove(list);
}

/**
 * Mark the selected thumbnail in a grid.
 * @param {HTMLElement} grid
 * @param {string} selected
 */
export function markSelected(grid, selected) {
  for (const button of grid.querySelectorAll('button[data-image]')) {
    button.setAttribute('aria-pressed', String(button.dataset.image === selected));
  }
  rove(grid);
}

/**
 * Roving tabindex: the grid is one Tab stop, on `active` (default: the selected thumbnail, else the first).
 * @param {HTMLElement} grid
 * @param {HTMLElement} [active]
 */
export function rove(grid, active) {
  const buttons = [...grid.querySelectorAll('button[data-image]')];
  const stop = active || buttons.find((b) => b.getAttribute('aria-pressed') === 'true') || buttons[0];
  for (const button of buttons) button.tabIndex = button === stop ? 0 : -1;
}

/**
 * Move the focus inside a thumbnail grid for an arrow key, Home or End (rows as laid out by the CSS grid).
 * @param {HTMLElement} grid
 * @param {HTMLElement|null} from  the focused thumbnail
 * @param {string} key  KeyboardEvent.key
 * @returns {boolean} whether the key was handled
 */
export function moveInGrid(grid, from, key) {
  const buttons = [...grid.querySelectorAll('button[data-image]')];
  const i = buttons.indexOf(from);
  if (i < 0) return false;
  const columns = Math.max(1, getComputedStyle(grid).gridTemplateColumns.split(' ').filter(Boolean).length);
  const to = {
    ArrowRight: i + 1, ArrowLeft: i - 1, ArrowDown: i + columns, ArrowUp: i - columns, Home: 0, End: buttons.length - 1,
  }[key];
  if (to === undefined) return false;
  const next = buttons[Math.max(0, Math.min(buttons.length - 1, to))];
  rove(grid, next);
  next.focus();
  return true;
}
