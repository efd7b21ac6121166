// Pictures the server sends as 8-bit colour-map levels (`?pictures=levels` on /api/conv and /api/backward)
// instead of PNGs: decoded from base64 and coloured here with the colour maps of common.js, which are the
// palettes of app/render.py's PNGs — so every pixel is the one the PNG would have had, and the server
// spends no time compressing pictures.
import { diverging, loadImage, sequential } from './common.js';

/** Colour map name → 256 RGBA entries (Uint8ClampedArray of 1024). */
const TABLES = new Map();

/**
 * The 256-entry colour table of a colour map, as app/render.py's DIVERGING_LUT / SEQUENTIAL_LUT:
 * diverging level i is the colour of t = (i − 127) / 127 (white at 127), sequential level i is grey i.
 * @param {string} colormap  'diverging' | 'sequential'
 * @returns {Uint8ClampedArray} RGBA, 4 bytes per level
 */
export function colourTable(colormap) {
  let table = TABLES.get(colormap);
  if (!table) {
    table = new Uint8ClampedArray(256 * 4);
    for (let i = 0; i < 256; i += 1) {
      const rgb = colormap === 'diverging' ? diverging(Math.max(-1, Math.min(1, (i - 127) / 127))) : sequential(i / 255);
      table[i * 4] = rgb[0];
      table[i * 4 + 1] = rgb[1];
      table[i * 4 + 2] = rgb[2];
      table[i * 4 + 3] = 255;
    }
    TABLES.set(colormap, table);
  }
  return table;
}

/**
 * Base64 → bytes.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function decodeBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * Paint levels {shape: [H, W] or [C, H, W], colormap, b64} onto a new canvas: C maps side by side with `gap`
 * white pixels between them (as app/render.py's grid_png). The canvas also answers `naturalWidth` and
 * `naturalHeight`, so it can stand in for a decoded PNG image.
 * @param {{shape: number[], colormap: string, b64: string}} levels
 * @param {number} [gap]
 * @returns {HTMLCanvasElement}
 */
export function levelsCanvas(levels, gap = 2) {
  const shape = levels.shape.length === 3 ? levels.shape : [1, ...levels.shape];
  const [c, h, w] = shape;
  const width = c * w + (c - 1) * gap;
  const bytes = decodeBase64(levels.b64);
  const table = colourTable(levels.colormap);
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, width);
  canvas.height = Math.max(1, h);
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(canvas.width, canvas.height);
  const data = image.data;
  data.fill(255);
  for (let k = 0; k < c; k += 1) {
    for (let y = 0; y < h; y += 1) {
      let src = (k * h + y) * w;
      let dst = (y * width + k * (w + gap)) * 4;
      for (let x = 0; x < w; x += 1, src += 1, dst += 4) {
        const t = bytes[src] * 4;
        data[dst] = table[t];
        data[dst + 1] = table[t + 1];
        data[dst + 2] = table[t + 2];
      }
    }
  }
  ctx.putImageData(image, 0, 0);
  canvas.naturalWidth = canvas.width;
  canvas.naturalHeight = canvas.height;
  return canvas;
}

/**
 * A drawable for a picture of the API: a PNG data URL (string), or an object with `levels` or `png`.
 * @param {string|{levels?: Object, png?: string}} picture
 * @returns {Promise<HTMLImageElement|HTMLCanvasElement>}
 */
export async function loadPicture(picture) {
  if (typeof picture === 'string') return loadImage(picture);
  if (picture.levels) return levelsCanvas(picture.levels);
  return loadImage(picture.png);
}
