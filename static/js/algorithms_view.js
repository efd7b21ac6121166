// The algorithms panel: every implementation of the current layer side by side (POST /api/algorithms) as a
// table with each method's source, and a chart of time against kernel or image size (POST
// /api/algorithms/sweep) where the FFT's flat cost crosses the im2col methods' KH·KW growth.
// Measured on demand (a button), never on every slider step: each answer is a fresh timing on the server.
import { el, fmt } from './render/common.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22'];

/**
 * Bytes as text (B, kB, MB).
 * @param {number|null} bytes
 * @returns {string}
 */
export function bytesText(bytes) {
  if (bytes === null || bytes === undefined) return '–';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * One table of methods.
 * @param {string} caption
 * @param {Object[]} rows  MethodRow objects of the API
 * @param {(row: Object) => void} onSource  called when a row's "source" button is pressed
 * @returns {HTMLTableElement}
 */
export function methodTable(caption, rows, onSource) {
  const head = el('tr', {}, ['method', 'max |diff|', 'median ms (runs)', 'intermediates', 'peak (measured)', 'code'].map(
    (text) => el('th', { scope: 'col', text }),
  ));
  const body = rows.map((row) => {
    const named = Object.entries(row.intermediate_bytes || {});
    const total = named.reduce((sum, [, v]) => sum + v, 0);
    const detail = named.map(([k, v]) => `${k}: ${bytesText(v)}`).join('\n');
    const button = el('button', { type: 'button', class: 'source-button', text: 'source', dataset: { method: row.name } });
    button.addEventListener('click', () => onSource(row));
    const cells = row.available
      ? [
          el('td', { text: row.max_abs_diff === 0 ? '0' : row.max_abs_diff.toExponential(1) }),
          el('td', { text: `${fmt(row.median_ms, 3)} (${row.repeats})` }),
          el('td', { text: bytesText(total), title: detail }),
          el('td', { text: bytesText(row.peak_bytes) }),
        ]
      : [el('td', { class: 'refused', colspan: '4', text: `refused: ${row.reason}` })];
    return el('tr', { dataset: { method: row.name } }, [
      el('th', { scope: 'row', title: row.description }, [el('span', { text: row.title })]),
      ...cells,
      el('td', {}, [button]),
    ]);
  });
  return el('table', { class: 'algorithms-table' }, [
    el('caption', { text: caption }),
    el('thead', {}, [head]),
    el('tbody', {}, body),
  ]);
}

/**
 * An SVG line chart of time (log scale) against size, one line per method.
 * @param {{axis: string, values: number[], series: Object<string, Array<number|null>>}} sweep
 * @returns {SVGSVGElement}
 */
export function sweepChart(sweep) {
  const ns = 'http://www.w3.org/2000/svg';
  const node = (tag, attrs = {}, text = '') => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    if (text) n.textContent = text;
    return n;
  };
  const width = 560;
  const height = 300;
  const m = { left: 56, right: 120, top: 12, bottom: 40 };
  const times = Object.values(sweep.series).flat().filter((v) => v !== null && v > 0);
  const lo = Math.log10(Math.min(...times, 1) / 1.5);
  const hi = Math.log10(Math.max(...times, 1) * 1.5);
  const xs = sweep.values;
  const px = (i) => m.left + (xs.length === 1 ? 0.5 : i / (xs.length - 1)) * (width - m.left - m.right);
  const py = (v) => m.top + (1 - (Math.log10(v) - lo) / (hi - lo)) * (height - m.top - m.bottom);
  const svg = node('svg', { viewBox: `0 0 ${width} ${height}`, class: 'sweep-chart', role: 'img' });
  svg.append(node('title', {}, `median time (ms, log scale) against ${sweep.axis === 'kernel' ? 'kernel side' : 'image side'}`));
  for (let e = Math.ceil(lo); e <= Math.floor(hi); e += 1) {
    const y = py(10 ** e);
    svg.append(node('line', { x1: m.left, x2: width - m.right, y1: y, y2: y, class: 'grid' }));
    svg.append(node('text', { x: m.left - 6, y: y + 4, 'text-anchor': 'end' }, `${10 ** e >= 1 ? 10 ** e : (10 ** e).toPrecision(1)} ms`));
  }
  xs.forEach((v, i) => svg.append(node('text', { x: px(i), y: height - m.bottom + 16, 'text-anchor': 'middle' }, String(v))));
  svg.append(node('text', { x: (m.left + width - m.right) / 2, y: height - 6, 'text-anchor': 'middle' },
    sweep.axis === 'kernel' ? 'kernel side k (k × k)' : 'image side n (n × n)'));
  Object.entries(sweep.series).forEach(([name, values], index) => {
    const color = COLORS[index % COLORS.length];
    const points = values.map((v, i) => (v === null || v <= 0 ? null : `${px(i)},${py(v)}`)).filter(Boolean);
    if (points.length) svg.append(node('polyline', { points: points.join(' '), fill: 'none', stroke: color, 'stroke-width': 2, 'data-method': name }));
    const y = m.top + 14 + index * 16;
    svg.append(node('line', { x1: width - m.right + 8, x2: width - m.right + 24, y1: y - 4, y2: y - 4, stroke: color, 'stroke-width': 2 }));
    svg.append(node('text', { x: width - m.right + 28, y }, name));
  });
  return svg;
}

/**
 * Mount the panel.
 * @param {HTMLElement} root  the panel's container
 * @param {{post: Function}} api  the page's API module
 * @param {() => (Object|null)} currentBody  the POST /api/conv body of the current state (null if invalid)
 */
export function mountAlgorithms(root, api, currentBody) {
  if (!document.querySelector('link[href="/static/css/algorithms.css"]')) {
    document.head.append(el('link', { rel: 'stylesheet', href: '/static/css/algorithms.css' }));
  }
  const status = el('p', { class: 'note', id: 'algorithms-status', 'aria-live': 'polite' });
  const tables = el('div', { id: 'algorithms-tables', class: 'algorithms-tables' });
  // a named, focusable scroll region (a <pre> may not carry aria-label without a role); hidden until a method's
  // source is shown, so that no empty, 12 px tall Tab stop sits in the panel
  const source = el('pre', {
    id: 'algorithms-source', class: 'code algorithms-source', tabindex: '0', role: 'region',
    'aria-label': 'Source of the selected method', hidden: true,
  });
  const chart = el('div', { id: 'algorithms-chart', class: 'algorithms-chart' });
  const run = el('button', { type: 'button', id: 'algorithms-run', text: 'Run every algorithm on this layer' });
  const byKernel = el('button', { type: 'button', id: 'sweep-kernel', text: 'Time vs kernel size' });
  const bySize = el('button', { type: 'button', id: 'sweep-size', text: 'Time vs image size' });
  root.replaceChildren(
    el('p', { class: 'note', text: 'The same layer computed by every implementation in core/algorithms.py: the difference from the default, the median time measured on the server now, the memory of the intermediate arrays, and the code itself.' }),
    el('div', { class: 'buttons' }, [run, byKernel, bySize]),
    status, tables, source, chart,
  );
  const showSource = (row) => {
    source.textContent = `# ${row.title}: ${row.description}\n\n${row.source}`;
    source.dataset.method = row.name;
    source.hidden = false;
  };

  run.addEventListener('click', async () => {
    const body = currentBody();
    if (!body) return;
    status.textContent = 'Measuring…';
    run.disabled = true;
    try {
      const answer = await api.post('/api/algorithms', { ...body, values: false, repeats: 5 });
      const layer = answer.layer;
      status.textContent = `Input ${layer.input_shape.join('×')}, weights ${layer.weight_shape.join('×')}, ` +
        `padding_mode ${layer.padding_mode}, ${layer.dtype}; server time ${fmt(answer.timing_ms.total, 3)} ms ` +
        `(timing budget ${answer.budget_ms} ms: a method over it runs once).`;
      tables.replaceChildren(
        methodTable('Convolution', answer.conv, showSource),
        methodTable('col2im (the backward pass\'s fold)', answer.col2im, showSource),
        methodTable(`Max pooling: ${answer.pool.note}`, answer.pool.methods, showSource),
      );
      const first = answer.conv.find((row) => row.name === 'default') || answer.conv[0];
      showSource(first);
      root.dataset.runs = String(Number(root.dataset.runs || 0) + 1);
    } catch (error) {
      status.textContent = error.message;
    } finally {
      run.disabled = false;
    }
  });

  const sweep = async (axis) => {
    status.textContent = `Measuring time against ${axis} size (at most about 1.5 s)…`;
    try {
      const answer = await api.post('/api/algorithms/sweep', { axis });
      chart.replaceChildren(sweepChart(answer));
      const skipped = Object.entries(answer.skipped).map(([k, v]) => `${k}: ${v}`);
      status.textContent = skipped.length ? `Not measured: ${skipped.join('; ')}` : 'Median of 3 runs per point, random float32 data, stride 1.';
      root.dataset.sweeps = String(Number(root.dataset.sweeps || 0) + 1);
    } catch (error) {
      status.textContent = error.message;
    }
  };
  byKernel.addEventListener('click', () => sweep('kernel'));
  bySize.addEventListener('click', () => sweep('size'));
}
