// Share and export buttons: PNG and .npy downloads of the maps and matrices, and copying text to the clipboard.
import { downloadBlob, downloadCanvas, downloadNpy } from './export.js';

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
    if (what === 'map-png') downloadCanvas($(`map-${f}`), `feature_map_${f}.png`);
    if (what === 'im2col-png' && app.im2col) downloadBlob(dataUrlBlob(app.im2col.png), 'im2col.png');
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
   * Copy text to the clipboard, or say where to find it.
   * @param {string} text
   * @param {string} what
   */
  app.copy = async (text, what) => {
    try {
      await navigator.clipboard.writeText(text);
      app.status(`${what} copied to the clipboard.`);
    } catch {
      app.status(`Could not use the clipboard; the ${what.toLowerCase()} is in the box under "Share and export".`);
    }
  };
}
