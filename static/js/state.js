// The one state object of the page, its defaults, and its (de)serialisation to the URL.
//
// Every property the page can be in is declared once in PROPERTIES (name, type, default, range), in the
// manner of tensorflow/playground's state table: the URL reader, the URL writer and the clamping all
// walk this table, so a new control is one new row here plus its binding in controls.js.

/**
 * @typedef {Object} PropertySpec
 * @property {string} key        name in the state object and in the URL query
 * @property {'int'|'float'|'bool'|'enum'|'string'|'ints'|'floats'|'strings'|'weights'} type
 * @property {*} def             default value
 * @property {number} [min]      smallest value (int)
 * @property {number} [max]      largest value (int)
 * @property {string[]} [values] allowed values (enum)
 * @property {string} [label]    words for a note about this property ("kernel height")
 * @property {boolean} [local]   true: never written into a link (projector mode is one screen's choice)
 */

/** @type {PropertySpec[]} */
export const PROPERTIES = [
  { key: 'image', type: 'string', def: 'mnist:0' },
  { key: 'color', type: 'enum', values: ['gray', 'rgb'], def: 'gray' },
  { key: 'side', type: 'int', def: 128, min: 8, max: 512, label: 'downscale size' },
  // kernel size, stride, dilation: (height, width)
  { key: 'kh', type: 'int', def: 3, min: 1, max: 11, label: 'kernel height' },
  { key: 'kw', type: 'int', def: 3, min: 1, max: 11, label: 'kernel width' },
  { key: 'sh', type: 'int', def: 1, min: 1, max: 8, label: 'stride (rows)' },
  { key: 'sw', type: 'int', def: 1, min: 1, max: 8, label: 'stride (columns)' },
  { key: 'dh', type: 'int', def: 1, min: 1, max: 5, label: 'dilation (rows)' },
  { key: 'dw', type: 'int', def: 1, min: 1, max: 5, label: 'dilation (columns)' },
  // padding: explicit (top, bottom, left, right) or one of the words
  { key: 'pad', type: 'enum', values: ['explicit', 'valid', 'same', 'full'], def: 'explicit' },
  { key: 'pt', type: 'int', def: 0, min: 0, max: 10, label: 'padding top' },
  { key: 'pb', type: 'int', def: 0, min: 0, max: 10, label: 'padding bottom' },
  { key: 'pl', type: 'int', def: 0, min: 0, max: 10, label: 'padding left' },
  { key: 'pr', type: 'int', def: 0, min: 0, max: 10, label: 'padding right' },
  // border mode (PyTorch's padding_mode)
  { key: 'pm', type: 'enum', values: ['zeros', 'reflect', 'replicate', 'circular'], def: 'zeros' },
  { key: 'groups', type: 'int', def: 1, min: 1, max: 8, label: 'groups' },
  { key: 'act', type: 'enum', values: ['none', 'relu'], def: 'none' },
  // filters: one preset name per filter ('custom' = the weights in `w`), one bias per filter
  { key: 'k', type: 'strings', def: ['sobel_x'] },
  { key: 'b', type: 'floats', def: [0] },
  { key: 'w', type: 'weights', def: [null] },
  // pooling
  { key: 'pool', type: 'enum', values: ['none', 'max', 'avg'], def: 'none' },
  { key: 'pk', type: 'int', def: 2, min: 1, max: 8, label: 'pool size' },
  { key: 'ps', type: 'int', def: 2, min: 1, max: 8, label: 'pool stride' },
  { key: 'pp', type: 'int', def: 0, min: 0, max: 4, label: 'pool padding' },
  // the selected output position [filter, y, x] (conv-output coordinates)
  { key: 'pos', type: 'ints', def: [0, 12, 16] },
  // backward pass
  { key: 'up', type: 'enum', values: ['ones', 'onehot', 'random'], def: 'ones' },
  { key: 'target', type: 'enum', values: ['conv', 'pool'], def: 'conv' },
  { key: 'seed', type: 'int', def: 0, min: 0, max: 2147483647 },
  // im2col view: what the matrix shows, and its zoom (pixels per cell)
  { key: 'm', type: 'enum', values: ['values', 'k', 'i', 'j'], def: 'values' },
  { key: 'zoom', type: 'int', def: 10, min: 1, max: 40 },
  // step-through speed (steps per second), view tab, projector mode
  { key: 'speed', type: 'int', def: 4, min: 1, max: 30 },
  { key: 'tab', type: 'enum', values: ['conv', 'network', 'layers'], def: 'conv' },
  { key: 'proj', type: 'bool', def: false, local: true },
  // network view: the chosen MNIST test digit, and the drawn digit (strokes, see encodeStrokes) when one is drawn
  { key: 'nd', type: 'int', def: 8000, min: 0, max: 9999, label: 'test digit' },
  { key: 'draw', type: 'string', def: '' },
  // Layers view: the stack (nn.Sequential text), its weights, the chosen unit [layer, channel, y, x]
  { key: 'stack', type: 'string', def: '' },
  { key: 'lw', type: 'enum', values: ['random', 'mnist'], def: 'random' },
  { key: 'lunit', type: 'ints', def: [] },
  // a layer of the stack opened in the convolution view: its index (−1: none; while ≥ 0 the filters are that
  // layer's weights, re-read from the stack, so `k`, `w`, `b` stay out of the link), the Layers view's own
  // image while the convolution view shows the layer's input (`image` is then its 'act:…' activation), and
  // that activation's channel count
  { key: 'lo', type: 'int', def: -1, min: -1, max: 31 },
  { key: 'lsrc', type: 'string', def: '' },
  { key: 'lc', type: 'int', def: 0, min: 0, max: 64 },
];

/** Most filters the page shows (app/schemas.py MAX_FILTERS_PAGE). */
export const MAX_FILTERS = 16;

/** Keys a link leaves out while a stack's layer is open (its weights are read from the stack again). */
const LAYER_WEIGHTS = new Set(['k', 'w', 'b']);

/**
 * Whether the image id is an activation stored by POST /api/stack/activation ('act:<sha256>').
 * @param {string} id
 * @returns {boolean}
 */
export function isActivation(id) {
  return typeof id === 'string' && id.startsWith('act:');
}

/**
 * A fresh state object holding every default.
 * @returns {Object}
 */
export function defaultState() {
  const state = {};
  for (const spec of PROPERTIES) state[spec.key] = structuredClone(spec.def);
  return state;
}

/**
 * Clamp an integer into a property's range (NaN → default).
 * @param {PropertySpec} spec
 * @param {number} value
 * @returns {number}
 */
function clampInt(spec, value) {
  if (!Number.isFinite(value)) return spec.def;
  const v = Math.round(value);
  return Math.min(spec.max ?? v, Math.max(spec.min ?? v, v));
}

/**
 * Parse one URL value according to its spec; an unreadable value gives the default.
 * @param {PropertySpec} spec
 * @param {string} text
 * @returns {*}
 */
function parseValue(spec, text) {
  switch (spec.type) {
    case 'int':
      return clampInt(spec, Number(text));
    case 'float': {
      const v = Number(text);
      return Number.isFinite(v) ? v : spec.def;
    }
    case 'bool':
      return text === '1' || text === 'true';
    case 'enum':
      return spec.values.includes(text) ? text : spec.def;
    case 'string':
      return text || spec.def;
    case 'ints':
      return text === '' ? [] : text.split(',').map((t) => Math.round(Number(t)) || 0);
    case 'floats':
      return text.split(',').map((t) => (Number.isFinite(Number(t)) ? Number(t) : 0));
    case 'strings':
      return text.split(',').filter(Boolean);
    case 'weights':
      // one flat list of numbers per filter, filters separated by ';', an empty entry = preset
      return text.split(';').map((t) => (t === '' ? null : t.split(',').map((v) => Number(v) || 0)));
    default:
      return spec.def;
  }
}

/**
 * Format one state value for the URL.
 * @param {PropertySpec} spec
 * @param {*} value
 * @returns {string}
 */
function formatValue(spec, value) {
  switch (spec.type) {
    case 'bool':
      return value ? '1' : '0';
    case 'ints':
    case 'floats':
    case 'strings':
      return value.join(',');
    case 'weights':
      return value.map((w) => (w ? w.map(formatNumber).join(',') : '')).join(';');
    default:
      return String(value);
  }
}

/**
 * Shortest text for a weight that still reads back as the same float32.
 * @param {number} v
 * @returns {string}
 */
export function formatNumber(v) {
  for (let digits = 1; digits <= 9; digits += 1) {
    const text = String(Number(v.toPrecision(digits)));
    if (Math.fround(Number(text)) === Math.fround(v)) return text;
  }
  return String(v);
}

/**
 * Read a state from a URL query string, with a note for every value the link asked for that could not be
 * used as it is (out of range, unreadable, too many filters), so that nothing changes without a word.
 * @param {string} search  e.g. location.search
 * @returns {{state: Object, notes: string[]}}
 */
export function readQuery(search) {
  const params = new URLSearchParams(search);
  const state = defaultState();
  const notes = [];
  for (const spec of PROPERTIES) {
    if (!params.has(spec.key)) continue;
    const text = params.get(spec.key);
    const value = parseValue(spec, text);
    state[spec.key] = value;
    if (spec.type === 'int' && spec.label) {
      const asked = Number(text);
      if (!Number.isFinite(asked)) {
        notes.push(`The link's ${spec.label} "${text}" is not a number, so the default ${value} is used.`);
      } else if (Math.round(asked) !== value) {
        const bound = asked > value ? `the maximum is ${spec.max}` : `the minimum is ${spec.min}`;
        notes.push(`The link asks for ${spec.label} ${text}, but ${bound}, so ${value} is used.`);
      }
    } else if (spec.type === 'enum' && text !== value) {
      notes.push(`The link's ${spec.key}=${text} is not one of ${spec.values.join(', ')}, so ${value} is used.`);
    } else if (spec.key === 'b' || spec.key === 'w') {
      // a bias or weight that is not a number, or outside ±1,000,000 (what the API accepts), is replaced by 0
      const words = spec.key === 'b' ? 'bias' : 'weight';
      const bad = text.split(/[;,]/).filter((t) => t !== '' && !(Math.abs(Number(t)) <= 1e6));
      if (bad.length) {
        const fix = (v) => (Math.abs(v) <= 1e6 ? v : 0);
        state[spec.key] = spec.key === 'b' ? value.map(fix) : value.map((w) => (w ? w.map(fix) : w));
        notes.push(
          `The link's ${words}${bad.length > 1 ? 's' : ''} ${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ', …' : ''} ` +
            `${bad.length > 1 ? 'are' : 'is'} not a number between −1,000,000 and 1,000,000, so 0 is used instead.`,
        );
      }
    }
  }
  if (state.k.length > MAX_FILTERS) {
    notes.push(
      `The link lists ${state.k.length} filters, but at most ${MAX_FILTERS} are allowed, ` +
        `so the first ${MAX_FILTERS} are used.`,
    );
  }
  return { state: normaliseFilters(state), notes };
}

/**
 * Read a state from a URL query string; absent or unreadable properties take their default.
 * @param {string} search  e.g. location.search
 * @returns {Object}
 */
export function stateFromQuery(search) {
  return readQuery(search).state;
}

/**
 * Write the state to a URL query string: every shared property, so a link reproduces the view exactly.
 * Local properties (projector mode) are left out: a link sent to students must not open their laptops in
 * projector mode.
 * @param {Object} state
 * @returns {string}  starting with '?'
 */
export function queryFromState(state) {
  const params = new URLSearchParams();
  for (const spec of PROPERTIES) {
    if (spec.local) continue;
    if (state.lo >= 0 && LAYER_WEIGHTS.has(spec.key)) continue;
    params.set(spec.key, formatValue(spec, state[spec.key]));
  }
  return `?${params.toString()}`;
}

/**
 * Make the per-filter lists (presets `k`, biases `b`, custom weights `w`) the same length (1..16).
 * @param {Object} state
 * @returns {Object} the same state
 */
export function normaliseFilters(state) {
  let count = Math.min(MAX_FILTERS, Math.max(1, state.k.length));
  if (!state.k.length) state.k = ['sobel_x'];
  state.k = state.k.slice(0, count);
  count = state.k.length;
  const bias = state.b.slice(0, count);
  while (bias.length < count) bias.push(0);
  state.b = bias;
  const weights = state.w.slice(0, count);
  while (weights.length < count) weights.push(null);
  state.w = weights;
  state.k = state.k.map((name, i) => (name === 'custom' && !state.w[i] ? 'identity' : name));
  if (state.pos.length !== 3) state.pos = [0, 0, 0];
  return state;
}

/**
 * Number of input channels the server will compute with.
 * @param {Object} state
 * @returns {number} 1 for gray, 3 for rgb; for an activation ('act:…' image) its own channel count `lc`
 */
export function channelCount(state) {
  if (isActivation(state.image)) return Math.max(1, state.lc);
  return state.color === 'rgb' ? 3 : 1;
}

/**
 * The padding as the API (and core.shapes.resolve_padding) takes it.
 * @param {Object} state
 * @returns {string|number[]} a word or [top, bottom, left, right]
 */
export function paddingSpec(state) {
  return state.pad === 'explicit' ? [state.pt, state.pb, state.pl, state.pr] : state.pad;
}

/**
 * The pooling request field, or null.
 * @param {Object} state
 * @returns {Object|null}
 */
export function poolSpec(state) {
  if (state.pool === 'none') return null;
  return { mode: state.pool, kernel_size: state.pk, stride: state.ps, padding: state.pp, ceil_mode: false };
}
