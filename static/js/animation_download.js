// "Download animation": the GIF of GET /api/animation.gif for the page's current state (the same parameters
// as GET /api/conv.png), fetched from the page's own origin and saved as a file.
import { downloadBlob } from './export.js';

/**
 * The query of GET /api/animation.gif for a POST /api/conv body.
 * @param {Object} body  the page's POST /api/conv body (explicit weights)
 * @param {Object} [options]  animation options (kind, fps, width, step, ...)
 * @returns {string} a path with its query
 */
export function animationPath(body, options = {}) {
  const params = new URLSearchParams();
  params.set('image', body.image);
  params.set('color', body.color);
  if (body.max_side) params.set('max_side', String(body.max_side));
  params.set('weight', JSON.stringify(body.weight));
  if (body.bias) params.set('bias', body.bias.join(','));
  params.set('stride', body.stride.join(','));
  params.set('padding', Array.isArray(body.padding) ? body.padding.join(',') : String(body.padding));
  params.set('padding_mode', body.padding_mode || 'zeros');
  params.set('dilation', body.dilation.join(','));
  params.set('groups', String(body.groups));
  params.set('activation', body.activation);
  if (body.pool) {
    params.set('pool', body.pool.mode);
    params.set('pool_kernel', String(body.pool.kernel_size));
    params.set('pool_stride', String(body.pool.stride));
    params.set('pool_padding', String(body.pool.padding));
  }
  for (const [key, value] of Object.entries(options)) params.set(key, String(value));
  return `/api/animation.gif?${params.toString()}`;
}

/**
 * Bind the "Download animation" button.
 * @param {Document} doc
 * @param {() => (Object|null)} currentBody  the POST /api/conv body of the current state, or null
 * @param {(message: string) => void} status  shows a sentence to the user
 */
export function installAnimationDownload(doc, currentBody, status) {
  const button = doc.getElementById('download-animation');
  if (!button) return;
  button.addEventListener('click', async () => {
    const body = currentBody();
    if (!body) return;
    const filter = body.weight.length > 1 ? { filter: 0 } : {};
    const path = animationPath(body, filter);
    button.disabled = true;
    button.dataset.path = path;
    try {
      const response = await fetch(path);
      if (!response.ok) {
        const detail = await response.json().catch(() => null);
        const message = detail && Array.isArray(detail.detail) ? detail.detail[0].msg : detail?.detail;
        throw new Error(message || `animation failed (${response.status})`);
      }
      downloadBlob(await response.blob(), 'convlens_animation.gif');
    } catch (error) {
      status(error.message);
    } finally {
      button.disabled = false;
    }
  });
}
