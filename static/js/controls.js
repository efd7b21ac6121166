// The one place that binds events: every control, pointer and keyboard handler calls into the app
// (main.js), which changes the state and redraws. Handlers are attached by delegation where lists change.
import { bindFilterEditor } from './filter_editor.js';
import { refitFlat } from './kernels.js';
import { bindSelection } from './selection.js';
import { transposeCellAt } from './render/transpose.js';
import { markSelected, moveInGrid, renderMnistGrid, renderSamples } from './render/source.js';
import { MAX_FILTERS, channelCount, isActivation } from './state.js';

const MNIST_PAGE = 30;

/**
 * Bind every event of the page.
 * @param {Document} doc
 * @param {Object} app  from main.js
 */
export function bindControls(doc, app) {
  const $ = (id) => doc.getElementById(id);
  const s = () => app.state;

  // ---- sliders: one handler for every <input type=range data-key>
  for (const input of doc.querySelectorAll('input[type=range][data-key]')) {
    input.addEventListener('input', () => {
      const key = input.dataset.key;
      const value = Number(input.value);
      $(`${key}-out`).textContent = input.value;
      if (key === 'speed') {
        app.set({ speed: value });
        if (app.playTimer) app.togglePlay(true);
        return;
      }
      if (key === 'zoom') {
        app.set({ zoom: value });
        return;
      }
      app.markInput();
      if (key === 'filters') setFilterCount(value);
      else if (key === 'kh' || key === 'kw') resizeKernels({ [key]: value });
      else app.set({ [key]: value });
    });
  }

  // ---- symmetric sliders (data-sym="sh sw"): one value for every key; per-axis/per-side ones behind #asym
  for (const input of doc.querySelectorAll('input[type=range][data-sym]')) {
    input.addEventListener('input', () => {
      const value = Number(input.value);
      $(`${input.id}-out`).textContent = input.value;
      app.markInput();
      app.set(Object.fromEntries(input.dataset.sym.split(' ').map((key) => [key, value])));
    });
  }
  $('asym').addEventListener('change', () => {
    if ($('asym').checked) return;
    // back to one value each: columns take the rows' stride, every side the top padding
    const { sh, sw, pt, pb, pl, pr } = s();
    if (sh === sw && pt === pb && pt === pl && pt === pr) return;
    app.markInput();
    app.set({ sw: sh, pb: pt, pl: pt, pr: pt });
  });

  /** Change the number of filters: new filters take the next preset; groups may fall back to 1. */
  function setFilterCount(count) {
    const state = s();
    const k = state.k.slice(0, count);
    const order = ['sobel_x', 'sobel_y', 'laplacian_4', 'gaussian_3', 'sharpen', 'emboss', 'prewitt_x', 'outline'];
    while (k.length < Math.min(count, MAX_FILTERS)) k.push(order[k.length % order.length]);
    app.set({ k, b: state.b.slice(0, count), w: state.w.slice(0, count) });
  }

  /** Kernel size change: custom weights are re-centred into the new size rather than dropped. */
  function resizeKernels(changes) {
    const state = s();
    const cg = channelCount(state) / state.groups;
    const kh = changes.kh ?? state.kh;
    const kw = changes.kw ?? state.kw;
    const w = state.w.map((flat) => (flat ? refitFlat(flat, cg, state.kh, state.kw, cg, kh, kw) : null));
    app.set({ ...changes, w });
  }

  /** Channel-count change (gray/RGB, groups): custom weights are copied to the new channel count. */
  function changeChannels(changes) {
    const state = s();
    const before = channelCount(state) / state.groups;
    const color = changes.color ?? state.color;
    const groups = changes.groups ?? (color === 'gray' && !isActivation(state.image) ? 1 : state.groups);
    const after = channelCount({ ...state, color }) / groups;
    const w = state.w.map((flat) => (flat ? refitFlat(flat, before, state.kh, state.kw, after, state.kh, state.kw) : null));
    app.set({ ...changes, groups, w });
  }

  // ---- selects and radios
  const selects = { pad: String, pm: String, act: String, pool: String, target: String };
  for (const [id, cast] of Object.entries(selects)) {
    $(id).addEventListener('change', () => {
      app.markInput();
      app.set({ [id]: cast($(id).value) });
    });
  }
  $('groups').addEventListener('change', () => {
    app.markInput();
    changeChannels({ groups: Number($('groups').value) });
  });
  $('side').addEventListener('change', () => {
    app.markInput();
    app.set({ side: Number($('side').value) });
  });
  for (const radio of doc.querySelectorAll('input[type=radio]')) {
    radio.addEventListener('change', () => {
      if (!radio.checked) return;
      if (radio.name === 'color') {
        app.markInput();
        changeChannels({ color: radio.value });
      } else {
        app.set({ [radio.name]: radio.value });
      }
    });
  }

  // ---- filter editor (filter_editor.js: presets bring their size, invalid cells are explained)
  bindFilterEditor(doc, app);

  // ---- image sources
  const mnist = { offset: 0, total: 10000 };
  const labelQuery = () => ($('mnist-label').value === '' ? '' : `label=${$('mnist-label').value}&`);
  async function loadMnistPage() {
    const page = await app.api.get(`/api/mnist?${labelQuery()}offset=${mnist.offset}&limit=${MNIST_PAGE}`);
    mnist.total = page.total;
    renderMnistGrid($('mnist-grid'), page, s().image);
    $('mnist-page').textContent = `${page.offset + 1}–${Math.min(page.total, page.offset + page.items.length)} of ${page.total}`;
  }
  $('mnist-label').addEventListener('change', () => {
    mnist.offset = 0;
    loadMnistPage();
  });
  $('mnist-prev').addEventListener('click', () => {
    mnist.offset = Math.max(0, mnist.offset - MNIST_PAGE);
    loadMnistPage();
  });
  $('mnist-next').addEventListener('click', () => {
    if (mnist.offset + MNIST_PAGE < mnist.total) mnist.offset += MNIST_PAGE;
    loadMnistPage();
  });
  $('mnist-random').addEventListener('click', async () => {
    const offset = Math.floor(Math.random() * mnist.total);
    const page = await app.api.get(`/api/mnist?${labelQuery()}offset=${offset}&limit=1`);
    if (page.items.length) {
      app.markInput();
      app.chooseImage(page.items[0].id);
    }
  });
  for (const grid of [$('mnist-grid'), $('sample-list')]) {
    // one Tab stop: the arrow keys (Home, End) move between the thumbnails, Enter or Space opens one
    grid.addEventListener('keydown', (event) => {
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      if (moveInGrid(grid, event.target.closest('button[data-image]'), event.key)) event.preventDefault();
    });
    grid.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-image]');
      if (!button) return;
      app.markInput();
      app.chooseImage(button.dataset.image);
      markSelected(grid, button.dataset.image);
    });
  }
  let samplesLoaded = false;
  for (const tab of doc.querySelectorAll('.source-tab')) {
    tab.addEventListener('click', async () => {
      for (const other of doc.querySelectorAll('.source-tab')) {
        other.setAttribute('aria-pressed', String(other === tab));
        $(`pane-${other.dataset.source}`).hidden = other !== tab;
      }
      if (tab.dataset.source === 'samples' && !samplesLoaded) {
        samplesLoaded = true;
        const answer = await app.api.get('/api/samples');
        renderSamples($('sample-list'), answer.samples, s().image);
      }
    });
  }
  /**
   * Show the MNIST page holding test digit `id` and mark it (e.g. after opening a learned filter).
   * @param {string} id
   */
  app.revealImage = async (id) => {
    const match = /^mnist:(\d+)$/.exec(id);
    if (!match) return;
    doc.querySelector('.source-tab[data-source=mnist]').click();
    $('mnist-label').value = '';
    mnist.offset = Math.floor(Number(match[1]) / MNIST_PAGE) * MNIST_PAGE;
    await loadMnistPage();
  };
  loadMnistPage().catch(() => {});
  const image = s().image;
  const pane = image.startsWith('sample:') ? 'samples' : image.startsWith('mnist:') ? 'mnist' : 'upload';
  if (pane !== 'mnist') doc.querySelector(`.source-tab[data-source=${pane}]`).click();

  $('file').addEventListener('change', () => {
    const file = $('file').files[0];
    if (file) app.upload(file);
  });
  doc.addEventListener('dragover', (event) => {
    if ([...(event.dataTransfer?.types || [])].includes('Files')) event.preventDefault();
  });
  doc.addEventListener('drop', (event) => {
    const file = event.dataTransfer?.files?.[0];
    if (!file) return;
    event.preventDefault();
    app.upload(file);
  });
  doc.addEventListener('paste', (event) => {
    const item = [...(event.clipboardData?.items || [])].find((i) => i.type.startsWith('image/'));
    if (!item) return;
    event.preventDefault();
    app.upload(item.getAsFile());
  });

  // ---- selecting on the views (selection.js: hover previews, click/tap pins, arrow keys, Esc)
  bindSelection(doc, app);
  window.addEventListener('resize', () => app.drawIm2col());

  // ---- transposed convolution: select an input cell to outline its column and its stamp in the output
  const transpose = $('transpose');
  const selectTransposeCell = (event) => {
    const canvas = event.target.closest('#tr-input');
    const view = app.transposeView;
    if (!canvas || !view) return;
    const rows = view.body.x.length;
    const cols = view.body.x[0].length;
    const cell = transposeCellAt(event, canvas, rows, cols);
    const current = transpose.dataset.cell;
    if (cell && current !== cell.join()) {
      app.drawTranspose(cell);
      if (event.type === 'click') $('tr-input').focus();
    }
  };
  transpose.addEventListener('pointermove', selectTransposeCell);
  transpose.addEventListener('click', selectTransposeCell);
  transpose.addEventListener('keydown', (event) => {
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const move = moves[event.key];
    const view = app.transposeView;
    if (!move || !view || event.target.id !== 'tr-input') return;
    event.preventDefault();
    const [r, c] = (transpose.dataset.cell || '0,0').split(',').map(Number);
    const rows = view.body.x.length;
    const cols = view.body.x[0].length;
    app.drawTranspose([Math.max(0, Math.min(rows - 1, r + move[0])), Math.max(0, Math.min(cols - 1, c + move[1]))]);
    $('tr-input').focus();
  });

  // ---- step-through
  $('play').addEventListener('click', () => app.togglePlay());
  $('step').addEventListener('click', () => {
    app.togglePlay(false);
    app.step();
  });

  // ---- header: tabs, projector, share
  const tabs = [...doc.querySelectorAll('[role=tab]')];
  for (const tab of tabs) {
    tab.addEventListener('click', () => app.set({ tab: tab.dataset.tab }));
    tab.addEventListener('keydown', (event) => {
      const i = tabs.indexOf(tab);
      const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[event.key];
      if (to === undefined) return;
      event.preventDefault();
      const next = tabs[(to + tabs.length) % tabs.length];
      app.set({ tab: next.dataset.tab });
      next.focus();
    });
  }
  $('projector').addEventListener('click', () => {
    app.set({ proj: !s().proj });
    if (app.conv) app.paintConv();
  });
  $('copy-link').addEventListener('click', () => app.copy(app.shareLink(), 'Link'));
  $('copy-code').addEventListener('click', () => app.copyCode());
  for (const button of doc.querySelectorAll('button[data-download]')) {
    button.addEventListener('click', () => app.download(button.dataset.download));
  }
  doc.addEventListener('convlens:open-filter', (event) => app.openFilter(event.detail));
}

/**
 * Reflect the state in the controls that are not one state key each (called by app.sync): the symmetric
 * stride and padding sliders, the "asymmetric" toggle (switched on when the values differ, e.g. an old link
 * with per-side padding), and why the Groups menu offers what it offers.
 * @param {Document} doc
 * @param {{state: Object, bounds: Object|null, geometry: Object|null}} app
 */
export function syncControls(doc, app) {
  const $ = (id) => doc.getElementById(id);
  const s = app.state;
  const bounds = app.bounds || {};
  const explicit = s.pad === 'explicit';
  const pads = [s.pt, s.pb, s.pl, s.pr];
  if (s.sh !== s.sw || (explicit && pads.some((p) => p !== s.pt))) $('asym').checked = true;

  const strideMax = Math.min(bounds.sh?.max ?? 8, bounds.sw?.max ?? 8);
  setSlider($('stride'), s.sh, 1, strideMax, `${s.sh}`);

  const sides = ['pt', 'pb', 'pl', 'pr'];
  const padMin = Math.max(...sides.map((key) => bounds[key]?.min ?? 0));
  const padMax = Math.min(...sides.map((key) => bounds[key]?.max ?? 10));
  const resolved = app.geometry?.padding;
  const padding = $('padding');
  padding.disabled = !explicit;
  if (explicit || !resolved) {
    setSlider(padding, s.pt, padMin, padMax, `${s.pt}`);
  } else {
    const { top, bottom, left, right } = resolved;
    const same = top === bottom && top === left && top === right;
    setSlider(padding, top, 0, padMax, same ? `${top}` : `${Math.min(top, bottom, left, right)}–${Math.max(top, bottom, left, right)}`,
      `${s.pad}: top ${top}, bottom ${bottom}, left ${left}, right ${right}`);
  }

  const channels = channelCount(s);
  const filters = s.k.length;
  const allowed = bounds.groups || [1];
  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
  $('groups-why').textContent = allowed.length > 1 ? '' :
    `Only 1: groups must divide both the ${plural(channels, 'input channel')} and the ${plural(filters, 'filter')}.`;
}

/**
 * Set a range input's bounds, value, shown value and spoken value.
 * @param {HTMLInputElement} input
 * @param {number} value
 * @param {number} min
 * @param {number} max
 * @param {string} shown  text of its <output>
 * @param {string} [spoken]  aria-valuetext (default: the shown text and the allowed range)
 */
function setSlider(input, value, min, max, shown, spoken) {
  input.min = String(min);
  input.max = String(max);
  input.value = String(value);
  input.ownerDocument.getElementById(`${input.id}-out`).textContent = shown;
  input.setAttribute('aria-valuetext', spoken ?? `${shown} (allowed ${min} to ${max})`);
}
