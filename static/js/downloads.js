// Share and export buttons: PNG and .npy downloads of the maps and matrices, and copying text to the clipboard.
import { downloadBlob, downloadCanvas, downloadNpy, pytorchCode, slideCanvas } from './export.js';
import { loadImage } from './render/common.js';
import { loadPicture } from './render/pictures.js';
import { queryFromState } from './state.js';

/**
 * Decode a PNG data URL to a Blob (fetch() of data: URLs is blocked by connect-src 'self').
 * @param {string} url
 * @returns {Blob}
 */
function dataUrlBlob(url) {
  const [head, base64] = url.split(',');
  const bytes = Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
  return new Blob([bytes], { type: head.slice(5).split(';')[0] });
}

/**
 * Add download and copy actions to the app (main.js).
 * @param {Object} app  needs state, api, conv, convRequest, im2col, backward, status()
 * @param {Document} doc
 */
export function installDownloads(app, doc) {
  const $ = (id) => doc.getElementById(id);
  const { api } = app;

  /**
   * Handle a download button.
   * @param {string} what
   */
  app.download = async (what) => {
    const s = app.state;
    const f = s.pos[0];
    if (!app.conv) return;
    if (what === 'input-png') downloadBlob(dataUrlBlob(app.conv.input.png), 'input.png');
    if (what === 'map-png') {
      // slide-sized: square enlarged pixels and the colour bar (the exact numbers are in the .npy)
      const map = app.conv.conv.maps[f];
      const [, , oh, ow] = app.conv.conv.shape;
      // the map as the page holds it: 8-bit colour-map levels (`?pictures=levels`) or a PNG data URL
      const image = await loadPicture(map);
      const caption = `filter ${f}: ${oh} × ${ow} feature map, min ${map.min}, max ${map.max}`;
      downloadCanvas(slideCanvas(image, ow, oh, { lo: map.min, hi: map.max, colormap: map.colormap, caption }), `feature_map_${f}.png`);
    }
    // im2col and the backward pass are filled in only when on screen or after a quiet moment (issue 9)
    if (what.startsWith('im2col')) await app.ensureView('im2col');
    if (what === 'gradx-npy') await app.ensureView('backward');
    if (what === 'im2col-png' && app.im2col) {
      const data = app.im2col;
      const image = await loadImage(data.png);
      const every = data.png_column_step > 1 ? ` (every ${data.png_column_step}th column)` : '';
      const caption = `im2col X_col: ${data.rows} × ${data.cols}, rows (c, kh, kw), columns (oh, ow)${every}`;
      const colormap = data.min < 0 ? 'diverging' : 'sequential';
      downloadCanvas(slideCanvas(image, image.naturalWidth, image.naturalHeight, { lo: data.min, hi: data.max, colormap, caption }), 'im2col.png');
    }
    if (what === 'map-npy') {
      const maps = app.conv.conv.maps;
      let values = maps[0].values ? maps.map((m) => m.values) : null;
      if (!values) {
        try {
          values = await app.fetchAllValues();
        } catch (error) {
          app.status(`Could not fetch the map values: ${error.message}`);
          return;
        }
      }
      downloadNpy(values, 'feature_maps.npy');
    }
    if (what === 'im2col-npy') {
      if (app.im2col && app.im2col.values) downloadNpy(app.im2col.values, 'im2col.npy');
      else app.status('The im2col matrix is too large to send as numbers (over 50,000 entries); use the PyTorch code.');
    }
    if (what === 'gradx-npy') {
      if (app.backward && app.backward.grad_x.values) downloadNpy(app.backward.grad_x.values, 'grad_x.npy');
      else app.status('grad_x is sent as numbers only up to 64 × 64 per channel.');
    }
  };

  /**
   * Exact values of every conv map larger than 64 × 64, fetched in 64 × 64 tiles (the API's region limit).
   * @returns {Promise<number[][][]>} (F, OH, OW)
   */
  app.fetchAllValues = async () => {
    const [, f, oh, ow] = app.conv.conv.shape;
    const out = Array.from({ length: f }, () => Array.from({ length: oh }, () => new Array(ow).fill(0)));
    for (let y0 = 0; y0 < oh; y0 += 64) {
      for (let x0 = 0; x0 < ow; x0 += 64) {
        const region = { y0, y1: Math.min(oh, y0 + 64), x0, x1: Math.min(ow, x0 + 64) };
        app.status(`fetching values ${y0}, ${x0} of ${oh} × ${ow}…`);
        const answer = await api.post('/api/conv', { ...app.convRequest, values: true, region });
        answer.conv.maps.forEach((map, k) => {
          map.values.forEach((row, r) => row.forEach((v, c) => { out[k][y0 + r][x0 + c] = v; }));
        });
      }
    }
    app.status('');
    return out;
  };

  /**
   * The link to this view for someone else: every shared setting, never projector mode.
   * @returns {string}
   */
  app.shareLink = () => `${window.location.origin}${window.location.pathname}${queryFromState(app.state)}`;

  /**
   * Show text selected in a visible field, for Ctrl+C.
   * @param {string} text
   * @param {string} label
   */
  const showCopyBox = (text, label) => {
    $('copy-label').textContent = label;
    const field = $('copy-text');
    field.value = text;
    field.rows = Math.min(12, Math.max(2, text.split('\n').length));
    $('copy-box').hidden = false;
    field.focus();
    field.select();
    field.setSelectionRange(0, text.length);
  };
  $('copy-close').addEventListener('click', () => {
    $('copy-box').hidden = true;
  });
  $('copy-box').addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      $('copy-box').hidden = true;
    }
  });

  /**
   * Copy text: the clipboard where the browser allows it (a secure context: https or this computer);
   * otherwise (plain http on a school network) the text, selected, in a visible field with "press Ctrl+C".
   * @param {string} text
   * @param {string} what  'Link' | 'PyTorch code'
   */
  app.copy = async (text, what) => {
    if (window.isSecureContext && navigator.clipboard) {
      try {
        await navigator.clipboard.writeText(text);
        $('copy-box').hidden = true;
        app.status(`${what} copied to the clipboard.`);
        return;
      } catch {
        // refused (e.g. no permission): fall through to the field
      }
    }
    showCopyBox(text, `${what}: press Ctrl+C (⌘C on a Mac) to copy it — this page is not allowed to use the clipboard directly.`);
    app.status(`The ${what === 'Link' ? 'link' : what} is selected in the field below: press Ctrl+C (⌘C on a Mac) to copy it.`);
  };

  /** Copy the PyTorch code of the CURRENT settings (not of the last map, which may be stale). */
  app.copyCode = () => {
    if (!app.geometry) {
      $('copy-box').hidden = true;
      app.status(`No PyTorch code to copy: these settings do not fit the input (${$('problem').textContent}).`);
      return;
    }
    app.copy(pytorchCode(app.convBody(), app.geometry.padding), 'PyTorch code');
  };
}
