// The backward pass: the upstream gradient, grad_x with the overlap counts (how many windows read each input
// pixel), grad_weight and grad_bias, all from POST /api/backward.
import { constantText, drawColourBar, drawMatrix, el, fitScale, fmt, sizeCanvas } from './common.js';
import { loadPicture } from './pictures.js';

/**
 * A figure with a map canvas (the picture — PNG or levels — drawn 1:1 at its natural size, enlarged by CSS) and a colour bar.
 * @returns {Promise<HTMLElement>}
 */
async function mapFigure(id, title, picture, lo, hi, colormap, target = 200) {
  const image = await loadPicture(picture);
  const canvas = el('canvas', { id, class: 'pixelated', 'aria-label': title });
  const scale = fitScale(image.naturalHeight, image.naturalWidth, target);
  sizeCanvas(canvas, image.naturalWidth, image.naturalHeight, image.naturalWidth * scale, image.naturalHeight * scale);
  canvas.getContext('2d').drawImage(image, 0, 0);
  // a constant map (e.g. an upstream gradient of ones) is one flat tone: say its value on it
  const constant = lo !== undefined && hi !== undefined ? constantText(lo, hi) : '';
  const stack = el('div', { class: 'stack' }, [canvas]);
  if (constant) stack.append(el('span', { class: 'constant-label', id: `${id}-constant`, text: constant }));
  const children = [el('figcaption', { text: title }), stack];
  if (lo !== undefined && hi !== undefined) {
    const bar = el('canvas', { class: 'colourbar', 'aria-hidden': 'true' });
    drawColourBar(bar, lo, hi, colormap);
    children.push(bar);
  }
  return el('figure', { class: 'small-map' }, children);
}

/**
 * Render a POST /api/backward answer.
 * @param {HTMLElement} container
 * @param {Object} data
 * @param {string} kind  the upstream gradient: 'ones' | 'onehot' | 'random'
 */
export async function renderBackward(container, data, kind) {
  const what = { ones: 'all ones', onehot: 'one-hot at the selected pixel', random: 'random' }[kind] || kind;
  const up = data.upstream;
  const figures = [
    await mapFigure('bw-upstream', `upstream ∂L/∂y ${up.shape.join('×')} (${what})`, up, up.min, up.max,
      up.min < 0 ? 'diverging' : 'sequential'),
  ];
  if (data.pool_grad) {
    const pg = data.pool_grad;
    figures.push(await mapFigure('bw-pool', `through the pool → ∂L/∂conv ${pg.shape.join('×')}`, pg, pg.min, pg.max,
      pg.min < 0 ? 'diverging' : 'sequential'));
  }
  const gx = data.grad_x;
  // for C > 1 the PNG holds the channels side by side: give it room in proportion
  figures.push(
    await mapFigure('bw-gradx', `grad_x ${gx.shape.join('×')}${gx.shape[1] > 1 ? ' (channels side by side)' : ''}`, gx,
      gx.min, gx.max, gx.min < 0 ? 'diverging' : 'sequential', gx.shape[1] > 1 ? 420 : 200),
  );
  figures.push(
    await mapFigure('bw-overlap', `overlap: windows reading each pixel (max ${data.overlap.max})`, data.overlap, 0, data.overlap.max, 'sequential'),
  );
  const weights = el('div', { class: 'grad-weights' });
  const [fCount, cg, kh, kw] = data.grad_weight.shape;
  const cell = Math.max(14, Math.min(34, Math.floor(150 / Math.max(kh, kw))));
  for (let f = 0; f < fCount; f += 1) {
    for (let c = 0; c < cg; c += 1) {
      const canvas = el('canvas', { 'aria-label': `grad_weight filter ${f} channel ${c}` });
      drawMatrix(canvas, data.grad_weight.values[f][c], { cell });
      weights.append(el('figure', { class: 'small-map' }, [el('figcaption', { text: `∂L/∂w[${f}, ${c}]` }), canvas]));
    }
  }
  const bias = el('p', {
    class: 'note',
    id: 'grad-bias',
    text: `grad_bias = [${data.grad_bias.values.map((v) => fmt(v, 6)).join(', ')}] (the sum of the upstream gradient per filter)`,
  });
  container.replaceChildren(el('div', { class: 'figure-row' }, figures), weights, bias);
}
