// The thin API module: every request the page makes goes through here, to the page's own origin only.
//
// `latest(key, path, body)` keeps at most one request in flight per key: a newer call aborts the older one
// (AbortController), and an answer that is no longer the newest is dropped, so dragging a slider never
// queues requests and a slow stale answer can never overwrite a newer picture.

/** Thrown (and ignored by callers) when a request was superseded by a newer one. */
export class Superseded extends Error {
  constructor() {
    super('superseded by a newer request');
    this.name = 'Superseded';
  }
}

/** An HTTP error carrying the server's sentence. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {*} detail  the parsed `detail` field of the response, if any
   */
  constructor(status, message, detail) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.detail = detail;
  }
}

/**
 * Turn an error response body into one readable sentence.
 * @param {number} status
 * @param {*} body parsed JSON or null
 * @returns {string}
 */
export function errorSentence(status, body) {
  const detail = body && body.detail;
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail) && detail.length) {
    return detail
      .map((d) => {
        const field = Array.isArray(d.loc) ? d.loc.filter((p) => p !== 'body').join('.') : '';
        const msg = String(d.msg || '').replace(/^Value error, /, '');
        return field ? `${field}: ${msg}` : msg;
      })
      .join('; ');
  }
  return `the server answered ${status}`;
}

/**
 * Fetch JSON, throwing ApiError with the server's sentence on a non-2xx answer.
 * @param {string} path   same-origin path, e.g. '/api/conv'
 * @param {RequestInit} init
 * @returns {Promise<*>}
 */
async function fetchJson(path, init = {}) {
  const response = await fetch(path, { credentials: 'same-origin', ...init });
  let body = null;
  const text = await response.text();
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, errorSentence(response.status, body), body && body.detail);
  return body;
}

/**
 * Create the API client used by the whole page (and handed to the network view).
 * @returns {{get: Function, post: Function, latest: Function, upload: Function, cancel: Function}}
 */
export function createApi() {
  /** key → {controller, serial} of the request in flight */
  const inflight = new Map();
  let serial = 0;

  return {
    /**
     * GET a JSON document.
     * @param {string} path
     * @returns {Promise<*>}
     */
    get(path) {
      return fetchJson(path);
    },

    /**
     * POST JSON and read JSON (no de-duplication).
     * @param {string} path
     * @param {Object} body
     * @returns {Promise<*>}
     */
    post(path, body) {
      return fetchJson(path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    },

    /**
     * POST with at most one request in flight for `key`; newest wins, stale answers reject with Superseded.
     * @param {string} key   e.g. 'conv'
     * @param {string} path
     * @param {Object} body
     * @returns {Promise<*>}
     */
    async latest(key, path, body) {
      const previous = inflight.get(key);
      if (previous) previous.controller.abort();
      const controller = new AbortController();
      serial += 1;
      const mine = serial;
      inflight.set(key, { controller, serial: mine });
      try {
        const result = await fetchJson(path, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(body),
          signal: controller.signal,
        });
        if (inflight.get(key)?.serial !== mine) throw new Superseded();
        return result;
      } catch (error) {
        if (error.name === 'AbortError' || inflight.get(key)?.serial !== mine) throw new Superseded();
        throw error;
      } finally {
        if (inflight.get(key)?.serial === mine) inflight.delete(key);
      }
    },

    /**
     * Abort the request in flight for `key`, if any.
     * @param {string} key
     */
    cancel(key) {
      const previous = inflight.get(key);
      if (previous) {
        previous.controller.abort();
        inflight.delete(key);
      }
    },

    /**
     * Upload an image file (multipart field `file`).
     * @param {Blob} file
     * @param {string} [name]
     * @returns {Promise<Object>} {id, width, height, channels, ...}
     */
    upload(file, name = 'upload.png') {
      const form = new FormData();
      form.append('file', file, file.name || name);
      return fetchJson('/api/images', { method: 'POST', body: form });
    },
  };
}
