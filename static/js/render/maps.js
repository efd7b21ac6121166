// Feature maps and pooled maps: one canvas per map at exactly OW × OH intrinsic pixels (the PNG drawn 1:1 and
// shown enlarged), a colour bar with the value range, and an overlay for the selected / fed output pixels.
import { constantText, drawColourBar, el, fitScale, fmt, sizeCanvas } from './common.js';
import { loadPicture } from './pictures.js';

/**
 * Make sure `container` holds exactly `count` map figures (reusing existing ones) and return them.
 * @param {HTMLElement} container
 * @param {number} count
 * @param {string} prefix  'map' or 'pool' (canvas ids are `${prefix}-${f}`)
 * @returns {HTMLElement[]}
 */
function ensureFigures(container, count, prefix) {
  while (container.children.length > count) container.lastElementChild.remove();
  while (container.children.length < count) {
    const f = container.children.length;
    const canvas = el('canvas', {
      id: `${prefix}-${f}`,
      class: 'map pixelated',
      dataset: { filter: String(f), kind: prefix },
      'aria-label': `${prefix === 'map' ? 'feature map' : 'pooled map'} of filter ${f}`,
    });
    const overlay = el('canvas', { class: 'overlay', 'aria-hidden': 'true' });
    const label = el('span', { class: 'constant-label', id: `${prefix}-${f}-constant`, hidden: true });
    const wrap = el('div', { class: 'stack map-stack', dataset: { filter: String(f), kind: prefix } }, [canvas, overlay, label]);
    const bar = el('canvas', { class: 'colourbar', 'aria-hidden': 'true' });
    const caption = el('figcaption', { class: 'note' });
    container.append(el('figure', { class: 'map-figure' }, [wrap, bar, caption]));
  }
  return [...container.children];
}

/**
 * Draw every map of a conv or pool answer.
 * @param {HTMLElement} container
 * @param {Object} block  `conv` or `pool` of POST /api/conv: {shape, maps: [{index, min, max, colormap, png}]}
 * @param {string} prefix  'map' | 'pool'
 * @param {number} target  CSS pixels for the longer side of each map
 * @returns {Promise<void>}
 */
export async function drawMaps(container, block, prefix, target) {
  const [, , oh, ow] = block.shape;
  const images = await Promise.all(block.maps.map((m) => loadPicture(m)));
  const figures = ensureFigures(container, block.maps.length, prefix);
  const scale = fitScale(oh, ow, target);
  block.maps.forEach((map, f) => {
    const figure = figures[f];
    const canvas = figure.querySelector('canvas.map');
    sizeCanvas(canvas, ow, oh, ow * scale, oh * scale);
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, ow, oh);
    ctx.drawImage(images[f], 0, 0, ow, oh);
    canvas.dataset.min = String(map.min);
    canvas.dataset.max = String(map.max);
    canvas.dataset.scale = String(scale);
    drawColourBar(figure.querySelector('canvas.colourbar'), map.min, map.max, map.colormap,
      Math.round(Math.max(120, Math.min(240, ow * scale))));
    figure.querySelector('figcaption').style.maxWidth = `${Math.max(120, ow * scale)}px`;
    const constant = constantText(map.min, map.max);
    const label = figure.querySelector('.constant-label');
    label.hidden = !constant;
    label.textContent = constant;
    figure.querySelector('figcaption').textContent = constant
      ? `filter ${f}: ${oh} × ${ow}, ${constant}`
      : `filter ${f}: ${oh} × ${ow}, min ${fmt(map.min)}, max ${fmt(map.max)}`;
  });
}

/**
 * Draw the overlays of every map: the selected output pixel and the outputs a hovered input pixel feeds.
 * @param {HTMLElement} container
 * @param {Object} marks {selected: [f, y, x] | null, fed: {rows: number[], cols: number[]} | null, allFilters: bool}
 */
export function drawMapOverlays(container, marks) {
  for (const figure of container.children) {
    const canvas = figure.querySelector('canvas.map');
    const overlay = figure.querySelector('canvas.overlay');
    const f = Number(canvas.dataset.filter);
    const scale = Number(canvas.dataset.scale) || 1;
    const width = canvas.width * scale;
    const height = canvas.height * scale;
    const ratio = window.devicePixelRatio || 1;
    sizeCanvas(overlay, Math.round(width * ratio), Math.round(height * ratio), width, height);
    const ctx = overlay.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    if (marks.fed) {
      ctx.fillStyle = 'rgba(255, 61, 242, 0.45)';
      for (const y of marks.fed.rows) for (const x of marks.fed.cols) ctx.fillRect(x * scale, y * scale, scale, scale);
    }
    if (marks.selected) {
      const [sf, y, x] = marks.selected;
      ctx.strokeStyle = sf === f || marks.allFilters ? '#00c8ff' : 'rgba(0, 200, 255, 0.45)';
      ctx.lineWidth = marks.pinned ? 3 : 2;
      const size = Math.max(scale, 4);
      const left = x * scale + scale / 2 - size / 2;
      const top = y * scale + scale / 2 - size / 2;
      if (marks.pinned) {
        // pinned: a dark halo and a pin head at the top-left corner
        ctx.save();
        ctx.strokeStyle = '#000';
        ctx.lineWidth = 5;
        ctx.strokeRect(left, top, size, size);
        ctx.restore();
      }
      ctx.strokeRect(left, top, size, size);
      if (marks.pinned) {
        ctx.fillStyle = '#ff3df2';
        ctx.beginPath();
        ctx.arc(left, top, Math.max(3, Math.min(6, size / 3)), 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  }
}

/**
 * The (filter, y, x) under a pointer on a map figure, or null.
 * @param {PointerEvent} event
 * @param {HTMLElement} stack  the .map-stack element
 * @returns {number[]|null}
 */
export function mapCellAt(event, stack) {
  const canvas = stack.querySelector('canvas.map');
  const rect = canvas.getBoundingClientRect();
  const scale = rect.width / canvas.width;
  const x = Math.floor((event.clientX - rect.left) / scale);
  const y = Math.floor((event.clientY - rect.top) / scale);
  if (x < 0 || y < 0 || x >= canvas.width || y >= canvas.height) return null;
  return [Number(canvas.dataset.filter), y, x];
}
