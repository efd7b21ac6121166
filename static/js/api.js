// The thin API module: every request the page makes goes through here, to the page's own origin only.
//
// `latest(key, path, body)` keeps at most one request in flight per key: a newer call aborts the older one
// (AbortController), and an answer that is no longer the newest is dropped, so dragging a slider never
// queues requests and a slow stale answer can never overwrite a newer picture. A busy server's 503 with
// Retry-After is asked again after that wait (fetchJsonPatiently), a few times, unless superseded.

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
   * @param {number|null} [retryAfter]  seconds of a 503's `Retry-After` header, if any
   */
  constructor(status, message, detail, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
}

/** A busy server (503 with Retry-After) is asked again this many times before its sentence is shown. */
export const BUSY_RETRIES = 3;
/** The longest wait before asking again (s), whatever Retry-After says. */
const BUSY_WAIT_MAX_S = 5;

/**
 * Wait `seconds`, or reject with AbortError as soon as `signal` aborts.
 * @param {number} seconds
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
function pause(seconds, signal) {
  return new Promise((resolve, reject) => {
    const abort = () => {
      clearTimeout(timer);
      reject(new DOMException('aborted', 'AbortError'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      resolve();
    }, seconds * 1000);
    if (signal?.aborted) abort();
    else signal?.addEventListener('abort', abort, { once: true });
  });
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
  if (!response.ok) {
    const retryAfter = Number.parseInt(response.headers.get('Retry-After') ?? '', 10);
    throw new ApiError(
      response.status,
      errorSentence(response.status, body),
      body && body.detail,
      Number.isFinite(retryAfter) ? retryAfter : null,
    );
  }
  return body;
}

/**
 * fetchJson, asking again when the server is busy: a 503 with Retry-After (the worker's queue is full,
 * app/admission.py) is retried after that many seconds (at most BUSY_WAIT_MAX_S), up to BUSY_RETRIES times,
 * unless `init.signal` aborts meanwhile. A class on one laptop then sees its views fill in a moment later
 * instead of an error that stays until the next slider move.
 * @param {string} path
 * @param {RequestInit} init
 * @returns {Promise<*>}
 */
async function fetchJsonPatiently(path, init = {}) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await fetchJson(path, init);
    } catch (error) {
      const busy = error instanceof ApiError && error.status === 503 && error.retryAfter !== null;
      if (!busy || attempt >= BUSY_RETRIES) throw error;
      await pause(Math.min(Math.max(error.retryAfter, 0), BUSY_WAIT_MAX_S), init.signal);
    }
  }
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
      return fetchJsonPatiently(path, {
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
        const result = await fetchJsonPatiently(path, {
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
