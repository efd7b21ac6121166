// The per-input-channel view (RGB): a filter's feature map is the sum over its input channels of one 2-D
// convolution per channel, plus the bias. For the selected filter f this shows, per channel c, the kernel
// w[f, c] and that channel's contribution map x[c] ⋆ w[f, c], then Σ_c + bias = the feature map.
//
// The contribution maps come from one POST /api/conv whose filters each keep a single channel of w[f]
// (every other channel's kernel is zero), with no bias, no activation and no pooling: filter c of that
// request computes exactly Σ_{kh,kw} x[c] · w[f, c], the per-channel partial sum.
import { constantText, drawColourBar, drawMatrix, el, fitScale, fmt, sizeCanvas } from './common.js';
import { loadPicture } from './pictures.js';

const RGB_NAMES = ['red', 'green', 'blue'];

/**
 * The input channels filter f reads, as global channel indices.
 * @param {number} f  filter index
 * @param {number} filters  F
 * @param {number} channels  C
 * @param {number} groups
 * @returns {number[]} C/groups indices
 */
export function channelsOfFilter(f, filters, channels, groups) {
  const cg = channels / groups;
  const group = Math.floor(f / (filters / groups));
  return Array.from({ length: cg }, (_, c) => group * cg + c);
}

/**
 * The POST /api/conv body giving filter f's per-channel contributions.
 * @param {Object} convRequest  the body of the page's own /api/conv request (weight (F, C/g, KH, KW))
 * @param {number} f
 * @param {number} channels  C
 * @returns {Object} body with weight (C/g, C, KH, KW): filter c holds w[f, c] at channel channelsOfFilter[c]
 */
export function channelRequest(convRequest, f, channels) {
  const weights = convRequest.weight;
  const ids = channelsOfFilter(f, weights.length, channels, convRequest.groups);
  const zero = weights[f][0].map((row) => row.map(() => 0));
  const weight = ids.map((id, c) =>
    Array.from({ length: channels }, (_, k) => (k === id ? weights[f][c] : zero).map((row) => row.slice())),
  );
  return {
    ...convRequest,
    weight,
    bias: ids.map(() => 0),
    groups: 1,
    activation: 'none',
    pool: null,
  };
}

/**
 * The channel's name for captions.
 * @param {number} id  global channel index
 * @param {number} channels  C
 * @returns {string}
 */
function channelName(id, channels) {
  return channels === 3 ? `channel ${id} (${RGB_NAMES[id]})` : `channel ${id}`;
}

/**
 * A map figure: the PNG drawn 1:1 and enlarged, a colour bar, a caption, the constant label when flat.
 * @returns {Promise<HTMLElement>}
 */
async function mapFigure(id, title, map, shape, target, extra = []) {
  const [oh, ow] = shape;
  const image = await loadPicture(map);
  const canvas = el('canvas', {
    id,
    class: 'map pixelated',
    'aria-label': title,
    dataset: { min: String(map.min), max: String(map.max) },
  });
  const scale = fitScale(oh, ow, target);
  sizeCanvas(canvas, ow, oh, ow * scale, oh * scale);
  canvas.getContext('2d').drawImage(image, 0, 0, ow, oh);
  canvas.dataset.scale = String(scale);
  const stack = el('div', { class: 'stack' }, [canvas, el('span', { class: 'chan-marker', hidden: true })]);
  const constant = constantText(map.min, map.max);
  if (constant) stack.append(el('span', { class: 'constant-label', text: constant }));
  const bar = el('canvas', { class: 'colourbar', 'aria-hidden': 'true' });
  drawColourBar(bar, map.min, map.max, map.colormap, Math.round(Math.max(110, Math.min(200, ow * scale))));
  const range = constant || `min ${fmt(map.min)}, max ${fmt(map.max)}`;
  return el('figure', { class: 'small-map channel-figure' }, [
    ...extra,
    el('figcaption', { class: 'channel-title', text: title }),
    stack,
    bar,
    el('figcaption', { text: range }),
  ]);
}

/**
 * Render the per-channel decomposition of filter f.
 * @param {HTMLElement} container
 * @param {Object} view
 * @param {number} view.f  the filter
 * @param {number[][][]} view.kernels  w[f], (C/g, KH, KW)
 * @param {number} view.channels  C
 * @param {number} view.groups
 * @param {number} view.filters  F
 * @param {number} view.bias  b[f]
 * @param {string} view.activation  'none' | 'relu'
 * @param {Object} view.contributions  the /api/conv answer of channelRequest (conv.maps: one per channel)
 * @param {Object} view.featureMap  the page's conv.maps[f]
 * @param {number} [view.target]  CSS pixels for a map's longer side
 * @returns {Promise<void>}
 */
export async function renderChannels(container, view) {
  const { f, kernels, channels, contributions } = view;
  const ids = channelsOfFilter(f, view.filters, channels, view.groups);
  const [, , oh, ow] = contributions.conv.shape;
  const target = view.target ?? 130;
  const [kh, kw] = [kernels[0].length, kernels[0][0].length];
  const cell = Math.max(8, Math.min(24, Math.floor(96 / Math.max(kh, kw))));
  const row = [];
  for (let c = 0; c < ids.length; c += 1) {
    // the cells show 2 digits; the exact float32 values are in the title (hover) and the accessible name
    const exact = kernels[c].map((r, i) => `row ${i}: ${r.join(', ')}`).join('; ');
    const kernel = el('canvas', { id: `chan-kernel-${c}`, 'aria-label': `kernel w[${f}, ${c}]: ${exact}`, title: `w[${f}, ${c}] ${exact}` });
    drawMatrix(kernel, kernels[c], { cell, numbers: cell >= 22 });
    const kernelBox = el('div', { class: 'channel-kernel' }, [
      el('span', { class: 'note', text: `kernel w[${f}, ${c}] ${kh}×${kw}` }),
      kernel,
      el('span', { class: 'op', text: `applied to channel ${ids[c]} ↓` }),
    ]);
    if (c > 0) row.push(el('span', { class: 'sum-op', text: '+' }));
    row.push(
      await mapFigure(`chan-map-${c}`, `${channelName(ids[c], channels)}: x[${ids[c]}] ⋆ w[${f},${c}]`,
        contributions.conv.maps[c], [oh, ow], target, [kernelBox]),
    );
  }
  row.push(el('span', { class: 'sum-op', text: `+ bias ${fmt(view.bias, 6)}${view.activation === 'relu' ? ', ReLU' : ''} =` }));
  row.push(
    await mapFigure('chan-sum', `feature map ${f}${view.activation === 'relu' ? ' = ReLU(Σ + b)' : ' = Σ + b'}`,
      view.featureMap, [oh, ow], target),
  );
  const check = el('p', { id: 'channels-check', class: 'note' });
  const maxDiff = sumDifference(contributions.conv.maps, view.featureMap, view.bias, view.activation);
  if (maxDiff === null) {
    check.textContent = 'Exact values are sent for maps up to 64 × 64; the sum is checked at the selected pixel above.';
  } else {
    check.dataset.maxdiff = String(maxDiff);
    check.textContent =
      `Checked at all ${oh * ow} pixels: ${view.activation === 'relu' ? 'ReLU(' : ''}Σ of the ${ids.length} channel ` +
      `maps + bias${view.activation === 'relu' ? ')' : ''} equals feature map ${f} to within ${fmt(maxDiff, 2)} ` +
      '(float32 rounding of a different summation order).';
  }
  container.replaceChildren(
    el('p', {
      class: 'note',
      text:
        `Filter ${f} has one ${kh}×${kw} kernel per input channel it reads (${ids.length}). Each channel is convolved ` +
        'with its own kernel; the feature map is the sum of these per-channel maps plus the bias (each map has its own colour range).',
    }),
    el('div', { class: 'channel-row' }, row),
    el('p', { id: 'channels-point', class: 'total' }),
    check,
  );
  container.dataset.filter = String(f);
}

/**
 * Largest |act(Σ_c contribution_c + bias) − feature map| over the map, or null without exact values.
 * @returns {number|null}
 */
function sumDifference(maps, featureMap, bias, activation) {
  if (!featureMap.values || maps.some((m) => !m.values)) return null;
  let worst = 0;
  featureMap.values.forEach((row, y) => {
    row.forEach((value, x) => {
      let sum = bias;
      for (const m of maps) sum += m.values[y][x];
      const shown = activation === 'relu' ? Math.max(0, sum) : sum;
      worst = Math.max(worst, Math.abs(shown - value));
    });
  });
  return worst;
}

/**
 * The numbers at the selected output pixel: each channel's partial sum (from POST /api/explain), + bias = value.
 * @param {HTMLElement} container  the channels panel body (after renderChannels)
 * @param {Object} ex  POST /api/explain answer
 * @param {string} activation
 */
export function renderChannelPoint(container, ex, activation) {
  const line = container.querySelector('#channels-point');
  if (!line || container.dataset.filter !== String(ex.position[0])) return;
  const [f, y, x] = ex.position;
  const parts = [el('span', { text: `At output (${y}, ${x}): ` })];
  ex.channel_sums.forEach((v, c) => {
    if (c > 0) parts.push(el('span', { text: ' + ' }));
    parts.push(el('span', { class: 'term', dataset: { channel: String(c), value: String(v) }, text: `(${v})` }));
  });
  parts.push(el('span', { text: ` + bias ${ex.bias} = ${ex.pre_activation}` }));
  if (activation === 'relu') parts.push(el('span', { text: `, ReLU → ${ex.value}` }));
  parts.push(el('span', { text: ` = feature map ${f} at (${y}, ${x}).` }));
  line.dataset.position = `${f},${y},${x}`;
  line.replaceChildren(...parts);
  // the selected pixel, outlined on every channel map and on the feature map
  for (const marker of container.querySelectorAll('.chan-marker')) {
    const scale = Number(marker.previousElementSibling.dataset.scale) || 1;
    const size = Math.max(scale, 6);
    marker.hidden = false;
    marker.style.left = `${x * scale + scale / 2 - size / 2}px`;
    marker.style.top = `${y * scale + scale / 2 - size / 2}px`;
    marker.style.width = `${size}px`;
    marker.style.height = `${size}px`;
  }
}
