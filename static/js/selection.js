// Selecting on the views, the same way with a mouse, a finger or the keyboard:
//
// - feature maps: hover previews an output pixel; a click or tap PINS it (hovering then leaves it alone)
//   until it is clicked again or Esc is pressed; the arrow keys move it (and pin it);
// - input: hover, tap or the arrow keys pick an input pixel and show the outputs it feeds (overlap count);
// - im2col: hover, tap or the arrow keys pick a cell and show its (c, kh, kw) row, (oh, ow) column and value.
import { matrixCellAt, LABEL_H } from './render/im2col.js';
import { inputCellAt } from './render/input.js';
import { mapCellAt } from './render/maps.js';

const MOVES = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };

/**
 * Bind the selection events of the views.
 * @param {Document} doc
 * @param {Object} app  from main.js
 */
export function bindSelection(doc, app) {
  const $ = (id) => doc.getElementById(id);
  const s = () => app.state;
  const same = (a, b) => a && b && a.length === b.length && a.every((v, i) => v === b[i]);

  // ---- feature maps and pooled maps
  /** The conv-output [f, y, x] under a pointer (a pooled pixel selects the conv pixel it came from). */
  const cellFromEvent = (event) => {
    const stack = event.target.closest('.map-stack');
    if (!stack) return null;
    const cell = mapCellAt(event, stack);
    if (!cell) return null;
    if (stack.dataset.kind !== 'pool') return cell;
    const [f, py, px] = cell;
    const pooled = app.conv?.pool?.maps[f];
    const ow = app.conv.conv.shape[3];
    const flat = pooled?.argmax ? pooled.argmax[py][px] : null;
    const state = s();
    const y = flat !== null ? Math.floor(flat / ow) : Math.max(0, py * state.ps - state.pp);
    const x = flat !== null ? flat % ow : Math.max(0, px * state.ps - state.pp);
    return [f, y, x];
  };
  const preview = (event) => {
    if (app.pinned || event.pointerType === 'touch') return;
    const cell = cellFromEvent(event);
    if (cell && !same(cell, s().pos)) app.set({ pos: cell });
  };
  const pinAt = (event) => {
    const cell = cellFromEvent(event);
    if (!cell) return;
    if (app.pinned && same(cell, s().pos)) {
      app.pin(false);
      return;
    }
    app.pinned = true;
    if (same(cell, s().pos)) app.pin(true);
    else app.set({ pos: cell });
  };
  for (const container of [$('maps'), $('pooled')]) {
    container.addEventListener('pointermove', preview);
    container.addEventListener('click', pinAt);
  }
  $('maps').addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      if (app.pinned) {
        event.preventDefault();
        app.pin(false);
      }
      return;
    }
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      app.pin(!app.pinned);
      return;
    }
    const move = MOVES[event.key];
    if (!move || !app.geometry) return;
    event.preventDefault();
    const [oh, ow] = app.geometry.output;
    const [f, y, x] = s().pos;
    app.pinned = true;
    app.set({ pos: [f, Math.max(0, Math.min(oh - 1, y + move[0])), Math.max(0, Math.min(ow - 1, x + move[1]))] });
  });
  // Esc anywhere (outside a text field) releases a pinned pixel
  doc.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape' || event.defaultPrevented) return;
    if (event.target.closest?.('input, textarea, select')) return;
    if (app.pinned) app.pin(false);
    if (app.inputPinned) releaseInput();
    if (app.im2colCell) releaseCell();
  });

  // ---- input: which outputs read a pixel
  const input = $('input-stack');
  app.inputPinned = false;
  const releaseInput = () => {
    app.inputPinned = false;
    input.dataset.pinned = 'false';
    app.hoverInputAt(null);
  };
  input.addEventListener('pointermove', (event) => {
    if (!app.geometry || app.inputPinned || event.pointerType === 'touch') return;
    app.hoverInputAt(inputCellAt(event, input, app.geometry));
  });
  input.addEventListener('pointerleave', () => {
    if (!app.inputPinned) app.hoverInputAt(null);
  });
  input.addEventListener('click', (event) => {
    if (!app.geometry) return;
    const cell = inputCellAt(event, input, app.geometry);
    if (!cell || (app.inputPinned && same(cell, app.hoverInput))) {
      releaseInput();
      return;
    }
    app.inputPinned = true;
    input.dataset.pinned = 'true';
    app.hoverInputAt(cell);
  });
  input.addEventListener('keydown', (event) => {
    if (!app.geometry) return;
    if (event.key === 'Escape' && app.inputPinned) {
      event.preventDefault();
      releaseInput();
      return;
    }
    const move = MOVES[event.key];
    if (!move) return;
    event.preventDefault();
    const [ph, pw] = app.geometry.padded;
    const start = app.hoverInput || [app.geometry.padding.top, app.geometry.padding.left];
    const cell = app.hoverInput
      ? [Math.max(0, Math.min(ph - 1, start[0] + move[0])), Math.max(0, Math.min(pw - 1, start[1] + move[1]))]
      : start;
    app.inputPinned = true;
    input.dataset.pinned = 'true';
    app.hoverInputAt(cell);
  });

  // ---- im2col: one cell's row, column and value
  const scroller = $('im2col-scroll');
  scroller.addEventListener('scroll', () => app.drawIm2col());
  app.im2colCell = null;
  const releaseCell = () => {
    app.im2colCell = null;
    scroller.dataset.pinned = 'false';
    app.drawIm2col();
  };
  /**
   * The readout of matrix cell [r, c].
   * @param {number[]} cell
   * @returns {string}
   */
  app.im2colReadout = ([r, c]) => {
    const data = app.im2col;
    const [ch, kh, kw] = data.row_labels[r];
    const ow = data.out_size[1];
    const value = data.values ? ` = ${data.values[r][c]}` : ' (values are sent only for matrices up to 50,000 entries)';
    const index = data.indices ? `; k = ${data.indices.k[r]}, i = ${data.indices.i[r][c]}, j = ${data.indices.j[r][c]}` : '';
    return `row ${r} (c ${ch}, kh ${kh}, kw ${kw}), column ${c} (oh ${Math.floor(c / ow)}, ow ${c % ow})${value}${index}`;
  };
  const showCell = (cell) => {
    $('im2col-hover').textContent = cell ? app.im2colReadout(cell) : '';
  };
  scroller.addEventListener('pointermove', (event) => {
    const data = app.im2col;
    if (!data || app.im2colCell || event.pointerType === 'touch') return;
    showCell(matrixCellAt(event, $('im2col-canvas'), scroller, data, s().zoom));
  });
  scroller.addEventListener('click', (event) => {
    const data = app.im2col;
    if (!data) return;
    const cell = matrixCellAt(event, $('im2col-canvas'), scroller, data, s().zoom);
    if (!cell) return;
    app.im2colCell = cell;
    scroller.dataset.pinned = 'true';
    showCell(cell);
    const ow = data.out_size[1];
    const pos = [s().pos[0], Math.floor(cell[1] / ow), cell[1] % ow];
    if (same(pos, s().pos)) app.drawIm2col();
    else app.set({ pos });
  });
  scroller.addEventListener('keydown', (event) => {
    const data = app.im2col;
    if (!data) return;
    if (event.key === 'Escape' && app.im2colCell) {
      event.preventDefault();
      releaseCell();
      showCell(null);
      return;
    }
    const move = MOVES[event.key];
    if (!move) return;
    event.preventDefault();
    const [, y, x] = s().pos;
    const ow = data.out_size[1];
    const current = app.im2colCell || [0, y * ow + x];
    const r = Math.max(0, Math.min(data.rows - 1, current[0] + (app.im2colCell ? move[0] : 0)));
    const c = Math.max(0, Math.min(data.cols - 1, current[1] + (app.im2colCell ? move[1] : 0)));
    app.im2colCell = [r, c];
    scroller.dataset.pinned = 'true';
    showCell(app.im2colCell);
    // keep the cell in view
    const zoom = s().zoom;
    const top = r * zoom;
    const visible = scroller.clientHeight - LABEL_H;
    if (top < scroller.scrollTop || top + zoom > scroller.scrollTop + visible) scroller.scrollTop = Math.max(0, top - visible / 2);
    const pos = [s().pos[0], Math.floor(c / ow), c % ow];
    if (same(pos, s().pos)) app.drawIm2col();
    else app.set({ pos });
  });
}
