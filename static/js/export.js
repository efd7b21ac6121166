// Share and export: the equivalent torch.nn.functional code, .npy files and PNG downloads.

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
    "# input.png: the 'Input PNG' download of this page (already downscaled), scaled to [0, 1]",
    request.color === 'rgb'
      ? "x = torch.from_numpy(np.asarray(Image.open('input.png').convert('RGB'), dtype=np.float32) / 255).permute(2, 0, 1)[None]"
      : "x = torch.from_numpy(np.asarray(Image.open('input.png').convert('L'), dtype=np.float32) / 255)[None, None]",
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
