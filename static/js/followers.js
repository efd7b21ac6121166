// The views that follow a convolution: im2col (+ the GEMM), the arithmetic of the selected pixel (explain),
// the backward pass and the transposed convolution. Each asks its own endpoint (newest request wins) once the
// feature maps are painted, so that a slider change repaints the map first.
//
// Only the views on screen (or within FOLLOW_MARGIN of it) are asked for at each step: while a slider is
// dragged, the server computes what the student sees. A view off screen is marked stale and is filled in
// once the page has been quiet for FILL_AFTER_MS, or as soon as it scrolls into view (IntersectionObserver),
// whichever comes first — so a view is never left empty, and a drag does not pay for views nobody sees.
import { Superseded } from './api.js';
import { renderArithmetic, renderArithmeticMessage } from './render/arith.js';
import { renderBackward } from './render/backward.js';
import { channelRequest, renderChannelPoint, renderChannels } from './render/channels.js';
import { el, loadImage } from './render/common.js';

/** Views within this distance of the screen count as on screen (CSS margin syntax): on screen only. */
const FOLLOW_MARGIN = '0px';
/** Off-screen views are filled in after this long without a new step (ms). */
const FILL_AFTER_MS = 250;
/** The follow-up views and the panels that show them. */
const VIEW_PANELS = {
  explain: ['panel-arith', 'panel-channels'],
  im2col: ['panel-im2col', 'panel-gemm'],
  backward: ['panel-backward'],
  transpose: ['panel-transpose'],
  channels: ['panel-channels'],
};
import { renderGemm } from './render/gemm.js';
import { drawMatrixView, matrixSource, revealColumn, sizeMatrix } from './render/im2col.js';
import { renderTranspose } from './render/transpose.js';

/**
 * Add the follow-up requests and their drawing to the app (main.js).
 * @param {Object} app  needs state, api, conv, convRequest, paints, track(), channelsPerFilter()
 * @param {Document} doc
 */
export function installFollowers(app, doc) {
  const $ = (id) => doc.getElementById(id);
  const { api } = app;

  /** view → its request function (below); view → the paint its data belongs to (-1: stale). */
  const requests = {};
  const fresh = {};
  const visible = new Set();
  let fillTimer = 0;

  /**
   * Whether a view is on screen (every view counts as on screen without IntersectionObserver).
   * @param {string} view
   * @returns {boolean}
   */
  const onScreen = (view) => !observer || VIEW_PANELS[view].some((id) => visible.has(id));
  app.viewOnScreen = onScreen;

  /** Ask for a view now, for the current paint. */
  const run = (view) => {
    fresh[view] = app.paints;
    return requests[view]();
  };

  /** Mark the body settled once every view holds the current paint's data. */
  const markSettled = () => {
    if (Object.keys(requests).every((view) => fresh[view] === app.paints)) doc.body.dataset.settled = String(app.paints);
  };

  /** Fill in every stale view once the page has been quiet for FILL_AFTER_MS. */
  const scheduleFill = () => {
    clearTimeout(fillTimer);
    fillTimer = setTimeout(async () => {
      const paint = app.paints;
      const stale = Object.keys(requests).filter((view) => fresh[view] !== paint);
      await Promise.allSettled(stale.map(run));
      if (paint === app.paints) markSettled();
    }, FILL_AFTER_MS);
  };

  /**
   * Ask for a view if it is on screen, else mark it stale (filled in later).
   * @param {string} view
   * @returns {Promise<void>}
   */
  const want = (view) => {
    if (onScreen(view)) return run(view);
    fresh[view] = -1;
    scheduleFill();
    return Promise.resolve();
  };

  const observer = typeof IntersectionObserver === 'function'
    ? new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (entry.isIntersecting) visible.add(entry.target.id);
        else visible.delete(entry.target.id);
      }
      if (!app.convRequest) return;
      for (const view of Object.keys(requests)) {
        if (fresh[view] !== app.paints && onScreen(view)) run(view).then(markSettled);
      }
    }, { rootMargin: FOLLOW_MARGIN })
    : null;
  if (observer) {
    for (const ids of Object.values(VIEW_PANELS)) for (const id of ids) if ($(id)) observer.observe($(id));
  }

  /** The follow-up requests after a convolution: those on screen now, the others once the page is quiet. */
  app.requestFollowers = async () => {
    const paint = app.paints;
    const views = Object.keys(requests);
    for (const view of views) if (!onScreen(view)) fresh[view] = -1;
    await Promise.allSettled(views.filter(onScreen).map(run));
    if (paint !== app.paints) return;
    if (views.every((view) => fresh[view] === paint)) markSettled();
    else scheduleFill();
  };

  requests.im2col = async () => {
    const body = { ...app.convRequest, values: undefined, pool: null, indices: true, columns: null };
    try {
      const data = await app.track(api.latest('im2col', '/api/im2col', body));
      const [heat, product] = await Promise.all([loadImage(data.png), loadImage(data.product.png)]);
      app.im2col = data;
      app.heat = heat;
      app.product = product;
      app.im2colSources.clear();
      $('im2col-shape').textContent = `${data.rows} × ${data.cols} (rows (c, kh, kw), columns (oh, ow))`;
      $('im2col-note').textContent = data.indices
        ? 'k, i, j: the row → channel, padded row and padded column each entry is read from (ML-From-Scratch index arrays).'
        : `k, i, j and exact values are sent only for matrices up to 50,000 entries (this one has ${data.rows * data.cols}).`;
      app.drawIm2col(true);
    } catch (error) {
      if (!(error instanceof Superseded)) $('im2col-note').textContent = error.message;
    }
  };

  /** Draw the im2col viewport and the GEMM for the selected position. */
  app.drawIm2col = (resize = false) => {
    const data = app.im2col;
    if (!data) return;
    const s = app.state;
    const scroller = $('im2col-scroll');
    if (resize) {
      sizeMatrix($('im2col-spacer'), data, s.zoom);
      revealColumn(scroller, s.pos[1] * data.out_size[1] + s.pos[2], s.zoom);
    }
    if (!app.im2colSources.has(s.m)) app.im2colSources.set(s.m, matrixSource(data, app.heat, s.m));
    const [f, y, x] = s.pos;
    const ow = data.out_size[1];
    const column = y * ow + x;
    const kk = s.kh * s.kw;
    const cg = app.channelsPerFilter();
    const group = Math.floor(f / (s.k.length / s.groups));
    drawMatrixView(scroller, $('im2col-canvas'), data, app.im2colSources.get(s.m), {
      zoom: s.zoom,
      column,
      rowGroup: s.groups > 1 ? [group * cg * kk, (group + 1) * cg * kk] : null,
    });
    renderGemm($('gemm'), data, app.heat, app.product, { filter: f, column });
  };

  requests.explain = async () => {
    if (!app.convRequest) return;
    const body = { ...app.convRequest, values: false, pool: null, position: app.state.pos };
    // the conv answer carries the explanation of the position it was asked with (?explain=f,y,x)
    const carried = app.conv && app.conv.explain;
    const same = carried && carried.position.every((v, i) => v === app.state.pos[i]);
    try {
      if (same) api.cancel('explain');
      const ex = same ? carried : await app.track(api.latest('explain', '/api/explain', body));
      app.explain = ex;
      renderArithmetic($('arith'), ex, app.convRequest.activation);
      renderChannelPoint($('channels'), ex, app.convRequest.activation);
      $('arith-where').textContent = `at filter ${ex.position[0]}, output (${ex.position[1]}, ${ex.position[2]})`;
    } catch (error) {
      if (!(error instanceof Superseded)) renderArithmeticMessage($('arith'), error.message);
    }
  };

  /**
   * With more than one input channel per filter (RGB): the selected filter's per-channel contribution maps,
   * from one /api/conv whose filters each keep a single channel of w[f].
   */
  requests.channels = async () => {
    const request = app.convRequest;
    const conv = app.conv;
    const panel = $('panel-channels');
    const channels = conv ? conv.input.shape[1] : 1;
    if (!request || !conv || channels / request.groups < 2) {
      panel.hidden = true;
      app.channelsFilter = null;
      api.cancel('channels');
      return;
    }
    panel.hidden = false;
    const f = Math.min(app.state.pos[0], request.weight.length - 1);
    try {
      // the conv answer carries filter f's contributions when it was asked with ?channels=f
      const carried = conv.channels && conv.channels.filter === f ? conv.channels : null;
      if (carried) api.cancel('channels');
      const contributions = carried
        || await app.track(api.latest('channels', '/api/conv?pictures=levels', channelRequest(request, f, channels)));
      if (conv !== app.conv) return;
      app.channelsFilter = f;
      $('channels-shape').textContent = `filter ${f}: ${channels / request.groups} channels × ${contributions.conv.shape.slice(2).join(' × ')}`;
      await renderChannels($('channels'), {
        f,
        kernels: request.weight[f],
        channels,
        groups: request.groups,
        filters: request.weight.length,
        bias: request.bias ? request.bias[f] : 0,
        activation: request.activation,
        contributions,
        featureMap: conv.conv.maps[f],
        target: app.state.proj ? 140 : 130,
      });
      if (app.explain) renderChannelPoint($('channels'), app.explain, request.activation);
    } catch (error) {
      if (!(error instanceof Superseded)) $('channels').replaceChildren(el('p', { class: 'note', text: error.message }));
    }
  };

  requests.backward = async () => {
    if (!app.convRequest) return;
    const s = app.state;
    const throughPool = s.pool !== 'none' && s.target === 'pool';
    let position = s.pos;
    if (throughPool && app.conv && app.conv.pool) {
      const [, , ph, pw] = app.conv.pool.shape;
      position = [s.pos[0], Math.min(ph - 1, Math.floor(s.pos[1] / s.ps)), Math.min(pw - 1, Math.floor(s.pos[2] / s.ps))];
    }
    const body = {
      ...app.convRequest,
      values: false,
      pool: throughPool ? app.convRequest.pool : null,
      upstream: { kind: s.up, position, seed: s.seed },
      target: throughPool ? 'pool' : 'conv',
    };
    try {
      const data = await app.track(api.latest('backward', '/api/backward?pictures=levels', body));
      app.backward = data;
      await renderBackward($('backward'), data, body.upstream.kind);
    } catch (error) {
      if (!(error instanceof Superseded)) $('backward').replaceChildren(el('p', { class: 'note', text: error.message }));
    }
  };

  /**
   * Redraw the transposed convolution, optionally selecting another input cell.
   * @param {number[]} [cell]  [r, c] in the transpose's input
   */
  app.drawTranspose = (cell) => {
    const view = app.transposeView;
    if (!view) return;
    if (cell) view.cell = cell;
    renderTranspose($('transpose'), view.data, view.body, view);
  };

  requests.transpose = async () => {
    if (!app.convRequest) return;
    const s = app.state;
    const [f, y, x] = s.pos;
    const map = app.conv.conv.maps[f];
    const n = 3;
    const x0 = Math.max(0, Math.min(x - 1, app.conv.conv.shape[3] - n));
    const y0 = Math.max(0, Math.min(y - 1, app.conv.conv.shape[2] - n));
    const xs = [];
    for (let r = 0; r < Math.min(n, app.conv.conv.shape[2]); r += 1) {
      const row = [];
      for (let c = 0; c < Math.min(n, app.conv.conv.shape[3]); c += 1) {
        row.push(map.values ? Math.round(map.values[y0 + r][x0 + c] * 100) / 100 : 1);
      }
      xs.push(row);
    }
    const body = {
      x: xs,
      weight: app.convRequest.weight[f][0],
      stride: [s.sh, s.sw],
      padding: [0, 0],
      output_padding: [0, 0],
      dilation: [s.dh, s.dw],
    };
    try {
      const data = await app.track(api.latest('transpose', '/api/transpose', body));
      app.transposeView = {
        data, body, filter: f, position: [y0, x0], fromMap: Boolean(map.values), perFilter: app.channelsPerFilter(),
        cell: app.transposeView?.cell ?? null,
      };
      app.drawTranspose();
    } catch (error) {
      if (!(error instanceof Superseded)) $('transpose').replaceChildren(el('p', { class: 'note', text: error.message }));
    }
  };

  /**
   * The data of a view for the current paint, asked for now if the view is stale (off screen, not yet filled in):
   * a download must never save the matrix of an earlier setting.
   * @param {string} view  'im2col' | 'explain' | 'backward' | 'transpose' | 'channels'
   * @returns {Promise<void>}
   */
  app.ensureView = async (view) => {
    if (!app.convRequest || fresh[view] === app.paints) return;
    const paint = app.paints;
    await run(view);
    if (paint === app.paints) markSettled();
  };

  app.requestIm2col = () => want('im2col');
  app.requestExplain = () => want('explain');
  app.requestBackward = () => want('backward');
  app.requestTranspose = () => want('transpose');
  app.requestChannels = () => want('channels');
}
