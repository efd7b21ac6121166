// convlens page entry point: owns the one state object, asks the API, and hands the answers to the pure
// rendering functions. Events are bound in controls.js only; nothing here is a global.
import { ApiError, Superseded, createApi } from './api.js';
import { bindControls, syncControls } from './controls.js';
import { mountAlgorithms } from './algorithms_view.js';
import { installAnimationDownload } from './animation_download.js';
import { installDownloads } from './downloads.js';
import { pytorchCode } from './export.js';
import { describeChanges, fitToInput, kernelSize } from './fit.js';
import { borderIndex, borderLegend, borderProblem } from './render/border.js';
import { installFollowers } from './followers.js';
import { filterWeights, refitFlat } from './kernels.js';
import { el, loadImage } from './render/common.js';
import { renderFilters } from './render/filters.js';
import { LABEL_H, LABEL_W, revealColumn } from './render/im2col.js';
import { drawInput, drawInputOverlay, outputsReading } from './render/input.js';
import { drawMapOverlays, drawMaps } from './render/maps.js';
import { renderShapePanel, renderWarnings } from './render/shape.js';
import { markSelected } from './render/source.js';
import { convGeometry, poolOutputSize, sliderBounds } from './shapes.js';
import {
  channelCount,
  defaultState,
  isActivation,
  normaliseFilters,
  paddingSpec,
  poolSpec,
  queryFromState,
  readQuery,
} from './state.js';

/** Keys whose change needs no new convolution (only views, highlights or follow-up requests). */
const VIEW_ONLY = new Set(['pos', 'up', 'target', 'seed', 'm', 'zoom', 'speed', 'tab', 'proj', 'nd', 'draw', 'stack', 'lw', 'lunit', 'lo', 'le', 'lsrc']);

/** sessionStorage key of projector mode (kept per browser tab, never in a link). */
const PROJECTOR_KEY = 'convlens:projector';

/**
 * The state a link asks for, with its notes; projector mode comes from the link only when the link says so
 * (a teacher's bookmark), else from this browser tab's last choice.
 * @param {string} search
 * @returns {{state: Object, notes: string[]}}
 */
function initialState(search) {
  const read = readQuery(search);
  if (!new URLSearchParams(search).has('proj')) {
    try {
      read.state.proj = window.sessionStorage.getItem(PROJECTOR_KEY) === '1';
    } catch {
      read.state.proj = false;
    }
  }
  return read;
}

/** Limits used until GET /api/limits answers (the contract's values). */
const FALLBACK_LIMITS = {
  max_kernel: 11,
  max_stride: 8,
  max_padding: 10,
  max_dilation: 5,
  max_filters: 16,
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
  const opening = initialState(window.location.search);
  const app = {
    api,
    state: opening.state,
    openingNotes: opening.notes,
    pinned: false,
    lastGood: null,
    limits: FALLBACK_LIMITS,
    presets: new Map(),
    presetNames: [],
    imageInfo: new Map(),
    inputSizes: new Map(),
    /** The input picture last drawn: {key: 'image|max_side|color', png: data URL, image: Promise<Image>}. */
    inputPicture: null,
    /** Whether a follow-up view is on screen (followers.js); every view counts as on screen until then. */
    viewOnScreen: () => true,
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

  /**
   * Mark the maps (and the views that follow them) as showing older settings than the controls, or not.
   * @param {boolean} stale
   */
  app.setStale = (stale) => {
    $('stale').hidden = !stale;
    $('stale').textContent = app.conv
      ? 'not updated: the map shows the last settings that fit'
      : 'no map: these settings do not fit the input';
    $('views').classList.toggle('is-stale', stale);
    doc.body.dataset.stale = String(stale);
  };

  /**
   * Add a note that stays until dismissed: what the page changed, and why (it never changes a setting silently).
   * @param {string} text
   */
  app.note = (text) => {
    const list = $('notice-list');
    if ([...list.children].some((li) => li.textContent === text)) return;
    list.append(el('li', { text }));
    $('notice').hidden = false;
  };
  app.clearNotes = () => {
    $('notice-list').replaceChildren();
    $('notice').hidden = true;
  };

  /** [H, W] the server computes on: known from an answer, else estimated from the image info. */
  const inputSize = () => {
    const s = app.state;
    const known = app.inputSizes.get(`${s.image}|${s.side}`);
    if (known) return known;
    const info = app.imageInfo.get(s.image);
    if (!info) return s.image.startsWith('mnist:') ? [28, 28] : [s.side, s.side];
    if (isActivation(s.image)) return [info.height, info.width]; // an activation is never resized
    const longest = Math.max(info.width, info.height);
    if (longest <= s.side) return [info.height, info.width];
    const scale = s.side / longest;
    return [Math.max(1, Math.round(info.height * scale)), Math.max(1, Math.round(info.width * scale))];
  };

  const channelsPerFilter = () => channelCount(app.state) / app.state.groups;
  app.track = track;
  app.status = status;
  app.channelsPerFilter = channelsPerFilter;

  /**
   * Check the settings against the current input. Nothing is changed: where the settings no longer fit (a
   * new image or downscale size, a link), the page keeps them, shows the shape rules' sentence and offers a
   * one-click fix; the map is marked "not updated" until it is recomputed.
   */
  app.clamp = () => {
    const s = app.state;
    normaliseFilters(s);
    s.side = Math.min(s.side, app.limits.max_side);
    const size = inputSize();
    app.bounds = sliderBounds(s, size, app.limits);
    const cg = channelsPerFilter();
    if (Number.isInteger(cg)) {
      s.w.forEach((w, f) => {
        if (w && w.length !== cg * s.kh * s.kw) {
          app.note(`Filter ${f}'s own numbers (${w.length}) do not fill a ${cg} × ${s.kh} × ${s.kw} kernel, so the identity kernel is used instead.`);
          s.w[f] = null;
          s.k[f] = 'identity';
        }
      });
    }
    let message = '';
    try {
      app.geometry = convGeometry([1, channelCount(s), ...size], [s.k.length, cg, s.kh, s.kw],
        [s.sh, s.sw], paddingSpec(s), [s.dh, s.dw], s.groups).window;
      borderProblem(s.pm, app.geometry.padding, size);
    } catch (error) {
      app.geometry = null;
      message = error.message;
    }
    if (app.geometry) {
      const [oh, ow] = app.geometry.output;
      const [f, y, x] = s.pos;
      s.pos = [Math.min(f, s.k.length - 1), Math.min(y, oh - 1), Math.min(x, ow - 1)];
      if (s.pool !== 'none') {
        try {
          poolOutputSize([oh, ow], [s.pk, s.pk], [s.ps, s.ps], [s.pp, s.pp]);
        } catch (error) {
          message = `${error.message}; choose a smaller pool size or no pooling`;
          app.geometry = null;
        }
      }
    }
    app.showProblem(message, size);
  };

  /**
   * Show why the settings do not fit (or that they do), with the one-click fixes.
   * @param {string} message  '' when everything fits
   * @param {number[]} size   [H, W] of the input
   */
  app.showProblem = (message, size) => {
    const s = app.state;
    problem(message);
    const fix = $('fix');
    if (!message) {
      fix.hidden = true;
      fix.replaceChildren();
      app.lastGood = { image: s.image, side: s.side };
      return;
    }
    app.setStale(true);
    const buttons = [];
    const changes = fitToInput(s, size, app.bounds.groups);
    if (Object.keys(changes).length) {
      const words = describeChanges(s, changes);
      const button = el('button', { type: 'button', id: 'fix-fit', text: `Fit to this ${size[0]} × ${size[1]} input: ${words}` });
      button.addEventListener('click', () => {
        app.markInput();
        app.set(app.withRefit(changes));
        status(`Changed ${words} so that the settings fit the ${size[0]} × ${size[1]} input.`);
      });
      buttons.push(button);
    }
    const good = app.lastGood;
    if (good && (good.image !== s.image || good.side !== s.side)) {
      const what = good.image !== s.image ? `image ${good.image.length > 40 ? 'upload' : good.image}` : '';
      const side = good.side !== s.side ? `${good.side} px` : '';
      const button = el('button', { type: 'button', id: 'fix-back', text: `Back to ${[what, side].filter(Boolean).join(' at ')}` });
      button.addEventListener('click', () => {
        app.markInput();
        app.set({ image: good.image, side: good.side });
        for (const grid of [$('mnist-grid'), $('sample-list')]) markSelected(grid, good.image);
      });
      buttons.push(button);
    }
    fix.replaceChildren(...buttons);
    fix.hidden = !buttons.length;
  };

  /**
   * Add the custom weights refitted to a new kernel size or channel count to a set of changes.
   * @param {Object} changes  may hold kh, kw, groups
   * @returns {Object} changes plus `w` when a custom filter had to be refitted
   */
  app.withRefit = (changes) => {
    const s = app.state;
    const c = channelCount(s);
    const before = c / s.groups;
    const after = c / (changes.groups ?? s.groups);
    const kh = changes.kh ?? s.kh;
    const kw = changes.kw ?? s.kw;
    if (!s.w.some(Boolean) || (kh === s.kh && kw === s.kw && before === after)) return changes;
    const w = s.w.map((flat) => (flat ? refitFlat(flat, before, s.kh, s.kw, after, kh, kw) : null));
    return { ...changes, w };
  };

  /**
   * Choose a preset for filter f. A preset brings its own size: with one filter the kernel takes the preset's
   * size; with several (one shared size) the kernel grows to hold it and the others are zero-padded. Any size
   * change is announced.
   * @param {number} f
   * @param {string} name  a preset name
   */
  app.choosePreset = (f, name) => {
    const s = app.state;
    const preset = app.presets.get(name);
    const k = s.k.slice();
    const w = s.w.slice();
    k[f] = name;
    w[f] = null;
    let changes = { k, w };
    if (preset) {
      const [ph, pw] = kernelSize(preset.weights);
      let kh = ph;
      let kw = pw;
      if (s.k.length > 1) {
        // the other filters keep their size: the shared size is the largest any of them needs
        s.k.forEach((other, i) => {
          if (i === f) return;
          const size = other === 'custom' || !app.presets.has(other) ? [s.kh, s.kw] : kernelSize(app.presets.get(other).weights);
          kh = Math.max(kh, size[0]);
          kw = Math.max(kw, size[1]);
        });
      }
      if (kh !== s.kh || kw !== s.kw) {
        const refit = app.withRefit({ kh, kw });
        if (refit.w) refit.w[f] = null;
        changes = { ...changes, ...refit, k, w: refit.w || w };
        app.note(
          `${name} is ${ph} × ${pw}, so the kernel size changed from ${s.kh} × ${s.kw} to ${kh} × ${kw}` +
            (s.k.length > 1 ? ' (all filters share one size; the smaller ones are centred in it, with zeros around).' : '.'),
        );
      }
    }
    app.set(changes);
  };

  /** The POST /api/conv body for the current state. */
  app.convBody = () => {
    const s = app.state;
    const weight = filterWeights(s, app.presets, channelsPerFilter());
    const [oh, ow] = app.geometry ? app.geometry.output : [1e9, 1];
    return {
      image: s.image,
      color: s.color,
      max_side: isActivation(s.image) ? null : s.side, // an activation is used as stored
      weight,
      bias: s.b.slice(),
      stride: [s.sh, s.sw],
      padding: paddingSpec(s),
      padding_mode: s.pm,
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
    const s = app.state;
    if (s.lo >= 0 && !('lo' in changes) && ['k', 'w', 'b'].some((k) => k in changes)) {
      changes = { ...changes, le: true }; // the filters are no longer the opened layer's: the link keeps them
    }
    if ('image' in changes && !('lo' in changes) && !isActivation(changes.image) && (s.lo >= 0 || s.lsrc)) {
      changes = { ...changes, lo: -1, le: false, lsrc: '' }; // another image: no layer is open any more
    } else if (s.lo >= 0 && !('lo' in changes) && ['stack', 'lw', 'color', 'side'].some((k) => k in changes && changes[k] !== s[k])) {
      // the stack a link would rebuild the layer from has changed: the link keeps this layer's filters instead
      changes = { ...changes, lo: -1, le: false };
    }
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
          // a kept setting outside today's range stays visible (the problem line says why)
          input.min = String(Math.min(bounds[key].min, s[key]));
          input.max = String(Math.max(bounds[key].max, s[key]));
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
    const allowed = [...new Set([...(bounds.groups || [1]), s.groups])].sort((a, b) => a - b).map(String);
    if ([...groups.options].map((o) => o.value).join() !== allowed.join()) {
      const possible = (bounds.groups || [1]).map(String);
      groups.replaceChildren(...allowed.map((g) => el('option', { value: g, text: possible.includes(g) ? g : `${g} (not possible here)` })));
    }
    groups.value = String(s.groups);
    for (const name of ['color', 'm', 'up']) {
      for (const radio of doc.querySelectorAll(`input[name=${name}]`)) radio.checked = radio.value === s[name];
    }
    doc.body.classList.toggle('projector', s.proj);
    try {
      window.sessionStorage.setItem(PROJECTOR_KEY, s.proj ? '1' : '0');
    } catch {
      // storage may be disabled: projector mode then lasts until the page is reloaded
    }
    $('projector').setAttribute('aria-pressed', String(s.proj));
    if (app.presets.size) {
      const weights = filterWeights(s, app.presets, channelsPerFilter());
      renderFilters($('filter-list'), s, weights, app.presetNames, app.presets, s.groups);
    }
    syncControls(doc, app);
    app.showPosition();
    const info = app.imageInfo.get(s.image);
    const size = inputSize();
    const name = isActivation(s.image)
      ? `the real input of layer ${s.lo >= 0 ? s.lo : '?'} of the stack (activation ${s.image.slice(4, 14)}…, ` +
        `drawn as the mean of its ${channelCount(s)} channels)`
      : s.image.length > 40 ? `upload ${s.image.slice(0, 10)}…` : s.image;
    $('image-info').textContent =
      `${name}` +
      `${info && info.label !== undefined && info.label !== null ? ` (label ${info.label})` : ''}: ` +
      `${size[0]} × ${size[1]} × ${channelCount(s)}`;
  };

  /** POST /api/conv, then paint the input, maps and shape panel, then ask for the follow-up views. */
  app.requestConv = async () => {
    const body = app.convBody();
    const inputKey = `${body.image}|${body.max_side}|${body.color}`;
    let answer;
    try {
      const [f] = app.state.pos;
      // the per-channel view rides along with the maps only while it is on screen (else it is filled in
      // by its own request once the page is quiet); the input picture is sent once per image and size
      const channels = channelsPerFilter() > 1 && app.viewOnScreen('channels');
      const extra = (channels ? `&channels=${Math.min(f, body.weight.length - 1)}` : '') +
        (app.inputPicture?.key === inputKey ? '&input=shape' : '');
      answer = await track(api.latest('conv', `/api/conv?pictures=levels&explain=${app.state.pos.join(',')}${extra}`, body));
    } catch (error) {
      if (error instanceof Superseded) return;
      problem(error instanceof ApiError ? error.message : `could not reach the server: ${error.message}`);
      app.setStale(true);
      return;
    }
    if (answer.input.png === null) {
      if (app.inputPicture?.key !== inputKey) {
        app.inputPicture = null; // cannot happen (only an accepted answer sets it), but never draw a wrong input
        return app.requestConv();
      }
      answer.input.png = app.inputPicture.png;
    } else if (app.inputPicture?.png !== answer.input.png) {
      app.inputPicture = { key: inputKey, png: answer.input.png, image: loadImage(answer.input.png) };
    }
    const [, , h, w] = answer.input.shape;
    const key = `${app.state.image}|${app.state.side}`;
    const known = app.inputSizes.get(key);
    app.inputSizes.set(key, [h, w]);
    if (!known || known[0] !== h || known[1] !== w) {
      // the estimate of the input size was off: check the (unchanged) settings against the real size
      app.clamp();
      app.sync();
      if (!app.geometry) return;
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
      app.inputPicture?.png === answer.input.png ? app.inputPicture.image : loadImage(answer.input.png),
      drawMaps($('maps'), answer.conv, 'map', target),
      answer.pool ? drawMaps($('pooled'), answer.pool, 'pool', target * 0.7) : Promise.resolve(),
    ]);
    if (!answer.pool) $('pooled').replaceChildren();
    if (!$('problem').textContent) app.setStale(false);
    $('h-pooled').hidden = !answer.pool;
    app.paints += 1;
    $('maps').dataset.paints = String(app.paints);
    if (app.inputMarked) {
      performance.measure('convlens:slider-to-map', 'convlens:input');
      app.inputMarked = false;
    }
    drawInput($('input-canvas'), image, geometry, s.pm);
    $('pad-legend').textContent = borderLegend(s.pm);
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
    drawMapOverlays($('maps'), { selected: app.state.pos, fed, pinned: app.pinned });
    if (app.conv.pool) {
      const [f, y, x] = app.state.pos;
      const [, , ph, pw] = app.conv.pool.shape;
      const { ps, pp } = app.state;
      const pooled = [f, Math.min(ph - 1, Math.floor((y + pp) / ps)), Math.min(pw - 1, Math.floor((x + pp) / ps))];
      drawMapOverlays($('pooled'), { selected: pooled, fed: null });
    }
    return fed;
  };

  /** Say which output pixel is selected, and whether it is pinned. */
  app.showPosition = () => {
    const [f, y, x] = app.state.pos;
    $('position').textContent = app.pinned
      ? `pinned: filter ${f}, output (${y}, ${x}) (click it again or press Esc to release)`
      : `selected: filter ${f}, output (${y}, ${x})`;
    $('maps').dataset.pinned = String(app.pinned);
  };

  /**
   * Pin (or release) the selected output pixel: while pinned, hovering does not move the selection.
   * @param {boolean} pinned
   */
  app.pin = (pinned) => {
    app.pinned = pinned;
    app.showPosition();
    app.drawOverlays();
  };

  /** The selected output moved (hover, click, step): highlight everywhere and explain it. */
  app.positionChanged = () => {
    const [f, y, x] = app.state.pos;
    app.showPosition();
    app.drawOverlays();
    if (app.im2col) {
      const column = y * app.im2col.out_size[1] + x;
      if (app.im2colCell) {
        app.im2colCell = [app.im2colCell[0], column];
        $('im2col-hover').textContent = app.im2colReadout(app.im2colCell);
      }
      revealColumn($('im2col-scroll'), column, app.state.zoom);
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
    const g = app.geometry;
    const mode = app.state.pm;
    const sr = borderIndex(g.height, p.top, p.bottom, mode)[r];
    const sc = borderIndex(g.width, p.left, p.right, mode)[c];
    const what = inside
      ? ` = input (${r - p.top}, ${c - p.left})`
      : mode === 'zeros' ? ' is padding (0)' : ` is ${mode} padding, a copy of input (${sr}, ${sc})`;
    $('input-hover').textContent =
      `padded (${r}, ${c})${what}: read by ` +
      `${fed.rows.length * fed.cols.length} output position(s) per filter (overlap count)` +
      (fed.rows.length ? `, rows ${fed.rows[0]}–${fed.rows.at(-1)}, columns ${fed.cols[0] ?? '–'}–${fed.cols.at(-1) ?? '–'}` : '') +
      (app.inputPinned ? ' (pinned: tap it again or press Esc to release)' : '');
    $('input-hover').dataset.cell = `${r},${c}`;
    $('input-hover').dataset.count = String(fed.rows.length * fed.cols.length);
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
    if (app.state.tab === 'layers') app.mountLayers();
    for (const tab of doc.querySelectorAll('[role=tab]')) {
      const selected = tab.dataset.tab === app.state.tab;
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
      $(tab.getAttribute('aria-controls')).hidden = !selected;
    }
    if (network && !app.networkMounted) {
      app.networkMounted = true;
      const css = el('link', { rel: 'stylesheet', href: '/static/css/network.css' });
      doc.head.append(css);
      import('./network_view.js')
        .then((module) => module.mountNetworkView($('network-view'), api, {
          digit: app.state.nd,
          drawing: app.state.draw,
          onChange: (changes) => app.set(changes),
        }))
        .catch((error) => {
          $('network-view').replaceChildren(el('p', { class: 'problem', text: `The network view is not available: ${error.message}` }));
        });
    }
  };

  /** Mount the Layers view (static/js/layers_view.js) the first time its tab is shown. */
  app.mountLayers = () => {
    if (app.layersMounted) return;
    app.layersMounted = true;
    doc.head.append(el('link', { rel: 'stylesheet', href: '/static/css/layers.css' }));
    const hooks = { get: () => app.state, set: (changes) => app.set(changes), openConv: app.openLayer };
    import('./layers_view.js')
      .then((module) => module.mountLayersView($('layers-view'), api, hooks))
      .catch((error) => {
        $('layers-view').replaceChildren(el('p', { class: 'problem', text: `The layers view is not available: ${error.message}` }));
      });
  };

  /**
   * Why a Conv2d cannot be shown by the convolution view (its limits: filters, kernel, stride, dilation,
   * padding, groups), or '' when it can.
   * @param {Object} conv  the `conv` of a POST /api/stack/activation answer
   * @returns {string}
   */
  const layerLimit = (conv) => {
    const lim = app.limits;
    const [kh, kw] = conv.kernel_size;
    const checks = [
      [conv.out_channels <= lim.max_filters, `it has ${conv.out_channels} filters, the convolution view shows at most ${lim.max_filters}`],
      [Math.max(kh, kw) <= lim.max_kernel, `its kernel is ${kh} × ${kw}, the convolution view allows at most ${lim.max_kernel} × ${lim.max_kernel}`],
      [Math.max(...conv.stride) <= lim.max_stride, `its stride is ${conv.stride.join(' × ')}, at most ${lim.max_stride} is allowed`],
      [Math.max(...conv.dilation) <= lim.max_dilation, `its dilation is ${conv.dilation.join(' × ')}, at most ${lim.max_dilation} is allowed`],
      [Math.max(...conv.padding) <= lim.max_padding, `its padding is ${conv.padding.join(', ')} (top, bottom, left, right), at most ${lim.max_padding} is allowed`],
      [conv.groups <= 8, `it has ${conv.groups} groups, the convolution view allows at most 8`],
    ];
    const failed = checks.find(([ok]) => !ok);
    return failed ? failed[1] : '';
  };

  /**
   * The convolution view's pooling for the stack's pooling layer after an opened Conv2d (and its ReLU), when
   * the view can show it: square, no dilation, floor mode, padded zeros counted (avg), within its sliders.
   * @param {Object|null} pool  `conv.pool_after` of POST /api/stack/activation
   * @returns {{pool: string, pk?: number, ps?: number, pp?: number}}
   */
  const layerPool = (pool) => {
    if (!pool) return { pool: 'none' };
    const [k, k2] = pool.kernel_size;
    const [st, st2] = pool.stride;
    const [p, p2] = pool.padding;
    const shown = k === k2 && st === st2 && p === p2 && pool.dilation.every((d) => d === 1) && !pool.ceil_mode
      && pool.count_include_pad && k <= 8 && st <= 8 && p <= Math.min(4, Math.floor(k / 2));
    return shown ? { pool: pool.mode, pk: k, ps: st, pp: p } : { pool: 'none' };
  };

  /**
   * The settings of the convolution view that show an opened layer (POST /api/stack/activation's answer).
   * @param {Object} answer
   * @param {boolean} withWeights  also its filters (k, w, b)
   * @returns {Object} state changes
   */
  const layerSettings = (answer, withWeights) => {
    const cv = answer.conv;
    const [pt, pb, pl, pr] = cv.padding;
    const changes = {
      ...layerInput(answer),
      kh: cv.kernel_size[0], kw: cv.kernel_size[1], sh: cv.stride[0], sw: cv.stride[1], dh: cv.dilation[0], dw: cv.dilation[1],
      pad: 'explicit', pt, pb, pl, pr, pm: 'zeros', groups: cv.groups, act: cv.relu_after ? 'relu' : 'none',
      ...layerPool(cv.pool_after),
    };
    if (!withWeights) return changes;
    return {
      ...changes,
      k: cv.weight.map(() => 'custom'),
      w: cv.weight.map((filter) => filter.flat(2)),
      b: cv.bias ? cv.bias.slice() : cv.weight.map(() => 0),
    };
  };

  /**
   * The input of an opened layer: layer 0 reads the image itself (shown as the image, at the Layers view's
   * size); a deeper layer reads the stored activation ('act:…', C channels).
   * @param {Object} answer  POST /api/stack/activation's answer
   * @returns {Object} state changes
   */
  const layerInput = (answer) => {
    if (answer.layer === 0 && app.openedFrom) {
      return { image: app.openedFrom.image, side: app.openedFrom.max_side, color: app.openedFrom.color };
    }
    return { image: answer.id, lc: answer.shape[0] };
  };

  /** Remember an activation's size and channels (as GET /api/images/{id} would say). */
  const knowActivation = (answer) => {
    const [c, h, w] = answer.shape;
    app.imageInfo.set(answer.id, {
      id: answer.id, kind: 'activation', width: w, height: h, channels: c,
      original_width: w, original_height: h, downscaled: false, label: null,
    });
  };

  /**
   * Open a Conv2d of the Layers view in the convolution view on its real input. POST /api/stack/activation
   * runs the stack up to the layer and stores its input (the previous layer's activation, C channels) as an
   * 'act:…' image; the convolution view then computes the layer on it with the layer's own weights (custom
   * filters), bias, stride, padding, dilation, groups, and ReLU when the stack's next layer is one, so every
   * single-layer view (maps, im2col, GEMM, explain, backward, per-channel view, code) shows that layer.
   * A layer beyond the convolution view's limits is not opened: the status line says which limit.
   * @param {{layer: Object, body: Object}} detail  the layer's entry of POST /api/stack; the stack request
   * @returns {Promise<boolean>} whether the layer was opened
   */
  app.openLayer = async ({ layer, body }) => {
    const index = layer.index;
    status(`Opening layer ${index}…`);
    let answer;
    try {
      answer = await track(api.post('/api/stack/activation', { ...body, layer: index }));
    } catch (error) {
      status(`Layer ${index} could not be opened: ${error.message}`);
      return false;
    }
    const why = layerLimit(answer.conv);
    if (why) {
      status(`Layer ${index} cannot be opened in the convolution view: ${why}.`);
      return false;
    }
    knowActivation(answer);
    app.openedFrom = body;
    // with weights from an uploaded .npz the stack cannot be rebuilt from the link: the link keeps the filters
    const rebuildable = !body.weights || body.weights.source !== 'npz';
    app.set({
      ...layerSettings(answer, true), tab: 'conv', lsrc: body.image, lo: rebuildable ? index : -1, le: false, pos: [0, 0, 0],
    });
    app.showTab();
    doc.defaultView.scrollTo(0, 0); // the convolution view from its top, not where the Layers view was scrolled
    const [c, h, w] = answer.shape;
    status(`Opened layer ${index} of the stack on its real input: ${c} channel${c === 1 ? '' : 's'} of ${h} × ${w}` +
      `${index ? ` (the output of layer ${index - 1})` : ' (the image)'}.`);
    return true;
  };

  /**
   * A link to an opened layer: run the stack again to store the layer's input (the same id: it is named by its
   * content, so an evicted activation comes back) and, unless the link carries edited filters (`le`), take the
   * layer's weights, which the link leaves out.
   * @returns {Promise<void>}
   */
  app.reopenLayer = async () => {
    const s = app.state;
    const { stackBody } = await import('./layers_view.js');
    try {
      const body = stackBody(s);
      const answer = await track(api.post('/api/stack/activation', { ...body, layer: s.lo }));
      knowActivation(answer);
      app.openedFrom = body;
      Object.assign(s, layerInput(answer));
      if (!s.le) {
        // the link's other settings (stride, padding, …) stay as they are: only the weights come from the stack
        const { k, w, b } = layerSettings(answer, true);
        Object.assign(s, { k, w, b });
      }
    } catch (error) {
      status(`The link opens layer ${s.lo} of a stack on ${s.lsrc}, which cannot be computed here (${error.message}); ` +
        'showing the default digit.');
      Object.assign(s, { image: defaultState().image, lo: -1, le: false, lsrc: '', k: ['sobel_x'], w: [null], b: [0] });
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
    for (const grid of [$('mnist-grid'), $('sample-list')]) markSelected(grid, app.state.image);
    if (app.revealImage) app.revealImage(app.state.image);
    $('maps').focus();
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
    // a pinned pixel stays where it is, to compare images at the same place
    app.set(app.pinned ? { image: id } : { image: id, pos: [0, 0, 0] });
  };

  installFollowers(app, doc);
  installDownloads(app, doc);
  $('notice-close').addEventListener('click', () => app.clearNotes());

  // the im2col view also marks the cell picked by a tap or the arrow keys (selection.js)
  const drawIm2colView = app.drawIm2col;
  app.drawIm2col = (resize = false) => {
    drawIm2colView(resize);
    const data = app.im2col;
    const cell = app.im2colCell;
    if (!data || !cell) return;
    if (cell[0] >= data.rows || cell[1] >= data.cols) {
      app.im2colCell = null;
      $('im2col-hover').textContent = '';
      return;
    }
    const scroller = $('im2col-scroll');
    const canvas = $('im2col-canvas');
    const zoom = app.state.zoom;
    const ratio = window.devicePixelRatio || 1;
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    const x = LABEL_W + cell[1] * zoom - scroller.scrollLeft;
    const y = LABEL_H + cell[0] * zoom - scroller.scrollTop;
    if (x < LABEL_W - zoom || y < LABEL_H - zoom) return;
    ctx.lineWidth = 2;
    ctx.strokeStyle = '#ff3df2';
    ctx.strokeRect(x - 1, y - 1, Math.max(zoom, 3) + 2, Math.max(zoom, 3) + 2);
  };
  mountAlgorithms($('algorithms'), api, () => (app.geometry ? app.convBody() : null));
  installAnimationDownload(doc, () => (app.geometry ? app.convBody() : null), status);

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
    if (app.state.lo >= 0 && app.state.lsrc) await app.reopenLayer();
    else if (info) {
      // a known image, as the link says
    } else if (isActivation(app.state.image)) {
      status(`The layer input ${app.state.image.slice(0, 14)}… is no longer stored on this server (it was evicted, or ` +
        'the link comes from another server); open the layer again from the Layers view. Showing the default digit.');
      app.state.image = defaultState().image;
    } else if (app.state.image !== defaultState().image) {
      status(`Image ${app.state.image} is not available here; showing the default digit.`);
      app.state.image = defaultState().image;
    }
    app.state.k = app.state.k.map((name) => {
      if (name === 'custom' || app.presets.has(name)) return name;
      app.note(`The link's preset "${name}" is not known here, so the identity kernel is used.`);
      return 'identity';
    });
    for (const text of app.openingNotes) app.note(text);
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
