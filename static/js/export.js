// Share and export: the equivalent torch.nn.functional code, .npy files and PNG downloads (slide-sized:
// enlarged with square pixels, with the colour bar and its range written under the picture).
import { diverging, fmt, sequential } from './render/common.js';

/** Long side of a slide picture at least this many pixels; never more than SLIDE_MAX. */
export const SLIDE_MIN = 512;
export const SLIDE_MAX = 4096;

/**
 * Integer enlargement for an h × w picture: the long side reaches SLIDE_MIN, and a thin picture (an im2col
 * matrix of 9 rows) gets tall enough to see, without passing SLIDE_MAX.
 * @param {number} h
 * @param {number} w
 * @returns {number} at least 1
 */
export function slideFactor(h, w) {
  const long = Math.max(h, w);
  const short = Math.min(h, w);
  const cap = Math.max(1, Math.floor(SLIDE_MAX / long));
  return Math.max(1, Math.min(cap, Math.max(Math.ceil(SLIDE_MIN / long), Math.ceil(64 / short))));
}

/**
 * A picture for a slide: `source` enlarged with nearest-neighbour pixels, on white, with a colour bar for
 * [lo, hi] and a caption under it.
 * @param {CanvasImageSource} source  drawn from its (0, 0, width, height)
 * @param {number} width   source pixels
 * @param {number} height
 * @param {{lo: number, hi: number, colormap: string, caption: string}} scale
 * @returns {HTMLCanvasElement}
 */
export function slideCanvas(source, width, height, scale) {
  const factor = slideFactor(height, width);
  const pictureW = width * factor;
  const pictureH = height * factor;
  const margin = 16;
  const barW = Math.min(Math.max(pictureW, 320), 1024);
  const font = Math.max(16, Math.round(Math.min(barW, 1024) / 40));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(pictureW, barW) + 2 * margin;
  canvas.height = pictureH + 3 * margin + 24 + 2 * font + 8;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(source, 0, 0, width, height, margin, margin, pictureW, pictureH);
  const { lo, hi, colormap } = scale;
  const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  const [a, b] = colormap === 'diverging' ? [-m, m] : [lo, hi];
  const colour = colormap === 'diverging' ? (v) => diverging(v / m) : (v) => sequential(hi === lo ? 0.5 : (v - lo) / (hi - lo));
  const y0 = pictureH + 2 * margin;
  for (let x = 0; x < barW; x += 1) {
    const [r, g, bl] = colour(a + ((b - a) * x) / (barW - 1));
    ctx.fillStyle = `rgb(${r}, ${g}, ${bl})`;
    ctx.fillRect(margin + x, y0, 1, 24);
  }
  ctx.strokeStyle = '#888';
  ctx.strokeRect(margin + 0.5, y0 + 0.5, barW - 1, 23);
  ctx.fillStyle = '#000';
  ctx.font = `${font}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  ctx.textAlign = 'left';
  ctx.fillText(fmt(a, 4), margin, y0 + 28);
  ctx.textAlign = 'right';
  ctx.fillText(fmt(b, 4), margin + barW, y0 + 28);
  if (a < 0 && b > 0) {
    ctx.textAlign = 'center';
    ctx.fillText('0', margin + (barW * (0 - a)) / (b - a), y0 + 28);
  }
  ctx.textAlign = 'left';
  ctx.fillText(scale.caption, margin, y0 + 32 + font);
  return canvas;
}

/**
 * Encode a float32 array as a NumPy .npy file (format version 1.0, '<f4', C order).
 * @param {ArrayLike<number>} data  flat values in C order
 * @param {number[]} shape
 * @returns {Uint8Array}
 *
 * Layout: magic "\x93NUMPY", version 1 0, uint16 little-endian header length, an ASCII dict padded with spaces
 * and a final "\n" so that the data starts at a multiple of 64 bytes, then the little-endian float32 values.
 */
export function encodeNpy(data, shape) {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const preamble = 10;
  const total = Math.ceil((preamble + header.length + 1) / 64) * 64;
  header = header.padEnd(total - preamble - 1, ' ') + '\n';
  const bytes = new Uint8Array(total + data.length * 4);
  bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  const view = new DataView(bytes.buffer);
  view.setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i += 1) bytes[preamble + i] = header.charCodeAt(i);
  for (let i = 0; i < data.length; i += 1) view.setFloat32(total + i * 4, data[i], true);
  return bytes;
}

/**
 * Flatten nested arrays of numbers and return them with their shape.
 * @param {*} nested
 * @returns {{flat: number[], shape: number[]}}
 */
export function flattenNested(nested) {
  const shape = [];
  let level = nested;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  return { flat: nested.flat(Infinity), shape };
}

/**
 * Offer a Blob as a download.
 * @param {Blob} blob
 * @param {string} filename
 */
export function downloadBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * Download a canvas as PNG (canvas.toBlob).
 * @param {HTMLCanvasElement} canvas
 * @param {string} filename
 */
export function downloadCanvas(canvas, filename) {
  canvas.toBlob((blob) => blob && downloadBlob(blob, filename), 'image/png');
}

/**
 * Download nested numbers as a float32 .npy file.
 * @param {*} nested
 * @param {string} filename
 */
export function downloadNpy(nested, filename) {
  const { flat, shape } = flattenNested(nested);
  downloadBlob(new Blob([encodeNpy(flat, shape)], { type: 'application/octet-stream' }), filename);
}

/**
 * Python literal for nested numbers.
 * @param {*} value
 * @returns {string}
 */
function pyList(value) {
  if (Array.isArray(value)) return `[${value.map(pyList).join(', ')}]`;
  return Number.isInteger(value) ? `${value}.` : String(value);
}

/**
 * The lines of the PyTorch snippet that load the input x (1, C, H, W).
 * @param {Object} request  the POST /api/conv body
 * @returns {string[]}
 */
function inputLines(request) {
  if (String(request.image).startsWith('act:')) {
    return [
      `# layer_input.npy: this layer's real input, float32 (C, H, W): GET /api/images/${request.image}.npy`,
      "x = torch.from_numpy(np.load('layer_input.npy', allow_pickle=False))[None]",
    ];
  }
  return [
    "# input.png: the 'Input PNG' download of this page (already downscaled), scaled to [0, 1]",
    request.color === 'rgb'
      ? "x = torch.from_numpy(np.asarray(Image.open('input.png').convert('RGB'), dtype=np.float32) / 255).permute(2, 0, 1)[None]"
      : "x = torch.from_numpy(np.asarray(Image.open('input.png').convert('L'), dtype=np.float32) / 255)[None, None]",
  ];
}

/**
 * The torch.nn.functional code that computes the same maps as the page.
 * @param {Object} request  the POST /api/conv body the page sends (explicit weights)
 * @param {Object} padding  resolved {top, bottom, left, right}
 * @returns {string}
 */
export function pytorchCode(request, padding) {
  const { top, bottom, left, right } = padding;
  const lines = [
    'import numpy as np',
    'import torch',
    'import torch.nn.functional as F',
    'from PIL import Image',
    '',
    ...inputLines(request),
    `w = torch.tensor(${pyList(request.weight)})  # (F, C/groups, KH, KW)`,
    `b = torch.tensor(${pyList(request.bias)})  # (F,)`,
  ];
  const symmetric = top === bottom && left === right;
  const mode = request.padding_mode || 'zeros';
  const padded = top || bottom || left || right;
  let padArg = `padding=(${top}, ${left}), `;
  if (mode !== 'zeros' && padded) {
    // F.pad fills the border as nn.Conv2d(..., padding_mode=mode) does, then the convolution pads nothing
    if (symmetric) {
      lines.push(`# = nn.Conv2d(..., padding=(${top}, ${left}), padding_mode='${mode}')`);
    }
    lines.push(
      `x = F.pad(x, (${left}, ${right}, ${top}, ${bottom}), mode='${mode}')  # (left, right, top, bottom)`,
    );
    padArg = '';
  } else if (!symmetric) {
    lines.push(`x = F.pad(x, (${left}, ${right}, ${top}, ${bottom}))  # (left, right, top, bottom)`);
    padArg = '';
  } else if (top === 0 && left === 0) {
    padArg = '';
  }
  const [sh, sw] = request.stride;
  const [dh, dw] = request.dilation;
  lines.push(
    `y = F.conv2d(x, w, b, stride=(${sh}, ${sw}), ${padArg}dilation=(${dh}, ${dw}), groups=${request.groups})`,
  );
  if (request.activation === 'relu') lines.push('y = F.relu(y)');
  const pool = request.pool;
  if (pool) {
    const fn = pool.mode === 'max' ? 'max_pool2d' : 'avg_pool2d';
    lines.push(
      `y = F.${fn}(y, kernel_size=${pool.kernel_size}, stride=${pool.stride}, padding=${pool.padding})`,
    );
  }
  lines.push('print(y.shape)');
  return lines.join('\n');
}
