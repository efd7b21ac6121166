// convlens page entry point: owns the one state object, asks the API, and hands the answers to the pure
// rendering functions. Events are bound in controls.js only; nothing here is a global.
import { ApiError, Superseded, createApi } from './api.js';
import { bindControls } from './controls.js';
import { installDownloads } from './downloads.js';
import { pytorchCode } from './export.js';
import { installFollowers } from './followers.js';
import { filterWeights } from './kernels.js';
import { el, loadImage } from './render/common.js';
import { renderFilters } from './render/filters.js';
import { revealColumn } from './render/im2col.js';
import { drawInput, drawInputOverlay, outputsReading } from './render/input.js';
import { drawMapOverlays, drawMaps } from './render/maps.js';
import { renderShapePanel, renderWarnings } from './render/shape.js';
import { convGeometry, poolOutputSize, sliderBounds } from './shapes.js';
import {
  channelCount,
  defaultState,
  normaliseFilters,
  paddingSpec,
  poolSpec,
  queryFromState,
  stateFromQuery,
} from './state.js';

/** Keys whose change needs no new convolution (only views, highlights or follow-up requests). */
const VIEW_ONLY = new Set(['pos', 'up', 'target', 'seed', 'm', 'zoom', 'speed', 'tab', 'proj']);

/** Limits used until GET /api/limits answers (the contract's values). */
const FALLBACK_LIMITS = {
  max_kernel: 11,
  max_stride: 8,
  max_padding: 10,
  max_dilation: 5,
  max_filters: 8,
  max_side: 512,
  side_choices: [28, 64, 128, 256, 512],
};

/**
 * Build the page controller.
 * @param {Document} doc
 * @returns {Object} the app (passed to bindControls)
 */
function createApp(doc) {
  const $ = (id) => doc.getElementById(id);
  const api = createApi();
  const app = {
    api,
    state: stateFromQuery(window.location.search),
    limits: FALLBACK_LIMITS,
    presets: new Map(),
    presetNames: [],
    imageInfo: new Map(),
    inputSizes: new Map(),
    geometry: null,
    conv: null,
    convRequest: null,
    im2col: null,
    im2colSources: new Map(),
    heat: null,
    product: null,
    backward: null,
    explain: null,
    hoverInput: null,
    busy: 0,
    paints: 0,
    inputMarked: false,
    followTimer: 0,
    urlTimer: 0,
    playTimer: 0,
    networkMounted: false,
  };

  /** Count requests in flight on <body data-busy> (the browser tests wait for 0). */
  const track = async (promise) => {
    app.busy += 1;
    doc.body.dataset.busy = String(app.busy);
    try {
      return await promise;
    } finally {
      app.busy -= 1;
      doc.body.dataset.busy = String(app.busy);
    }
  };

  const status = (text) => {
    $('status').textContent = text;
  };

  const problem = (text) => {
    $('problem').hidden = !text;
    $('problem').textContent = text || '';
  };

  /** [H, W] the server computes on: known from an answer, else estimated from the image info. */
  const inputSize = () => {
    const s = app.state;
    const known = app.inputSizes.get(`${s.image}|${s.side}`);
    if (known) return known;
    const info = app.imageInfo.get(s.image);
    if (!info) return s.image.startsWith('mnist:') ? [28, 28] : [s.side, s.side];
    const longest = Math.max(info.width, info.height);
    if (longest <= s.side) return [info.height, info.width];
    const scale = s.side / longest;
    return [Math.max(1, Math.round(info.height * scale)), Math.max(1, Math.round(info.width * scale))];
  };

  const channelsPerFilter = () => channelCount(app.state) / app.state.groups;
  app.track = track;
  app.status = status;
  app.channelsPerFilter = channelsPerFilter;

  /** Clamp every slider into the range the shape rules allow for the current input. */
  app.clamp = () => {
    const s = app.state;
    normaliseFilters(s);
    s.side = Math.min(s.side, app.limits.max_side);
    const size = inputSize();
    for (let pass = 0; pass < 4; pass += 1) {
      const bounds = sliderBounds(s, size, app.limits);
      let changed = false;
      for (const key of ['dh', 'dw', 'kh', 'kw', 'pt', 'pb', 'pl', 'pr', 'pk', 'pp']) {
        const v = Math.min(bounds[key].max, Math.max(bounds[key].min, s[key]));
        if (v !== s[key]) {
          s[key] = v;
          changed = true;
        }
      }
      if (!bounds.groups.includes(s.groups)) {
        s.groups = 1;
        changed = true;
      }
      if (!changed) {
        app.bounds = bounds;
        break;
      }
    }
    const cg = channelsPerFilter();
    s.w = s.w.map((w) => (w && w.length !== cg * s.kh * s.kw ? null : w));
    s.k = s.k.map((name, f) => (name === 'custom' && !s.w[f] ? 'identity' : name));
    try {
      app.geometry = convGeometry([1, channelCount(s), ...size], [s.k.length, cg, s.kh, s.kw],
        [s.sh, s.sw], paddingSpec(s), [s.dh, s.dw], s.groups).window;
      problem('');
    } catch (error) {
      app.geometry = null;
      problem(error.message);
    }
    if (app.geometry) {
      const [oh, ow] = app.geometry.output;
      const [f, y, x] = s.pos;
      s.pos = [Math.min(f, s.k.length - 1), Math.min(y, oh - 1), Math.min(x, ow - 1)];
      if (s.pool !== 'none') {
        try {
          poolOutputSize([oh, ow], [s.pk, s.pk], [s.ps, s.ps], [s.pp, s.pp]);
        } catch (error) {
          problem(`${error.message}; choose a smaller pool size or no pooling`);
          app.geometry = null;
        }
      }
    }
  };

  /** The POST /api/conv body for the current state. */
  app.convBody = () => {
    const s = app.state;
    const weight = filterWeights(s, app.presets, channelsPerFilter());
    const [oh, ow] = app.geometry ? app.geometry.output : [1e9, 1];
    return {
      image: s.image,
      color: s.color,
      max_side: s.side,
      weight,
      bias: s.b.slice(),
      stride: [s.sh, s.sw],
      padding: paddingSpec(s),
      dilation: [s.dh, s.dw],
      groups: s.groups,
      activation: s.act,
      pool: poolSpec(s),
      values: oh * ow <= 64 * 64,
    };
  };

  /**
   * Write the state to the URL shortly after the last change (history.replaceState costs several ms in
   * Chromium, too much to pay on every slider step). Counted as busy until written.
   */
  app.writeUrl = () => {
    if (app.urlTimer) clearTimeout(app.urlTimer);
    else {
      app.busy += 1;
      doc.body.dataset.busy = String(app.busy);
    }
    app.urlTimer = setTimeout(() => {
      app.urlTimer = 0;
      const query = queryFromState(app.state);
      if (query !== window.location.search) window.history.replaceState(null, '', query);
      app.busy -= 1;
      doc.body.dataset.busy = String(app.busy);
    }, 250);
  };

  /** Mark the moment a user changed a control (the start of the latency measurement). */
  app.markInput = () => {
    performance.mark('convlens:input');
    app.inputMarked = true;
  };

  /**
   * Change the state. Geometry changes recompute; view-only changes redraw.
   * @param {Object} changes
   */
  app.set = (changes) => {
    const keys = Object.keys(changes);
    Object.assign(app.state, changes);
    if (keys.every((k) => VIEW_ONLY.has(k))) {
      app.clamp();
      app.sync();
      app.writeUrl();
      if (keys.includes('pos')) app.positionChanged();
      if (keys.some((k) => ['up', 'target', 'seed'].includes(k))) app.requestBackward();
      if (keys.some((k) => ['m', 'zoom'].includes(k))) app.drawIm2col(true);
      if (keys.includes('tab')) app.showTab();
      return;
    }
    app.refresh();
  };

  app.refresh = () => {
    app.clamp();
    // send first (fetch starts synchronously), then update the controls and the URL while it computes
    if (app.geometry) app.requestConv();
    else api.cancel('conv');
    app.sync();
    app.writeUrl();
  };

  /** Reflect the state in every control (values, ranges, disabled parts). */
  app.sync = () => {
    const s = app.state;
    const bounds = app.bounds || {};
    for (const input of doc.querySelectorAll('input[type=range][data-key]')) {
      const key = input.dataset.key;
      if (key === 'filters') {
        input.value = String(s.k.length);
      } else {
        if (bounds[key] && typeof bounds[key].max === 'number') {
          input.min = String(bounds[key].min);
          input.max = String(bounds[key].max);
        }
        input.value = String(s[key]);
      }
      const out = $(`${key}-out`);
      if (out) out.textContent = input.value;
      const reason = $(`${key}-why`);
      if (reason) reason.textContent = bounds[key]?.reason || '';
      input.setAttribute('aria-valuetext', `${input.value}${bounds[key] ? ` (allowed ${input.min} to ${input.max})` : ''}`);
    }
    const resolved = app.geometry ? app.geometry.padding : null;
    for (const [key, side] of [['pt', 'top'], ['pb', 'bottom'], ['pl', 'left'], ['pr', 'right']]) {
      const input = $(key);
      input.disabled = s.pad !== 'explicit';
      if (s.pad !== 'explicit' && resolved) $(`${key}-out`).textContent = String(resolved[side]);
    }
    for (const key of ['pk', 'ps', 'pp']) $(key).disabled = s.pool === 'none';
    $('pad').value = s.pad;
    $('act').value = s.act;
    $('pool').value = s.pool;
    $('target').value = s.target;
    $('target').disabled = s.pool === 'none';
    const side = $('side');
    if (![...side.options].some((o) => Number(o.value) === s.side)) {
      side.append(el('option', { value: String(s.side), text: `${s.side} px` }));
    }
    side.value = String(s.side);
    const groups = $('groups');
    const allowed = (bounds.groups || [1]).map(String);
    if ([...groups.options].map((o) => o.value).join() !== allowed.join()) {
      groups.replaceChildren(...allowed.map((g) => el('option', { value: g, text: g })));
    }
    groups.value = String(s.groups);
    for (const name of ['color', 'm', 'up']) {
      for (const radio of doc.querySelectorAll(`input[name=${name}]`)) radio.checked = radio.value === s[name];
    }
    doc.body.classList.toggle('projector', s.proj);
    $('projector').setAttribute('aria-pressed', String(s.proj));
    if (app.presets.size) {
      const weights = filterWeights(s, app.presets, channelsPerFilter());
      renderFilters($('filter-list'), s, weights, app.presetNames, app.presets, s.groups);
    }
    const [f, y, x] = s.pos;
    $('position').textContent = `selected: filter ${f}, output (${y}, ${x})`;
    const info = app.imageInfo.get(s.image);
    const size = inputSize();
    $('image-info').textContent =
      `${s.image.length > 40 ? `upload ${s.image.slice(0, 10)}…` : s.image}` +
      `${info && info.label !== undefined && info.label !== null ? ` (label ${info.label})` : ''}: ` +
      `${size[0]} × ${size[1]} × ${channelCount(s)}`;
  };

  /** POST /api/conv, then paint the input, maps and shape panel, then ask for the follow-up views. */
  app.requestConv = async () => {
    const body = app.convBody();
    let answer;
    try {
      const [f] = app.state.pos;
      const extra = channelsPerFilter() > 1 ? `&channels=${Math.min(f, body.weight.length - 1)}` : '';
      answer = await track(api.latest('conv', `/api/conv?pictures=levels&explain=${app.state.pos.join(',')}${extra}`, body));
    } catch (error) {
      if (error instanceof Superseded) return;
      problem(error instanceof ApiError ? error.message : `could not reach the server: ${error.message}`);
      return;
    }
    const [, , h, w] = answer.input.shape;
    const key = `${app.state.image}|${app.state.side}`;
    const known = app.inputSizes.get(key);
    app.inputSizes.set(key, [h, w]);
    if (!known || known[0] !== h || known[1] !== w) {
      const before = queryFromState(app.state);
      app.clamp();
      app.sync();
      if (queryFromState(app.state) !== before) {
        app.refresh();
        return;
      }
    }
    app.conv = answer;
    app.convRequest = body;
    await app.paintConv();
    clearTimeout(app.followTimer);
    app.followTimer = setTimeout(() => app.requestFollowers(), 60);
  };

  app.paintConv = async () => {
    const answer = app.conv;
    const s = app.state;
    const geometry = app.geometry;
    const count = answer.conv.maps.length;
    const target = (s.proj ? 1.15 : 1) * (count === 1 ? 330 : count === 2 ? 250 : 170);
    const [image] = await Promise.all([
      loadImage(answer.input.png),
      drawMaps($('maps'), answer.conv, 'map', target),
      answer.pool ? drawMaps($('pooled'), answer.pool, 'pool', target * 0.7) : Promise.resolve(),
    ]);
    if (!answer.pool) $('pooled').replaceChildren();
    $('h-pooled').hidden = !answer.pool;
    app.paints += 1;
    $('maps').dataset.paints = String(app.paints);
    if (app.inputMarked) {
      performance.measure('convlens:slider-to-map', 'convlens:input');
      app.inputMarked = false;
    }
    drawInput($('input-canvas'), image, geometry);
    $('maps-shape').textContent = answer.conv.shape.join(' × ');
    $('pooled-shape').textContent = answer.pool ? `${answer.pool.mode} ${answer.pool.shape.join(' × ')}` : '';
    const [ur, uc] = geometry.uncovered;
    const p = geometry.padding;
    $('input-note').textContent =
      `${geometry.height} × ${geometry.width} input, padded to ${geometry.padded[0]} × ${geometry.padded[1]} ` +
      `(top ${p.top}, bottom ${p.bottom}, left ${p.left}, right ${p.right}).` +
      (ur || uc ? ` ${ur} row(s) and ${uc} column(s) at the bottom/right are reached by no window (grey).` : '');
    renderShapePanel($('shape'), answer);
    renderWarnings($('warnings'), answer.warnings || []);
    $('code').value = pytorchCode(app.convRequest, answer.padding);
    app.drawOverlays();
  };

  /** Redraw every highlight: receptive field, selected pixel, fed outputs. */
  app.drawOverlays = () => {
    const geometry = app.geometry;
    if (!geometry || !app.conv) return;
    drawInputOverlay($('input-overlay'), geometry, { position: app.state.pos, hoverInput: app.hoverInput });
    let fed = null;
    if (app.hoverInput) {
      const [r, c] = app.hoverInput;
      const [oh, ow] = geometry.output;
      fed = {
        rows: outputsReading(r, geometry.kernel[0], geometry.stride[0], geometry.dilation[0], oh),
        cols: outputsReading(c, geometry.kernel[1], geometry.stride[1], geometry.dilation[1], ow),
      };
    }
    drawMapOverlays($('maps'), { selected: app.state.pos, fed });
    if (app.conv.pool) {
      const [f, y, x] = app.state.pos;
      const [, , ph, pw] = app.conv.pool.shape;
      const { ps, pp } = app.state;
      const pooled = [f, Math.min(ph - 1, Math.floor((y + pp) / ps)), Math.min(pw - 1, Math.floor((x + pp) / ps))];
      drawMapOverlays($('pooled'), { selected: pooled, fed: null });
    }
    return fed;
  };

  /** The selected output moved (hover, click, step): highlight everywhere and explain it. */
  app.positionChanged = () => {
    const [f, y, x] = app.state.pos;
    $('position').textContent = `selected: filter ${f}, output (${y}, ${x})`;
    app.drawOverlays();
    if (app.im2col) {
      revealColumn($('im2col-scroll'), y * app.im2col.out_size[1] + x, app.state.zoom);
      app.drawIm2col();
    }
    app.requestExplain();
    if (app.state.up === 'onehot') app.requestBackward();
    if (app.channelsFilter !== null && app.channelsFilter !== undefined && app.channelsFilter !== f) app.requestChannels();
  };

  /**
   * Hovering the input: show every output the pixel feeds and its overlap count.
   * @param {number[]|null} cell padded [row, col]
   */
  app.hoverInputAt = (cell) => {
    app.hoverInput = cell;
    const fed = app.drawOverlays();
    if (!cell || !fed) {
      $('input-hover').textContent = '';
      return;
    }
    const p = app.geometry.padding;
    const [r, c] = cell;
    const inside = r >= p.top && r < p.top + app.geometry.height && c >= p.left && c < p.left + app.geometry.width;
    $('input-hover').textContent =
      `padded (${r}, ${c})${inside ? ` = input (${r - p.top}, ${c - p.left})` : ' is padding'}: read by ` +
      `${fed.rows.length * fed.cols.length} output position(s) per filter (overlap count)` +
      (fed.rows.length ? `, rows ${fed.rows[0]}–${fed.rows.at(-1)}, columns ${fed.cols[0] ?? '–'}–${fed.cols.at(-1) ?? '–'}` : '');
  };

  /** Advance the selected position one step in raster order. */
  app.step = () => {
    if (!app.geometry) return;
    const [oh, ow] = app.geometry.output;
    let [f, y, x] = app.state.pos;
    x += 1;
    if (x >= ow) {
      x = 0;
      y += 1;
    }
    if (y >= oh) y = 0;
    app.set({ pos: [f, y, x] });
  };

  app.togglePlay = (play = !app.playTimer) => {
    clearInterval(app.playTimer);
    app.playTimer = 0;
    if (play) app.playTimer = setInterval(app.step, 1000 / app.state.speed);
    $('play').setAttribute('aria-pressed', String(Boolean(play)));
    $('play').textContent = play ? '❚❚ Pause' : '▶ Play';
  };

  /** Show the selected tab; mount the network view lazily the first time. */
  app.showTab = () => {
    const network = app.state.tab === 'network';
    $('conv-view').hidden = network;
    $('network-view').hidden = !network;
    for (const tab of doc.querySelectorAll('[role=tab]')) {
      const selected = tab.dataset.tab === app.state.tab;
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
    }
    if (network && !app.networkMounted) {
      app.networkMounted = true;
      const css = el('link', { rel: 'stylesheet', href: '/static/css/network.css' });
      doc.head.append(css);
      import('./network_view.js')
        .then((module) => module.mountNetworkView($('network-view'), api))
        .catch((error) => {
          $('network-view').replaceChildren(el('p', { class: 'problem', text: `The network view is not available: ${error.message}` }));
        });
    }
  };

  /**
   * Open a learned filter from the network view in the convolution view (28×28 → 24×24 → 12×12).
   * @param {{weights: number[][], image: string|null, index: number}} detail
   */
  app.openFilter = (detail) => {
    const flat = detail.weights.flat();
    app.set({
      tab: 'conv',
      image: detail.image || app.state.image,
      color: 'gray',
      kh: detail.weights.length,
      kw: detail.weights[0].length,
      sh: 1, sw: 1, dh: 1, dw: 1,
      pad: 'valid',
      groups: 1,
      act: 'relu',
      k: ['custom'],
      w: [flat],
      b: [typeof detail.bias === 'number' ? detail.bias : 0],
      pool: 'max', pk: 2, ps: 2, pp: 0,
      pos: [0, 0, 0],
    });
    app.showTab();
    status(`Opened learned filter ${detail.index} of the network.`);
  };

  /**
   * Upload a file and show it.
   * @param {Blob} file
   */
  app.upload = async (file) => {
    status('uploading…');
    try {
      const info = await track(api.upload(file));
      app.imageInfo.set(info.id, info);
      status(`uploaded ${info.original_width} × ${info.original_height}${info.downscaled ? `, stored at ${info.width} × ${info.height}` : ''}`);
      app.set({ image: info.id, pos: [0, 0, 0] });
    } catch (error) {
      status(`upload failed: ${error.message}`);
    }
  };

  /** Choose an image by id (fetches its info for the size estimate first). */
  app.chooseImage = async (id) => {
    if (!app.imageInfo.has(id)) {
      try {
        app.imageInfo.set(id, await api.get(`/api/images/${encodeURIComponent(id)}`));
      } catch (error) {
        status(error.message);
      }
    }
    app.set({ image: id, pos: [0, 0, 0] });
  };

  installFollowers(app, doc);
  installDownloads(app, doc);

  /** Load limits, presets and the image info, then draw the opening view. */
  app.start = async () => {
    app.sync();
    const [limits, kernels, info] = await Promise.all([
      api.get('/api/limits').catch(() => FALLBACK_LIMITS),
      api.get('/api/kernels'),
      api.get(`/api/images/${encodeURIComponent(app.state.image)}`).catch(() => null),
    ]);
    app.limits = { ...FALLBACK_LIMITS, ...limits };
    const choices = [...new Set([...app.limits.side_choices, app.state.side])].sort((a, b) => a - b);
    $('side').replaceChildren(...choices.map((v) => el('option', { value: String(v), text: `${v} px` })));
    for (const kernel of kernels.kernels) app.presets.set(kernel.name, kernel);
    app.presetNames = kernels.kernels.map((k) => k.name);
    if (info) app.imageInfo.set(app.state.image, info);
    else if (app.state.image !== defaultState().image) {
      status(`Image ${app.state.image} is not available here; showing the default digit.`);
      app.state.image = defaultState().image;
    }
    app.state.k = app.state.k.map((name) => (name === 'custom' || app.presets.has(name) ? name : 'identity'));
    app.showTab();
    app.refresh();
  };

  return app;
}

const app = createApp(document);
bindControls(document, app);
app.start().catch((error) => {
  document.getElementById('status').textContent = `The page could not start: ${error.message}`;
});
