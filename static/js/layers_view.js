// The "Layers" view: a stack of Conv2d / ReLU / MaxPool2d / AvgPool2d on a real image, every layer's maps, and
// for any pixel of any layer its receptive field on the input — the theoretical box (Distill's arithmetic) and
// the effective receptive field (Luo et al.: |∂unit/∂input|) — with both sizes in numbers and a chart of r and
// the ERF radius against depth. Everything is computed by POST /api/stack and POST /api/stack/field.
//
// One state object per mounted view (no globals); what must survive a reload (the stack text, the weights and
// the chosen unit) lives in the page's one state object, through hooks.get()/hooks.set(), so it is in the URL.
// Rendering functions only read the last answers; events are bound in bindEvents.
//
// DOM hooks (tests rely on them): textarea.lv-text, select.lv-preset, select.lv-weights, input.lv-npz,
// a.lv-download, button.lv-run,
// button.lv-copy, img.lv-map[data-layer][data-channel], canvas.lv-overlay (data-unit, data-box, data-exact,
// data-erf-radius, data-draws), .lv-numbers, svg.lv-chart (data-points), root data-paints / data-busy.

import { el, fmt, loadImage } from './render/common.js';

const INPUT_DISPLAY = 320; // CSS pixels of the input picture's longer side
const TILE = 104; // CSS pixels of a map tile's longer side
const BOX_COLOUR = '#00c8ff'; // theoretical box
const EXACT_COLOUR = '#ffd000'; // the box the unit actually depends on
const ERF_COLOUR = [255, 40, 120]; // ERF density and its 95 % square
const DEFAULT_TEXT = 'nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), '
  + 'nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))';
const DEFAULT_RGB = 'nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), '
  + 'nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))';
const SIDES = [28, 64, 128, 256];

/**
 * The stack text of a page state: its own, else a default that fits its colour (LeNet for gray, a VGG block
 * for RGB).
 * @param {Object} s  page state
 * @returns {string}
 */
export function stackText(s) {
  return s.stack || (s.color === 'rgb' ? DEFAULT_RGB : DEFAULT_TEXT);
}

/**
 * The image the stack runs on: the page's image, or, while the convolution view shows a layer's real input
 * (an 'act:…' activation), the image that layer was opened from.
 * @param {Object} s  page state
 * @returns {string}
 */
export function layersImage(s) {
  return s.image.startsWith('act:') ? s.lsrc || 'mnist:0' : s.image;
}

/**
 * @typedef {Object} Hooks
 * @property {() => Object} get          the page's state (image, color, side, stack, lw, lunit)
 * @property {(changes: Object) => void} set   change the page's state (written to the URL)
 * @property {(detail: Object) => void} openConv  open a layer in the convolution view
 */

/**
 * The image size this view uses: the page's `side` when it is one of SIDES, else 128.
 * @param {number} side
 * @returns {number}
 */
export function viewSide(side) {
  return SIDES.includes(side) ? side : 128;
}

/**
 * The stack request body for the current page state (with `npz`, the base64 of an uploaded .npz, the weights
 * come from it instead).
 * @param {Object} s  page state
 * @param {string|null} [npz]
 * @returns {Object}
 */
export function stackBody(s, npz = null) {
  return {
    image: layersImage(s),
    color: s.color,
    max_side: viewSide(s.side),
    text: stackText(s),
    weights: npz ? { source: 'npz', npz } : { source: s.lw === 'mnist' ? 'mnist' : 'random', seed: 0 },
  };
}

/**
 * Input-pixel → overlay-pixel scale and the display size of an H × W input.
 * @param {number} h
 * @param {number} w
 * @returns {{scale: number, width: number, height: number}}
 */
export function inputScale(h, w) {
  const scale = INPUT_DISPLAY / Math.max(h, w);
  return { scale, width: Math.round(w * scale), height: Math.round(h * scale) };
}

/**
 * The map pixel under a pointer event on a tile showing an (H, W) map.
 * @param {PointerEvent|MouseEvent} event
 * @param {HTMLElement} tile
 * @param {number} h
 * @param {number} w
 * @returns {{y: number, x: number}}
 */
export function pixelUnder(event, tile, h, w) {
  const rect = tile.getBoundingClientRect();
  const y = Math.floor(((event.clientY - rect.top) / rect.height) * h);
  const x = Math.floor(((event.clientX - rect.left) / rect.width) * w);
  return { y: Math.min(h - 1, Math.max(0, y)), x: Math.min(w - 1, Math.max(0, x)) };
}

/**
 * Build the view's DOM.
 * @returns {Object} named elements
 */
function build() {
  const nodes = {
    preset: el('select', { class: 'lv-preset', id: 'lv-preset' }, [el('option', { value: '', text: '— custom —' })]),
    text: el('textarea', { class: 'lv-text', id: 'lv-text', rows: '9', spellcheck: 'false', autocomplete: 'off' }),
    image: el('select', { class: 'lv-image', id: 'lv-image' }),
    color: el('select', { class: 'lv-color', id: 'lv-color' }, [
      el('option', { value: 'gray', text: 'gray' }),
      el('option', { value: 'rgb', text: 'RGB' }),
    ]),
    side: el('select', { class: 'lv-side', id: 'lv-side' }, SIDES.map((s) => el('option', { value: String(s), text: `${s} px` }))),
    weights: el('select', { class: 'lv-weights', id: 'lv-weights' }, [
      el('option', { value: 'random', text: 'random (Kaiming uniform, seed 0)' }),
      el('option', { value: 'mnist', text: 'trained MNIST conv (layer 0)' }),
    ]),
    npzFile: el('input', { type: 'file', class: 'lv-npz', id: 'lv-npz', accept: '.npz' }),
    download: el('a', { class: 'lv-download', download: 'convlens_stack.npz', text: 'Download weights (.npz)' }),
    run: el('button', { type: 'button', class: 'lv-run', text: 'Run' }),
    copy: el('button', { type: 'button', class: 'lv-copy', text: 'Copy PyTorch code' }),
    status: el('p', { class: 'lv-status', role: 'status', 'aria-live': 'polite' }),
    warnings: el('ul', { class: 'lv-warnings', 'aria-label': 'Warnings about the stack' }),
    code: el('textarea', { class: 'lv-code', readonly: true, rows: '8', 'aria-label': 'PyTorch code rebuilding the stack' }),
    input: el('canvas', { class: 'lv-input pixelated', 'aria-label': 'The input image' }),
    overlay: el('canvas', { class: 'lv-overlay', 'aria-hidden': 'true' }),
    numbers: el('p', { class: 'lv-numbers', 'aria-live': 'polite', text: 'Hover or tap a pixel of any map.' }),
    chart: document.createElementNS('http://www.w3.org/2000/svg', 'svg'),
    layers: el('div', { class: 'lv-layer-list' }),
  };
  nodes.chart.setAttribute('class', 'lv-chart');
  nodes.chart.setAttribute('viewBox', '0 0 320 180');
  nodes.chart.setAttribute('role', 'img');
  nodes.chart.setAttribute('aria-label', 'Receptive-field radius against depth');
  const label = (text, node) => el('label', { class: 'lv-label', for: node.id, text }, []);
  const controls = el('section', { class: 'lv-panel lv-controls', 'aria-label': 'Stack' }, [
    el('h2', { class: 'lv-title', text: 'Stack' }),
    el('div', { class: 'lv-row' }, [label('Preset', nodes.preset), nodes.preset]),
    el('label', { for: 'lv-text', class: 'lv-label', text: 'nn.Sequential(…) — paste your own' }),
    nodes.text,
    el('div', { class: 'lv-row' }, [label('Image', nodes.image), nodes.image]),
    el('div', { class: 'lv-row' }, [label('Colour', nodes.color), nodes.color, label('Size', nodes.side), nodes.side]),
    el('div', { class: 'lv-row' }, [label('Weights', nodes.weights), nodes.weights]),
    el('div', { class: 'lv-row' }, [label('Load weights (.npz, keys "0.weight", "0.bias", …)', nodes.npzFile), nodes.npzFile]),
    el('div', { class: 'lv-row' }, [nodes.run, nodes.copy, nodes.download]),
    nodes.status,
    nodes.warnings,
    el('details', { class: 'lv-details' }, [el('summary', { text: 'PyTorch code' }), nodes.code]),
  ]);
  const field = el('section', { class: 'lv-panel lv-field', 'aria-label': 'Receptive field' }, [
    el('h2', { class: 'lv-title', text: 'Input and receptive field' }),
    el('p', { class: 'lv-note', text: 'Blue dashed: theoretical box (r × r). Yellow: the pixels the unit really depends on. '
      + 'Pink: effective receptive field |∂unit/∂input| and the square holding 95 % of it.' }),
    el('div', { class: 'lv-stack' }, [nodes.input, nodes.overlay]),
    nodes.numbers,
    el('h3', { class: 'lv-title lv-subtitle', text: 'Radius against depth' }),
    nodes.chart,
  ]);
  const maps = el('section', { class: 'lv-panel lv-maps', 'aria-label': 'Every layer' }, [
    el('h2', { class: 'lv-title', text: 'Every layer' }),
    el('p', { class: 'lv-note', text: 'Hover or tap any pixel of any map; click a layer’s button to open it in the convolution view.' }),
    nodes.layers,
  ]);
  nodes.root = el('div', { class: 'lv-layout' }, [el('div', { class: 'lv-column' }, [controls, field]), maps]);
  return nodes;
}

/**
 * Draw the input picture and size the overlay.
 * @param {Object} nodes
 * @param {Object} answer  POST /api/stack answer
 */
async function drawInput(nodes, answer) {
  const [, h, w] = answer.input.shape;
  const { width, height } = inputScale(h, w);
  const image = await loadImage(answer.input.png);
  nodes.input.width = w;
  nodes.input.height = h;
  nodes.input.style.width = `${width}px`;
  nodes.input.style.height = `${height}px`;
  nodes.input.getContext('2d').drawImage(image, 0, 0);
  nodes.overlay.width = width;
  nodes.overlay.height = height;
  nodes.overlay.style.width = `${width}px`;
  nodes.overlay.style.height = `${height}px`;
  nodes.overlay.getContext('2d').clearRect(0, 0, width, height);
}

/**
 * One layer's block: its line, numbers, a button and its map tiles.
 * @param {Object} layer  an entry of answer.layers
 * @returns {HTMLElement}
 */
function layerBlock(layer) {
  const [c, h, w] = layer.shape;
  const scale = TILE / Math.max(h, w);
  const tiles = layer.maps.map((m) => {
    const img = el('img', {
      class: 'lv-map pixelated',
      src: m.png,
      alt: `layer ${layer.index} channel ${m.index}`,
      title: `channel ${m.index}: ${fmt(m.min)} … ${fmt(m.max)}`,
      draggable: 'false',
      tabindex: '0',
      dataset: { layer: String(layer.index), channel: String(m.index), h: String(h), w: String(w) },
    });
    img.style.width = `${Math.max(1, Math.round(w * scale))}px`;
    img.style.height = `${Math.max(1, Math.round(h * scale))}px`;
    return img;
  });
  const facts = `${c}×${h}×${w} · r ${layer.height.r}×${layer.width.r} · jump ${layer.height.j}×${layer.width.j}`;
  const head = el('div', { class: 'lv-layer-head' }, [
    el('code', { class: 'lv-layer-text', text: `${layer.index}: ${layer.text}` }),
    el('span', { class: 'lv-layer-facts', text: facts }),
  ]);
  if (layer.name === 'Conv2d') {
    head.append(el('button', { type: 'button', class: 'lv-open', dataset: { layer: String(layer.index) }, text: 'Open in convolution view' }));
  }
  return el('section', { class: 'lv-layer', dataset: { layer: String(layer.index) } }, [head, el('div', { class: 'lv-tiles' }, tiles)]);
}

/**
 * The ERF picture tinted pink, its alpha the density (max = opaque).
 * @param {string} url  sequential PNG of the density
 * @param {number} h
 * @param {number} w
 * @returns {Promise<HTMLCanvasElement>}
 */
async function tintedErf(url, h, w) {
  const image = await loadImage(url);
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(image, 0, 0);
  const data = ctx.getImageData(0, 0, w, h);
  for (let i = 0; i < data.data.length; i += 4) {
    const v = data.data[i];
    data.data[i] = ERF_COLOUR[0];
    data.data[i + 1] = ERF_COLOUR[1];
    data.data[i + 2] = ERF_COLOUR[2];
    data.data[i + 3] = Math.round(0.85 * v);
  }
  ctx.putImageData(data, 0, 0);
  return canvas;
}

/**
 * Draw one unit's field on the overlay and say its sizes in numbers.
 * @param {Object} nodes
 * @param {Object} answer  the stack answer (for the input size)
 * @param {Object} field   POST /api/stack/field answer
 */
async function drawField(nodes, answer, field) {
  const [, h, w] = answer.input.shape;
  const { scale, width, height } = inputScale(h, w);
  const erf = await tintedErf(field.erf.png, h, w);
  const ctx = nodes.overlay.getContext('2d');
  ctx.clearRect(0, 0, width, height);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(erf, 0, 0, width, height);
  const { height: bh, width: bw } = field.box;
  // theoretical box (may reach into the padding, i.e. past the canvas): dashed
  ctx.setLineDash([6, 4]);
  ctx.lineWidth = 2;
  ctx.strokeStyle = BOX_COLOUR;
  ctx.strokeRect(bw.start * scale + 1, bh.start * scale + 1, (bw.stop - bw.start) * scale - 2, (bh.stop - bh.start) * scale - 2);
  ctx.setLineDash([]);
  if (bh.exact_stop > bh.exact_start && bw.exact_stop > bw.exact_start) {
    ctx.strokeStyle = EXACT_COLOUR;
    ctx.lineWidth = 1;
    ctx.strokeRect(bw.exact_start * scale + 0.5, bh.exact_start * scale + 0.5,
      (bw.exact_stop - bw.exact_start) * scale - 1, (bh.exact_stop - bh.exact_start) * scale - 1);
  }
  const [cy, cx] = field.erf.centre;
  const rho = field.erf.radius;
  ctx.strokeStyle = `rgb(${ERF_COLOUR.join(',')})`;
  ctx.lineWidth = 2;
  ctx.strokeRect((cx - rho) * scale, (cy - rho) * scale, (2 * rho + 1) * scale, (2 * rho + 1) * scale);
  const u = field.unit;
  Object.assign(nodes.overlay.dataset, {
    unit: `${u.layer},${u.channel},${u.y},${u.x}`,
    box: `${bh.start},${bh.stop},${bw.start},${bw.stop}`,
    exact: `${bh.exact_start},${bh.exact_stop},${bw.exact_start},${bw.exact_stop}`,
    erfRadius: String(rho),
    scale: String(scale),
    draws: String(Number(nodes.overlay.dataset.draws || 0) + 1),
  });
  const padding = bh.pad_before + bh.pad_after + bw.pad_before + bw.pad_after;
  const [tr] = field.theoretical_radius;
  nodes.numbers.textContent = `Layer ${u.layer}, channel ${u.channel}, unit (${u.y}, ${u.x}) = ${fmt(field.value)}. `
    + `Theoretical field ${bh.stop - bh.start}×${bw.stop - bw.start} px (radius ${fmt(tr)}), rows ${bh.start}…${bh.stop - 1}, `
    + `columns ${bw.start}…${bw.stop - 1}${padding ? `, ${bh.pad_before}/${bh.pad_after} rows and ${bw.pad_before}/${bw.pad_after} columns in the padding` : ''}. `
    + `Effective field: 95 % of |∂unit/∂input| within radius ${fmt(rho)} (${2 * rho + 1}×${2 * rho + 1} px).`;
  drawChart(nodes.chart, field.depth || []);
}

/**
 * The chart of the theoretical radius (r − 1)/2 and the ERF radius against depth, as SVG polylines.
 * @param {SVGSVGElement} svg
 * @param {Array<Object>} depth  field.depth
 */
function drawChart(svg, depth) {
  const ns = 'http://www.w3.org/2000/svg';
  const node = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    if (text) n.textContent = text;
    return n;
  };
  svg.replaceChildren();
  if (!depth.length) return;
  const left = 34, right = 310, top = 12, bottom = 150;
  const maxR = Math.max(1, ...depth.map((d) => d.theoretical_radius[0]), ...depth.map((d) => d.erf_radius || 0));
  const xs = (i) => left + (depth.length === 1 ? 0 : (i / (depth.length - 1)) * (right - left));
  const ys = (v) => bottom - (v / maxR) * (bottom - top);
  svg.append(node('line', { x1: left, y1: bottom, x2: right, y2: bottom, class: 'lv-axis' }));
  svg.append(node('line', { x1: left, y1: top, x2: left, y2: bottom, class: 'lv-axis' }));
  svg.append(node('text', { x: 2, y: top + 4, class: 'lv-tick' }, fmt(maxR, 3)));
  svg.append(node('text', { x: 2, y: bottom, class: 'lv-tick' }, '0'));
  const theory = depth.map((d, i) => `${xs(i).toFixed(1)},${ys(d.theoretical_radius[0]).toFixed(1)}`).join(' ');
  const erf = depth.filter((d) => d.erf_radius !== null)
    .map((d) => `${xs(depth.indexOf(d)).toFixed(1)},${ys(d.erf_radius).toFixed(1)}`).join(' ');
  svg.append(node('polyline', { points: theory, class: 'lv-line-theory' }));
  svg.append(node('polyline', { points: erf, class: 'lv-line-erf' }));
  depth.forEach((d, i) => svg.append(node('text', { x: xs(i) - 3, y: bottom + 14, class: 'lv-tick' }, String(d.index))));
  svg.append(node('text', { x: left + 6, y: 172, class: 'lv-legend-theory' }, '— theoretical (r − 1)/2'));
  svg.append(node('text', { x: left + 150, y: 172, class: 'lv-legend-erf' }, '— ERF 95 % radius'));
  svg.dataset.points = JSON.stringify(depth.map((d) => [d.index, d.theoretical_radius[0], d.erf_radius]));
}

/**
 * Mount the Layers view into `root`.
 * @param {HTMLElement} root
 * @param {Object} api    from createApi()
 * @param {Hooks} hooks
 * @returns {{refresh: Function}}
 */
export function mountLayersView(root, api, hooks) {
  const nodes = build();
  root.replaceChildren(nodes.root);
  const view = { answer: null, field: null, presets: [], samples: [], paints: 0, busy: 0, timer: 0, npz: null };
  const setBusy = (delta) => {
    view.busy += delta;
    root.dataset.busy = String(view.busy);
  };
  const say = (text) => { nodes.status.textContent = text; };

  const syncControls = () => {
    const s = hooks.get();
    if (document.activeElement !== nodes.text) nodes.text.value = stackText(s);
    nodes.color.value = s.color;
    nodes.side.value = String(viewSide(s.side));
    nodes.weights.value = view.npz ? 'npz' : s.lw;
    const images = [...new Set([layersImage(s), 'mnist:0', 'mnist:1', 'mnist:7', ...view.samples.map((x) => `sample:${x}`)])];
    nodes.image.replaceChildren(...images.map((id) => el('option', { value: id, text: id })));
    nodes.image.value = layersImage(s);
    const preset = view.presets.find((p) => p.text === stackText(s));
    nodes.preset.value = preset ? preset.name : '';
  };

  // One field request in flight at a time; while it computes, only the newest hovered unit waits (so a
  // fast mouse never queues work on the server).
  let fieldBusy = false;
  let waiting = null;
  const requestField = async (unit) => {
    if (!view.answer) return;
    if (fieldBusy) {
      waiting = unit;
      return;
    }
    fieldBusy = true;
    const [layer, channel, y, x] = unit;
    setBusy(1);
    try {
      const field = await api.latest('layers-field', '/api/stack/field', { ...stackBody(hooks.get(), view.npz), layer, channel, y, x });
      view.field = field;
      await drawField(nodes, view.answer, field);
    } catch (error) {
      if (error.name !== 'Superseded') say(error.message);
    } finally {
      fieldBusy = false;
      setBusy(-1);
    }
    if (waiting) {
      const next = waiting;
      waiting = null;
      await requestField(next);
    }
  };

  const run = async () => {
    const s = hooks.get();
    setBusy(1);
    say('computing…');
    try {
      const answer = await api.latest('layers', '/api/stack', stackBody(s, view.npz));
      view.answer = answer;
      await drawInput(nodes, answer);
      nodes.layers.replaceChildren(...answer.layers.map(layerBlock));
      nodes.warnings.replaceChildren(...answer.warnings.map((w) => el('li', { text: w })));
      nodes.code.value = answer.pytorch;
      if (answer.weights_npz) nodes.download.href = `data:application/octet-stream;base64,${answer.weights_npz}`;
      else nodes.download.removeAttribute('href');
      const t = answer.timing_ms;
      say(`${answer.layers.length} layers on ${answer.input.shape.join('×')} in ${fmt(t.total, 3)} ms (server).`);
      view.paints += 1;
      root.dataset.paints = String(view.paints);
      const unit = s.lunit;
      const last = answer.layers.length - 1;
      if (unit.length === 4 && unit[0] <= last) {
        const [, c, h, w] = [0, ...answer.layers[unit[0]].shape];
        if (unit[1] < c && unit[2] < h && unit[3] < w) await requestField(unit);
      }
    } catch (error) {
      if (error.name !== 'Superseded') say(error.message);
    } finally {
      setBusy(-1);
    }
  };

  const bindEvents = () => {
    nodes.text.addEventListener('input', () => {
      clearTimeout(view.timer);
      view.timer = setTimeout(() => { hooks.set({ stack: nodes.text.value.trim() }); run(); }, 700);
    });
    nodes.run.addEventListener('click', () => { hooks.set({ stack: nodes.text.value.trim() }); run(); });
    nodes.preset.addEventListener('change', () => {
      const preset = view.presets.find((p) => p.name === nodes.preset.value);
      if (!preset) return;
      view.npz = null;
      const [c, h] = preset.input;
      const s = hooks.get();
      const changes = { stack: preset.text, color: c === 1 ? 'gray' : 'rgb', lunit: [], lw: preset.name === 'mnist' ? 'mnist' : 'random' };
      const image = layersImage(s);
      if (c === 3 && image.startsWith('mnist:')) changes.image = 'sample:astronaut';
      if (c === 1 && !image.startsWith('mnist:')) changes.image = 'mnist:0';
      changes.side = SIDES.reduce((best, v) => (Math.abs(v - h) < Math.abs(best - h) ? v : best), SIDES[0]);
      hooks.set(changes);
      syncControls();
      run();
    });
    nodes.weights.addEventListener('change', () => {
      if (nodes.weights.value !== 'npz') view.npz = null;
      if (nodes.weights.value !== 'npz') hooks.set({ lw: nodes.weights.value });
      run();
    });
    nodes.npzFile.addEventListener('change', async () => {
      const file = nodes.npzFile.files[0];
      if (!file) return;
      const bytes = new Uint8Array(await file.arrayBuffer());
      let text = '';
      for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      view.npz = btoa(text);
      if (!nodes.weights.querySelector('option[value=npz]')) {
        nodes.weights.append(el('option', { value: 'npz', text: `uploaded ${file.name}` }));
      }
      nodes.weights.value = 'npz';
      run();
    });
    for (const [node, key, cast] of [[nodes.image, 'image', String], [nodes.color, 'color', String], [nodes.side, 'side', Number]]) {
      node.addEventListener('change', () => { hooks.set({ [key]: cast(node.value) }); run(); });
    }
    nodes.copy.addEventListener('click', async () => {
      if (!view.answer) return;
      try {
        await navigator.clipboard.writeText(view.answer.pytorch);
        say('PyTorch code copied to the clipboard.');
      } catch {
        nodes.code.closest('details').open = true;
        say('Could not use the clipboard; the code is in the box below.');
      }
    });
    let frame = 0;
    let pending = null;
    const hover = (event, pin) => {
      const tile = event.target.closest('.lv-map');
      if (!tile) return;
      const { y, x } = pixelUnder(event, tile, Number(tile.dataset.h), Number(tile.dataset.w));
      const unit = [Number(tile.dataset.layer), Number(tile.dataset.channel), y, x];
      if (pin) hooks.set({ lunit: unit });
      pending = unit;
      if (!frame) {
        frame = requestAnimationFrame(() => { frame = 0; requestField(pending); });
      }
    };
    nodes.layers.addEventListener('pointermove', (event) => hover(event, false));
    nodes.layers.addEventListener('click', (event) => {
      const open = event.target.closest('.lv-open');
      if (open) {
        const layer = view.answer.layers[Number(open.dataset.layer)];
        hooks.openConv({ layer, answer: view.answer, state: hooks.get(), body: stackBody(hooks.get(), view.npz) });
        return;
      }
      hover(event, true);
    });
    nodes.layers.addEventListener('keydown', (event) => {
      const tile = event.target.closest('.lv-map');
      if (!tile || (event.key !== 'Enter' && event.key !== ' ')) return;
      event.preventDefault();
      const unit = [Number(tile.dataset.layer), Number(tile.dataset.channel), Math.floor(Number(tile.dataset.h) / 2), Math.floor(Number(tile.dataset.w) / 2)];
      hooks.set({ lunit: unit });
      requestField(unit);
    });
  };

  bindEvents();
  Promise.all([api.get('/api/stack/presets'), api.get('/api/samples').catch(() => ({ samples: [] }))])
    .then(([presets, samples]) => {
      view.presets = presets.presets;
      view.samples = samples.samples.map((x) => x.name);
      nodes.preset.append(...view.presets.map((p) => el('option', { value: p.name, text: p.description })));
      syncControls();
      return run();
    })
    .catch((error) => say(error.message));
  syncControls();
  return { refresh: () => { syncControls(); run(); } };
}
