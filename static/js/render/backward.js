// The backward pass: the upstream gradient, grad_x with the overlap counts (how many windows read each input
// pixel), grad_weight and grad_bias, all from POST /api/backward.
import { colourScale, constantText, css, drawColourBar, el, fitScale, fmt, sizeCanvas } from './common.js';
import { loadPicture } from './pictures.js';

/** Significant digits shown in the small number tables (float32 has about 7; the full value is one click away). */
const TABLE_DIGITS = 6;

/**
 * A small table of numbers (a kernel-sized gradient): each cell coloured like a heat map, showing 6 significant
 * digits; hovering shows and a click (tap, Enter) writes the full float32 value into `readout`.
 * @param {number[][]} values (rows, cols)
 * @param {string} name  e.g. '∂L/∂w[0, 0]'
 * @param {string} readoutId  id of the element that shows a clicked cell's full value
 * @returns {HTMLTableElement}
 */
function numberTable(values, name, readoutId) {
  const flat = values.flat();
  const colour = colourScale(Math.min(...flat, 0), Math.max(...flat, 0));
  const table = el('table', { class: 'numbers', 'aria-label': name });
  const body = el('tbody');
  values.forEach((row, i) => {
    const tr = el('tr');
    row.forEach((v, j) => {
      const rgb = colour(v);
      const luminance = 0.3 * rgb[0] + 0.59 * rgb[1] + 0.11 * rgb[2];
      const where = `${name.replace(/\]$/, '')}, ${i}, ${j}]`;
      const shown = fmt(v, TABLE_DIGITS);
      // the name holds the visible text (WCAG 2.5.3, label in name); the full float32 value is the description
      // (title) and the readout a click writes
      const button = el('button', {
        type: 'button', class: 'exact', title: `${where} = ${v}`, 'aria-label': `${where} ${String(v) === shown ? '=' : '≈'} ${shown}`,
        dataset: { value: String(v), readout: readoutId }, text: shown,
      });
      const td = el('td', { class: luminance < 128 ? 'dark' : '' }, [button]);
      td.style.background = css(rgb);
      td.style.color = luminance < 128 ? '#fff' : '#000';
      tr.append(td);
    });
    body.append(tr);
  });
  table.append(body);
  table.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-readout]');
    const readout = button && document.getElementById(button.dataset.readout);
    if (readout) readout.textContent = `${button.title} (full float32)`;
  });
  return table;
}

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
  const [fCount, cg] = data.grad_weight.shape;
  for (let f = 0; f < fCount; f += 1) {
    for (let c = 0; c < cg; c += 1) {
      const name = `∂L/∂w[${f}, ${c}]`;
      weights.append(el('figure', { class: 'small-map', id: `grad-w-${f}-${c}` }, [
        el('figcaption', { text: name }),
        // an 11×11 kernel's table is wider than a phone: it scrolls sideways in its own box (its buttons are
        // Tab stops, so the keyboard scrolls it too), the page does not
        el('div', { class: 'numbers-scroll' }, [numberTable(data.grad_weight.values[f][c], name, 'grad-readout')]),
      ]));
    }
  }
  const bias = el('p', { class: 'note', id: 'grad-bias' }, [
    'grad_bias = [',
    ...data.grad_bias.values.flatMap((v, f) => [
      f ? ', ' : '',
      el('button', {
        type: 'button', class: 'exact link-like', title: `∂L/∂b[${f}] = ${v}`, dataset: { value: String(v), readout: 'grad-readout' },
        text: fmt(v, TABLE_DIGITS),
      }),
    ]),
    '] (the sum of the upstream gradient per filter)',
  ]);
  bias.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-readout]');
    if (button) document.getElementById('grad-readout').textContent = `${button.title} (full float32)`;
  });
  const readout = el('p', { class: 'note exact', id: 'grad-readout', 'aria-live': 'polite',
    text: 'Hover over a number, or click or tap it, for its full float32 value.' });
  container.replaceChildren(el('div', { class: 'figure-row' }, figures), weights, bias, readout);
}
