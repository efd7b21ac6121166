// The "Network" view: draw a digit (mouse, pen or finger) or pick an MNIST test digit, and watch the trained
// simple ConvNet (conv 30×5×5 → ReLU → max pool 2×2 → affine 100 → ReLU → affine 10 → softmax) think:
// the preprocessed 28×28, the 30 learned filters, 30 feature maps, 30 pooled maps, 100 hidden units and the
// 10 probabilities, all from POST /api/network.
//
// One state object per mounted view (no globals); rendering functions only read the last answer; events are
// bound in one place (bindEvents). Clicking a learned filter dispatches a bubbling
// CustomEvent('convlens:open-filter', {detail: {weights, bias, image, index}}) that the main page handles.
//
// DOM hooks (tests rely on them): canvas.nv-canvas, button[data-action=clear|undo|prev|next|random],
// input.nv-digit (test digit index), .nv-bars > .nv-bar[data-digit][data-prob] (the top one has class "top"),
// .nv-filter[data-index] buttons, .nv-status (aria-live).

import { el } from './render/common.js';

const CANVAS_SIDE = 280; // drawing resolution (px); shown larger by CSS
const SEND_SIDE = 112; // the drawing is sent to the server at this resolution (the server fits it into 20×20)
const BRUSH = 22; // stroke width in canvas pixels (≈ 2 MNIST pixels after preprocessing)
const LIVE_INTERVAL_MS = 120; // while a stroke is being drawn, ask at most this often
const HELD_OUT_FIRST = 8000; // digits 8000..9999 were not used to train the shipped weights
const MNIST_COUNT = 10000;


/**
 * Percent text for a probability.
 * @param {number} p
 * @returns {string}
 */
function percent(p) {
  if (p >= 0.995) return `${(100 * p).toFixed(1)}%`;
  if (p < 0.0005) return '0%';
  return `${(100 * p).toFixed(p < 0.1 ? 2 : 1)}%`;
}

/**
 * The strokes as short link text: each point is two base-36 digit pairs (x, y in canvas pixels), strokes are
 * separated by '.'; points closer than 3 px to the previous one are left out.
 * @param {Array<Array<[number, number]>>} strokes
 * @returns {string}
 */
export function encodeStrokes(strokes) {
  const pair = (v) => Math.max(0, Math.min(CANVAS_SIDE - 1, Math.round(v))).toString(36).padStart(2, '0');
  return strokes
    .map((stroke) => {
      const kept = [];
      for (const point of stroke) {
        const last = kept.at(-1);
        if (!last || Math.hypot(point[0] - last[0], point[1] - last[1]) >= 3 || point === stroke.at(-1)) kept.push(point);
      }
      return kept.map(([x, y]) => pair(x) + pair(y)).join('');
    })
    .filter(Boolean)
    .join('.');
}

/**
 * Read strokes written by encodeStrokes (unreadable parts are skipped).
 * @param {string} text
 * @returns {Array<Array<[number, number]>>}
 */
export function decodeStrokes(text) {
  const strokes = [];
  for (const part of String(text || '').split('.')) {
    const stroke = [];
    for (let i = 0; i + 4 <= part.length; i += 4) {
      const x = parseInt(part.slice(i, i + 2), 36);
      const y = parseInt(part.slice(i + 2, i + 4), 36);
      if (Number.isFinite(x) && Number.isFinite(y) && x < CANVAS_SIDE && y < CANVAS_SIDE) stroke.push([x, y]);
    }
    if (stroke.length) strokes.push(stroke);
  }
  return strokes;
}

/**
 * Decode a PNG data URL to a Blob (fetch() of data: URLs is blocked by connect-src 'self').
 * @param {string} url
 * @returns {Blob}
 */
function dataUrlBlob(url) {
  const [head, base64] = url.split(',');
  const bytes = Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
  return new Blob([bytes], { type: head.slice(5).split(';')[0] });
}

/**
 * A titled panel.
 * @param {string} title
 * @param {string} note
 * @param {HTMLElement} body
 * @returns {HTMLElement}
 */
function panel(title, note, body) {
  return el('section', { class: 'nv-panel' }, [
    el('h2', { class: 'nv-title', text: title }),
    el('p', { class: 'nv-note', text: note }),
    body,
  ]);
}

/**
 * A grid of `count` <img> tiles (reused between answers).
 * @param {number} count
 * @param {string} label   accessible name prefix
 * @param {string} kind    css modifier
 * @returns {{grid: HTMLElement, tiles: HTMLImageElement[]}}
 */
function imageGrid(count, label, kind) {
  const tiles = [];
  const grid = el('div', { class: `nv-grid nv-grid-${kind}` });
  for (let i = 0; i < count; i += 1) {
    const img = el('img', { class: 'nv-tile', alt: `${label} ${i}`, title: `${label} ${i}`, draggable: 'false' });
    tiles.push(img);
    grid.append(img);
  }
  return { grid, tiles };
}

/**
 * Build the view's DOM.
 * @param {HTMLElement} container
 * @returns {Object} the parts the renderers and event binding use
 */
function buildDom(container) {
  const canvas = el('canvas', {
    class: 'nv-canvas',
    width: CANVAS_SIDE,
    height: CANVAS_SIDE,
    'aria-label': 'Drawing area: draw one digit with the mouse, a pen or a finger (a picked test digit is shown here)',
    role: 'img',
  });
  const digitInput = el('input', {
    class: 'nv-digit',
    type: 'number',
    min: 0,
    max: MNIST_COUNT - 1,
    step: 1,
    value: HELD_OUT_FIRST,
    'aria-label': 'MNIST test digit index (0–9999; 8000 and up were held out from training)',
  });
  const draw = el('div', { class: 'nv-draw' }, [
    canvas,
    el('div', { class: 'nv-row' }, [
      el('button', { type: 'button', dataset: { action: 'undo' }, text: '↶ Undo' }),
      el('button', { type: 'button', dataset: { action: 'clear' }, text: 'Clear' }),
    ]),
    el('div', { class: 'nv-row' }, [
      el('label', { class: 'nv-label' }, ['Test digit ', digitInput]),
      el('button', { type: 'button', dataset: { action: 'prev' }, 'aria-label': 'previous test digit', text: '◀' }),
      el('button', { type: 'button', dataset: { action: 'next' }, 'aria-label': 'next test digit', text: '▶' }),
      el('button', { type: 'button', dataset: { action: 'random' }, text: 'Random held-out' }),
    ]),
  ]);
  const seen = el('img', { class: 'nv-seen', alt: 'The 28×28 image the network sees', draggable: 'false' });
  const seenNote = el('p', { class: 'nv-note nv-seen-note', text: '' });
  const verdict = el('p', { class: 'nv-verdict', 'aria-live': 'polite' });
  const bars = el('div', { class: 'nv-bars', role: 'list', 'aria-label': 'Probability of each digit' });
  const barParts = [];
  for (let d = 0; d < 10; d += 1) {
    const fill = el('div', { class: 'nv-fill' });
    const value = el('span', { class: 'nv-prob', text: '' });
    const bar = el('div', { class: 'nv-bar', role: 'listitem', dataset: { digit: String(d), prob: '0' } }, [
      value,
      el('div', { class: 'nv-track' }, [fill]),
      el('span', { class: 'nv-digit-label', text: String(d) }),
    ]);
    barParts.push({ bar, fill, value });
    bars.append(bar);
  }
  const filterGrid = el('div', { class: 'nv-grid nv-grid-filters' });
  const filterButtons = [];
  for (let i = 0; i < 30; i += 1) {
    const img = el('img', { class: 'nv-tile', alt: '', draggable: 'false' });
    const button = el('button', {
      type: 'button',
      class: 'nv-filter',
      dataset: { index: String(i) },
      'aria-label': `Open learned filter ${i} in the convolution view`,
      title: `filter ${i}: open in the convolution view`,
    }, [img]);
    filterButtons.push({ button, img });
    filterGrid.append(button);
  }
  const beforeRelu = el('input', { type: 'checkbox', class: 'nv-before-relu' });
  const conv = imageGrid(30, 'feature map', 'maps');
  const pool = imageGrid(30, 'pooled map', 'pooled');
  const hidden = el('img', { class: 'nv-hidden', alt: '100 hidden units as a 10×10 grid', draggable: 'false' });
  const hiddenNote = el('p', { class: 'nv-note', text: '' });
  const status = el('p', { class: 'nv-status', 'aria-live': 'polite' });
  const model = el('p', { class: 'nv-note nv-model' });

  const featureBody = el('div', {}, [
    el('label', { class: 'nv-label nv-toggle' }, [beforeRelu, ' show before ReLU (negative values in blue)']),
    conv.grid,
  ]);
  container.replaceChildren(
    el('div', { class: 'nv-layout' }, [
      el('div', { class: 'nv-column nv-input-column' }, [
        panel('Draw a digit', 'Or pick an MNIST test digit.', draw),
        panel('What the network sees', 'Ink bright on dark, fitted into 20×20, centred by its mass in 28×28.',
          el('div', {}, [seen, seenNote])),
      ]),
      el('div', { class: 'nv-column nv-layers-column' }, [
        panel('Answer', 'Softmax probabilities of the 10 classes.', el('div', {}, [verdict, bars])),
        panel('30 learned filters (5×5)', 'Click one to open it in the convolution view on this digit.', filterGrid),
        panel('30 feature maps (24×24)', 'conv 5×5, stride 1, no padding, + bias, then ReLU.', featureBody),
        panel('30 pooled maps (12×12)', 'max pool 2×2, stride 2.', pool.grid),
        panel('100 hidden units', 'affine 4320 → 100, then ReLU; shown as a 10×10 grid.', el('div', {}, [hidden, hiddenNote])),
      ]),
    ]),
    status,
    model,
  );
  return {
    canvas, digitInput, seen, seenNote, verdict, barParts, filterButtons, beforeRelu, convTiles: conv.tiles,
    poolTiles: pool.tiles, hidden, hiddenNote, status, model, container,
  };
}

/**
 * Redraw the drawing canvas from the strokes.
 * @param {HTMLCanvasElement} canvas
 * @param {Array<Array<[number, number]>>} strokes
 */
function paintStrokes(canvas, strokes) {
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = '#fff';
  ctx.fillStyle = '#fff';
  ctx.lineWidth = BRUSH;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  for (const stroke of strokes) {
    if (stroke.length === 1) {
      ctx.beginPath();
      ctx.arc(stroke[0][0], stroke[0][1], BRUSH / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(stroke[0][0], stroke[0][1]);
    for (let i = 1; i < stroke.length; i += 1) ctx.lineTo(stroke[i][0], stroke[i][1]);
    ctx.stroke();
  }
}

/**
 * Paint a test digit (its 28×28 PNG) on the drawing canvas, enlarged with square pixels.
 * @param {HTMLCanvasElement} canvas
 * @param {string} png   data URL
 * @param {() => boolean} stillWanted   false when the canvas has been drawn on meanwhile
 */
function paintDigit(canvas, png, stillWanted) {
  const img = new Image();
  img.onload = () => {
    if (!stillWanted()) return;
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  };
  img.src = png;
}

/**
 * The drawing as rows of gray levels in [0, 1] at SEND_SIDE × SEND_SIDE (white ink = 1).
 * @param {HTMLCanvasElement} canvas
 * @returns {number[][]}
 */
function drawnGrid(canvas) {
  const small = document.createElement('canvas');
  small.width = SEND_SIDE;
  small.height = SEND_SIDE;
  const ctx = small.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(canvas, 0, 0, SEND_SIDE, SEND_SIDE);
  const { data } = ctx.getImageData(0, 0, SEND_SIDE, SEND_SIDE);
  const rows = [];
  for (let y = 0; y < SEND_SIDE; y += 1) {
    const row = new Array(SEND_SIDE);
    for (let x = 0; x < SEND_SIDE; x += 1) row[x] = Math.round((data[4 * (y * SEND_SIDE + x)] / 255) * 1000) / 1000;
    rows.push(row);
  }
  return rows;
}

/**
 * Show one answer of POST /api/network.
 * @param {Object} dom
 * @param {Object} answer
 * @param {boolean} beforeRelu
 */
function renderAnswer(dom, answer, beforeRelu) {
  const layers = Object.fromEntries(answer.layers.map((layer) => [layer.name, layer]));
  dom.seen.src = answer.input.png;
  const source = answer.input.source === 'mnist'
    ? 'The MNIST digit itself (already preprocessed).'
    : `Preprocessed from your ${answer.input.source === 'drawn' ? 'drawing' : 'image'}${answer.input.inverted ? ' (inverted: dark ink on light)' : ''}.`;
  dom.seenNote.textContent = answer.input.empty ? 'No ink found: draw a digit.' : source;

  const probs = answer.probabilities;
  const top = answer.prediction;
  dom.barParts.forEach(({ bar, fill, value }, d) => {
    const p = probs[d];
    bar.dataset.prob = String(p);
    bar.classList.toggle('top', d === top);
    bar.setAttribute('aria-label', `digit ${d}: ${percent(p)}`);
    fill.style.height = `${Math.max(0, Math.min(1, p)) * 100}%`;
    value.textContent = percent(p);
  });
  let verdict = `The network says ${top} (${percent(probs[top])}).`;
  if (answer.label !== null && answer.label !== undefined) {
    verdict += answer.label === top ? ` Correct: the label is ${answer.label}.` : ` Wrong: the label is ${answer.label}.`;
  }
  dom.verdict.textContent = verdict;
  dom.verdict.classList.toggle('nv-wrong', answer.label !== null && answer.label !== undefined && answer.label !== top);

  layers.conv.filters.forEach((filter, i) => {
    const { img } = dom.filterButtons[i];
    img.src = filter.png;
    img.alt = `learned filter ${i}`;
  });
  const maps = beforeRelu ? layers.conv.maps : layers.relu.maps;
  maps.forEach((map, i) => {
    dom.convTiles[i].src = map.png;
    dom.convTiles[i].title = `feature map ${i}: min ${map.min.toPrecision(3)}, max ${map.max.toPrecision(3)}`;
  });
  layers.pool.maps.forEach((map, i) => {
    dom.poolTiles[i].src = map.png;
    dom.poolTiles[i].title = `pooled map ${i}: max ${map.max.toPrecision(3)}`;
  });
  dom.hidden.src = layers.hidden.png;
  dom.container.dataset.blank = 'false';
  const active = layers.hidden.values.filter((v) => v > 0).length;
  dom.hiddenNote.textContent = `${active} of 100 units active; largest ${layers.hidden.max.toPrecision(3)}.`;
  const m = answer.model;
  dom.model.textContent = `Weights: trained with convlens' own NumPy core on the ${m.data}; `
    + `${(100 * m.accuracy).toFixed(2)}% on the ${m.evaluated_on}; ${m.epochs} epochs, seed ${m.seed}.`;
}

/**
 * Show an empty canvas: no input, so no prediction and no maps (the learned filters stay).
 * @param {Object} dom
 */
function renderBlank(dom) {
  dom.barParts.forEach(({ bar, fill, value }, d) => {
    bar.dataset.prob = '0';
    bar.classList.remove('top');
    bar.setAttribute('aria-label', `digit ${d}: no prediction`);
    fill.style.height = '0%';
    value.textContent = '';
  });
  dom.verdict.textContent = 'No prediction: draw a digit, or pick a test digit.';
  dom.verdict.classList.remove('nv-wrong');
  dom.seenNote.textContent = 'Nothing drawn yet.';
  for (const img of [dom.seen, dom.hidden, ...dom.convTiles, ...dom.poolTiles]) img.removeAttribute('src');
  dom.hiddenNote.textContent = '';
  dom.container.dataset.blank = 'true';
}

/**
 * Mount the Network view.
 * @param {HTMLElement} container   an empty element (the page's #network-view)
 * @param {{latest: Function, upload: Function}} api   the page's API client (static/js/api.js)
 * @param {{digit?: number, drawing?: string, onChange?: Function}} [options]  the test digit and the drawing
 *   (encodeStrokes) to open with; onChange({nd, draw}) is called when either changes (for the page's link)
 * @returns {{show: Function, destroy: Function}}  show(index) picks a test digit
 */
export function mountNetworkView(container, api, options = {}) {
  const dom = buildDom(container);
  const tell = (changes) => {
    if (typeof options.onChange === 'function') options.onChange(changes);
  };
  const state = {
    strokes: [], // Array<Array<[x, y]>> in canvas pixels
    drawing: null, // the stroke in progress
    pointerId: null,
    image: `mnist:${HELD_OUT_FIRST}`, // the current test digit id, or null when the input is a drawing
    answer: null,
    uploadedFor: null, // {png, id}: the drawn 28×28 uploaded for the convolution view
    lastSent: 0,
    liveTimer: 0,
    inflight: 0, // requests not answered yet (live updates wait for none)
  };
  paintStrokes(dom.canvas, state.strokes);

  /** Ask the server about the current input (newest request wins). */
  async function update() {
    const body = state.image ? { image: state.image, values: false } : { drawn: drawnGrid(dom.canvas), values: false };
    state.lastSent = performance.now();
    container.classList.add('nv-busy');
    state.inflight += 1;
    try {
      const answer = await api.latest('network', '/api/network', body);
      state.answer = answer;
      renderAnswer(dom, answer, dom.beforeRelu.checked);
      if (answer.input.source === 'mnist' && state.image) {
        const wanted = state.image;
        paintDigit(dom.canvas, answer.input.png, () => state.image === wanted);
      }
      dom.status.textContent = '';
      container.dataset.ready = 'true';
    } catch (error) {
      if (error && error.name === 'Superseded') return;
      dom.status.textContent = `The network could not answer: ${error.message}`;
    } finally {
      state.inflight -= 1;
      if (state.inflight === 0) container.classList.remove('nv-busy');
    }
  }

  /**
   * Show MNIST test digit `index`.
   * @param {number} index
   */
  function show(index) {
    const n = Math.max(0, Math.min(MNIST_COUNT - 1, Math.round(Number(index)) || 0));
    dom.digitInput.value = String(n);
    state.image = `mnist:${n}`;
    state.strokes = [];
    paintStrokes(dom.canvas, state.strokes);
    tell({ nd: n, draw: '' });
    update();
  }

  /** The drawing changed: switch the input to the drawing and ask; an empty drawing is a blank canvas. */
  function drawingChanged() {
    state.image = null;
    tell({ draw: encodeStrokes(state.strokes) });
    if (state.strokes.length === 0) {
      api.cancel?.('network');
      state.liveTimer = 0;
      renderBlank(dom);
      return;
    }
    update();
  }

  /**
   * Pointer position in canvas pixels.
   * @param {PointerEvent} event
   * @returns {[number, number]}
   */
  function point(event) {
    const rect = dom.canvas.getBoundingClientRect();
    return [
      ((event.clientX - rect.left) / rect.width) * CANVAS_SIDE,
      ((event.clientY - rect.top) / rect.height) * CANVAS_SIDE,
    ];
  }

  /** Bind every event of the view (the one place that does). */
  function bindEvents() {
    const canvas = dom.canvas;
    canvas.addEventListener('pointerdown', (event) => {
      if (state.pointerId !== null || (event.pointerType === 'mouse' && event.button !== 0)) return;
      event.preventDefault();
      if (state.image) state.strokes = []; // drawing on a test digit starts a fresh drawing
      state.image = null;
      state.pointerId = event.pointerId;
      canvas.setPointerCapture(event.pointerId);
      state.drawing = [point(event)];
      state.strokes.push(state.drawing);
      paintStrokes(canvas, state.strokes);
    });
    canvas.addEventListener('pointermove', (event) => {
      if (event.pointerId !== state.pointerId || !state.drawing) return;
      event.preventDefault();
      const events = typeof event.getCoalescedEvents === 'function' ? event.getCoalescedEvents() : [event];
      for (const e of events.length ? events : [event]) state.drawing.push(point(e));
      paintStrokes(canvas, state.strokes);
      // live update while drawing, at most every LIVE_INTERVAL_MS
      const idle = state.inflight === 0 && !state.liveTimer;
      if (idle && performance.now() - state.lastSent > LIVE_INTERVAL_MS) {
        state.liveTimer = window.setTimeout(() => {
          state.liveTimer = 0;
          if (state.drawing) update();
        }, 0);
      }
    });
    const end = (event) => {
      if (event.pointerId !== state.pointerId) return;
      state.pointerId = null;
      state.drawing = null;
      if (canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
      drawingChanged(); // the stroke ended: ask at once
    };
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);

    container.addEventListener('click', (event) => {
      const target = event.target instanceof Element ? event.target.closest('button') : null;
      if (!target || !container.contains(target)) return;
      const action = target.dataset.action;
      const current = Number(dom.digitInput.value) || 0;
      if (action === 'clear') {
        state.strokes = [];
        paintStrokes(dom.canvas, state.strokes);
        drawingChanged();
      } else if (action === 'undo') {
        if (state.image || state.strokes.length === 0) return;
        state.strokes.pop();
        paintStrokes(dom.canvas, state.strokes);
        drawingChanged();
      } else if (action === 'prev') {
        show((current + MNIST_COUNT - 1) % MNIST_COUNT);
      } else if (action === 'next') {
        show((current + 1) % MNIST_COUNT);
      } else if (action === 'random') {
        show(HELD_OUT_FIRST + Math.floor(Math.random() * (MNIST_COUNT - HELD_OUT_FIRST)));
      } else if (target.classList.contains('nv-filter')) {
        openFilter(Number(target.dataset.index), target);
      }
    });
    dom.digitInput.addEventListener('change', () => show(dom.digitInput.value));
    dom.beforeRelu.addEventListener('change', () => {
      if (state.answer) renderAnswer(dom, state.answer, dom.beforeRelu.checked);
    });
  }

  /**
   * Dispatch convlens:open-filter for learned filter `index` on the current digit. A drawing is uploaded
   * (its preprocessed 28×28) so that the convolution view can show the same digit.
   * @param {number} index
   * @param {HTMLElement} origin
   */
  async function openFilter(index, origin) {
    const answer = state.answer;
    if (!answer) return;
    const conv = answer.layers.find((layer) => layer.name === 'conv');
    const filter = conv.filters[index];
    let image = state.image;
    if (!image && !answer.input.empty && typeof api.upload === 'function') {
      try {
        if (state.uploadedFor?.png !== answer.input.png) {
          const info = await api.upload(dataUrlBlob(answer.input.png), 'drawn-digit.png');
          state.uploadedFor = { png: answer.input.png, id: info.id };
        }
        image = state.uploadedFor.id;
      } catch (error) {
        dom.status.textContent = `Could not send the drawing to the convolution view: ${error.message}`;
        image = null;
      }
    }
    origin.dispatchEvent(new CustomEvent('convlens:open-filter', {
      bubbles: true,
      detail: { weights: filter.weights, bias: filter.bias, image, index },
    }));
  }

  bindEvents();
  const opening = decodeStrokes(options.drawing);
  if (Number.isInteger(options.digit)) dom.digitInput.value = String(options.digit);
  if (opening.length) {
    state.image = null;
    state.strokes = opening;
    paintStrokes(dom.canvas, state.strokes);
    update(); // the drawing from the link
  } else {
    state.image = `mnist:${Math.max(0, Math.min(MNIST_COUNT - 1, Number(dom.digitInput.value) || 0))}`;
    update();
  }
  return {
    show,
    destroy() {
      api.cancel?.('network');
      container.replaceChildren();
    },
  };
}
