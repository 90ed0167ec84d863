/*
 * XrsViewer: the diagnostic image viewer of xai-reader-study (plain ES2020, no dependencies).
 *
 *   const viewer = new XrsViewer(container, {pixelsUrl, displayUrl, rows, columns, isColor,
 *     monochrome1, valueMin, valueMax, presets, overlayUrl, overlayOpacity});
 *   await viewer.ready;
 *
 * Full-precision modality values come from an XRS pixels file (16-bit integers + rescale,
 * deflate-compressed, explain/imaging/pixel_transfer.py) or a NumPy .npy file, sniffed by their
 * magic bytes, and are windowed in the browser
 * (PS3.3 C.11.2.1.2 LINEAR: y = ((x - (c - 0.5)) / (w - 1) + 0.5), clipped to [0, 1], x255,
 * MONOCHROME1 inverted after windowing), the same formula the server uses for the display PNG.
 * The 8-bit PNG is the fallback for colour images and for pixels that cannot be read; its values
 * are then windowed in display units (0..255, identity window c=128 w=256). See README.md.
 */
(function (global) {
  "use strict";

  const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const OPAQUE_GRAY = LITTLE_ENDIAN ? 0x010101 : 0x01010100;
  const OPAQUE_ALPHA = LITTLE_ENDIAN ? 0xff000000 : 0x000000ff;
  const INT_LUT_MAX_ENTRIES = 1 << 18; // integer data with a wider value span uses the float loop
  const ZOOM_STEP = 1.25;
  const DRAG_THRESHOLD_PX = 3;
  const WHEEL_GESTURE_GAP_MS = 300;
  const SHORTCUTS = [
    ["Left drag", "Window / level (horizontal: width, vertical: level)"],
    ["Middle drag, Shift + left drag", "Pan"],
    ["Right drag (up / down), mouse wheel", "Zoom (the wheel zooms around the cursor)"],
    ["Double-click", "Fit the image"],
    ["I", "Invert"],
    ["R, Space", "Reset (fit and initial window)"],
    ["+ / =, -", "Zoom in, zoom out"],
    ["Arrow keys", "Pan"],
    ["H", "Show / hide the heatmap (when there is one)"],
    ["1 \u2026 9", "Apply window preset N"],
    ["?", "Show / hide this help"],
    ["Esc", "Close this help"],
  ];

  // ---------------------------------------------------------------- NumPy .npy
  const NPY_TYPES = {
    b1: Uint8Array, u1: Uint8Array, i1: Int8Array, u2: Uint16Array, i2: Int16Array,
    u4: Uint32Array, i4: Int32Array, f2: Float32Array, f4: Float32Array, f8: Float64Array,
  };
  const NPY_GETTERS = {
    u2: "getUint16", i2: "getInt16", u4: "getUint32", i4: "getInt32", f4: "getFloat32",
    f8: "getFloat64",
  };

  function halfToFloat(h) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) return sign * frac * 2 ** -24;
    if (exp === 31) return frac ? NaN : sign * Infinity;
    return sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }

  /**
   * Parse a .npy file (format 1.0, 2.0 or 3.0) holding a 2-D array (a trailing axis of 1 is
   * accepted). Returns {data, rows, columns, dtype, isInteger}; data is a typed array in native
   * byte order and C order (Fortran-ordered files are transposed, float16 widened to float32).
   */
  function parseNpy(buffer) {
    const bytes = new Uint8Array(buffer);
    const magic = String.fromCharCode(...bytes.subarray(1, 6));
    if (bytes.length < 12 || bytes[0] !== 0x93 || magic !== "NUMPY") {
      throw new Error("not a NumPy .npy file");
    }
    const major = bytes[6];
    const view = new DataView(buffer);
    let headerStart;
    let headerLength;
    if (major === 1) {
      headerLength = view.getUint16(8, true);
      headerStart = 10;
    } else if (major === 2 || major === 3) {
      headerLength = view.getUint32(8, true);
      headerStart = 12;
    } else {
      throw new Error(`unsupported .npy format version ${major}.${bytes[7]}`);
    }
    const dataStart = headerStart + headerLength;
    if (dataStart > bytes.length) throw new Error("truncated .npy header");
    const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
      bytes.subarray(headerStart, dataStart));
    const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header);
    const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header);
    const shape = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header);
    if (!descr || !fortran || !shape) throw new Error("malformed .npy header");
    const type = /^([<>|=])([biuf])(\d)$/.exec(descr[1]);
    const key = type ? type[2] + type[3] : "";
    if (!type || !(key in NPY_TYPES)) throw new Error(`unsupported .npy dtype ${descr[1]}`);
    const size = Number(type[3]);
    const bigEndian = type[1] === ">" && size > 1;
    const dims = shape[1].split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
      if (!/^\d+L?$/.test(s)) throw new Error("malformed .npy shape");
      return parseInt(s, 10);
    });
    if (dims.length === 3 && dims[2] === 1) dims.pop();
    if (dims.length !== 2) throw new Error(`expected a 2-D array, got shape (${dims.join(", ")})`);
    const [rows, columns] = dims;
    const count = rows * columns;
    if (count === 0) throw new Error("the array is empty");
    const byteLength = count * size;
    if (dataStart + byteLength > buffer.byteLength) throw new Error("truncated .npy data");
    const Ctor = NPY_TYPES[key];
    let data;
    if (key === "f2") {
      data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = halfToFloat(view.getUint16(dataStart + 2 * i, !bigEndian));
    } else if (bigEndian || (size > 1 && !LITTLE_ENDIAN)) {
      data = new Ctor(count);
      const getter = NPY_GETTERS[key];
      for (let i = 0; i < count; i++) data[i] = view[getter](dataStart + size * i, !bigEndian);
    } else if (dataStart % size === 0) {
      data = new Ctor(buffer, dataStart, count);
    } else {
      data = new Ctor(buffer.slice(dataStart, dataStart + byteLength));
    }
    if (fortran[1] === "True") {
      const transposed = new data.constructor(count);
      for (let c = 0; c < columns; c++) {
        const base = c * rows;
        for (let r = 0; r < rows; r++) transposed[r * columns + c] = data[base + r];
      }
      data = transposed;
    }
    return { data, rows, columns, dtype: descr[1], isInteger: type[2] !== "f" };
  }

  // ---------------------------------------------------------------- XRS pixels (16-bit + rescale)
  const XRS_MAGIC = [0x93, 0x58, 0x52, 0x53, 0x50, 0x49, 0x58]; // "\x93XRSPIX"

  function isXrsPixels(bytes) {
    return bytes.length >= 12 && XRS_MAGIC.every((b, i) => bytes[i] === b);
  }

  /** The header of an XRS pixels file from its first bytes: {header, bodyStart}, or null when
   * more bytes are needed; throws when the file is not valid. */
  function xrsHeader(bytes) {
    if (bytes.length < 12) return null;
    if (!isXrsPixels(bytes)) throw new Error("not an XRS pixels file");
    if (bytes[7] !== 1) throw new Error(`unsupported XRS pixels version ${bytes[7]}`);
    const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 12).getUint32(8, true);
    if (headerLength > 1 << 16) throw new Error("malformed XRS pixels header");
    if (bytes.length < 12 + headerLength) return null;
    let header;
    try {
      header = JSON.parse(new TextDecoder("ascii").decode(bytes.subarray(12, 12 + headerLength)));
    } catch (error) {
      throw new Error("malformed XRS pixels header");
    }
    const shape = header && header.shape;
    const ok = Array.isArray(shape) && shape.length === 2 && shape.every((n) => Number.isInteger(n) && n > 0)
      && (header.dtype === "<u2" || header.dtype === "<i2") && header.filter === "delta-shuffle"
      && header.codec === "deflate" && header.size === 2 * shape[0] * shape[1]
      && finite(header.slope) && header.slope !== 0 && finite(header.intercept);
    if (!ok) throw new Error("malformed XRS pixels header");
    if (typeof DecompressionStream !== "function") {
      throw new Error("this browser cannot inflate the pixels (no DecompressionStream)");
    }
    return { header, bodyStart: 12 + headerLength };
  }

  /** Inflate the zlib chunks (an async iterable of Uint8Array) into exactly `size` bytes. */
  async function inflate(chunks, size) {
    const stream = new DecompressionStream("deflate");
    const writer = stream.writable.getWriter();
    const reader = stream.readable.getReader();
    const out = new Uint8Array(size);
    let filled = 0;
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        if (filled + value.length > size) throw new Error("XRS pixels data does not match its shape");
        out.set(value, filled);
        filled += value.length;
      }
    })();
    const writing = (async () => {
      for await (const chunk of chunks) await writer.write(chunk);
      await writer.close();
    })();
    try {
      await Promise.all([reading, writing]);
    } catch (error) {
      writer.abort().catch(() => {});
      reader.cancel().catch(() => {});
      reading.catch(() => {});
      writing.catch(() => {});
      throw error.message && error.message.startsWith("XRS") ? error : new Error("corrupt XRS pixels data");
    }
    if (filled !== size) throw new Error("XRS pixels data does not match its shape");
    return out;
  }

  /** The decoded source from the header and the inflated byte planes. */
  function xrsSource(header, planes) {
    const [rows, columns] = header.shape;
    const count = rows * columns;
    const words = new Uint16Array(count);
    let acc = 0;
    for (let i = 0; i < count; i++) {
      acc = (acc + (planes[i] | (planes[count + i] << 8))) & 0xffff;
      words[i] = acc;
    }
    const data = header.dtype === "<i2" ? new Int16Array(words.buffer) : words;
    return {
      data, rows, columns, dtype: header.dtype, isInteger: true,
      rescale: { slope: header.slope, intercept: header.intercept },
    };
  }

  /**
   * Decode an XRS pixels file (explain/imaging/pixel_transfer.py): a header, then a zlib stream of
   * 16-bit integers (delta-coded, split into a low-byte and a high-byte plane). Resolves to
   * {data (Uint16Array | Int16Array), rows, columns, dtype, isInteger: true, rescale: {slope,
   * intercept}}; the modality value of k is Math.fround(slope * k + intercept), exactly the
   * float32 value the server stored.
   */
  async function decodeXrsPixels(buffer) {
    const bytes = new Uint8Array(buffer);
    const parsed = xrsHeader(bytes);
    if (!parsed) throw new Error("truncated XRS pixels header");
    const body = bytes.subarray(parsed.bodyStart);
    const planes = await inflate((async function* () { yield body; })(), parsed.header.size);
    return xrsSource(parsed.header, planes);
  }

  /**
   * Read a pixels response: an XRS pixels file is inflated while it downloads; anything else is
   * read whole and parsed as a .npy.
   */
  async function readPixels(response) {
    if (!response.body || typeof response.body.getReader !== "function") {
      return parsePixels(await response.arrayBuffer());
    }
    const reader = response.body.getReader();
    const chunks = [];
    let length = 0;
    let parsed = null;
    let head = new Uint8Array(0);
    for (;;) {
      const { value, done } = await reader.read();
      if (!done) {
        chunks.push(value);
        length += value.length;
      }
      if (length >= 12 || done) {
        head = new Uint8Array(length);
        let at = 0;
        for (const chunk of chunks) {
          head.set(chunk, at);
          at += chunk.length;
        }
        chunks.length = 0;
        chunks.push(head);
        if (!isXrsPixels(head)) {
          if (done) return parsePixels(head.buffer);
          break; // a .npy (or anything else): read it whole below
        }
        parsed = xrsHeader(head);
        if (parsed || done) break;
      }
    }
    if (!parsed) {
      if (isXrsPixels(head)) throw new Error("truncated XRS pixels header");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        chunks.push(value);
        length += value.length;
      }
      const whole = new Uint8Array(length);
      let at = 0;
      for (const chunk of chunks) {
        whole.set(chunk, at);
        at += chunk.length;
      }
      return parsePixels(whole.buffer);
    }
    const first = head.subarray(parsed.bodyStart);
    async function* body() {
      if (first.length) yield first;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        yield value;
      }
    }
    try {
      return xrsSource(parsed.header, await inflate(body(), parsed.header.size));
    } catch (error) {
      reader.cancel().catch(() => {});
      throw error;
    }
  }

  /** The modality value of a stored integer k (identity without a rescale). */
  function rescaled(rescale, k) {
    return rescale ? Math.fround(rescale.slope * k + rescale.intercept) : k;
  }

  /** Float32Array of the modality values of a decoded source (for tests and tools). */
  function modalityValues(source) {
    const out = new Float32Array(source.data.length);
    for (let i = 0; i < out.length; i++) out[i] = rescaled(source.rescale, source.data[i]);
    return out;
  }

  /** Parse either pixels format: a NumPy .npy or an XRS pixels file (sniffed by its magic). */
  async function parsePixels(buffer) {
    if (isXrsPixels(new Uint8Array(buffer, 0, Math.min(12, buffer.byteLength)))) {
      return decodeXrsPixels(buffer);
    }
    return { ...parseNpy(buffer), rescale: null };
  }

  function finiteRange(data) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v < lo && v > -Infinity) lo = v;
      if (v > hi && v < Infinity) hi = v;
    }
    return lo <= hi ? [lo, hi] : [0, 0];
  }

  // ---------------------------------------------------------------- helpers
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  function isEditable(target) {
    if (!target || target.nodeType !== 1) return false;
    if (target.isContentEditable) return true;
    return ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
  }

  function finite(value) {
    return typeof value === "number" && Number.isFinite(value);
  }

  function clamp(value, lo, hi) {
    return Math.min(hi, Math.max(lo, value));
  }

  /** 8-bit output (0..255, rounded) of the PS3.3 C.11.2.1.2 LINEAR window as y = x * a + b. */
  function linearWindow(center, width) {
    if (width <= 1) return { threshold: center - 0.5 };
    const a = 255 / (width - 1);
    return { a, b: (0.5 - (center - 0.5) / (width - 1)) * 255 };
  }

  function windowed8(x, win) {
    if (win.threshold !== undefined) return x > win.threshold ? 255 : 0;
    const t = x * win.a + win.b;
    return t > 0 ? (t < 255 ? (t + 0.5) | 0 : 255) : 0;
  }

  async function fetchOk(url, signal) {
    const response = await fetch(url, { signal, credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response;
  }

  // ---------------------------------------------------------------- the viewer
  class XrsViewer {
    constructor(container, options) {
      if (!(container instanceof HTMLElement)) throw new TypeError("XrsViewer needs a container element");
      const o = options || {};
      this.container = container;
      this.options = {
        pixelsUrl: o.pixelsUrl || null,
        displayUrl: o.displayUrl || null,
        rows: finite(o.rows) ? o.rows : null,
        columns: finite(o.columns) ? o.columns : null,
        isColor: Boolean(o.isColor),
        monochrome1: Boolean(o.monochrome1),
        valueMin: finite(o.valueMin) ? o.valueMin : null,
        valueMax: finite(o.valueMax) ? o.valueMax : null,
        presets: (Array.isArray(o.presets) ? o.presets : [])
          .filter((p) => p && finite(Number(p.center)) && finite(Number(p.width)))
          .map((p, i) => ({
            name: p.name ? String(p.name) : `Preset ${i + 1}`,
            center: Number(p.center),
            width: Math.max(1, Number(p.width)),
          })),
      };
      this._counts = {
        window_changes: 0, zoom_changes: 0, pan_changes: 0, invert_toggles: 0, resets: 0,
        overlay_toggles: 0, presets_used: 0,
      };
      this._opacity = clamp(finite(o.overlayOpacity) ? o.overlayOpacity : 0.4, 0, 1);
      this._source = null; // {mode: "values"|"rgba", data, rows, columns, ...}
      this._overlay = null; // ImageBitmap
      this._overlayVisible = false;
      this._overlayToken = 0;
      this._inverted = false;
      this._win = { center: 128, width: 256 };
      this._initialWin = { center: 128, width: 256 };
      this._view = { scale: 1, tx: 0, ty: 0 };
      this._fitted = true;
      this._needsFit = true;
      this._size = { width: 0, height: 0, dpr: 1 };
      this._pixelsDirty = true;
      this._raf = 0;
      this._drag = null;
      this._lastWheel = -Infinity;
      this._destroyed = false;
      this._stats = { lastPixelMs: 0, lastFrameMs: 0, frames: 0 };
      this._abort = new AbortController();
      this._clocks = {
        viewer: { ms: 0, since: null },
        overlay: { ms: 0, since: null },
      };

      this._buildDom();
      this._bindEvents();
      XrsViewer._instances.push(this);
      this._updateClocks();

      const overlay = o.overlayUrl ? this.setOverlay(o.overlayUrl) : null;
      /** Settles when the constructor's overlay is drawn (or failed); null without one. */
      this.overlayReady = overlay;
      if (overlay) overlay.catch(() => {});
      this.ready = this._load(overlay);
      this.ready.catch(() => {}); // callers still see the rejection; no unhandled-rejection noise
    }

    // ------------------------------------------------------------ public API
    /** Show an overlay (RGBA PNG of rows x columns); null removes it. Visible once loaded. */
    setOverlay(url) {
      const token = ++this._overlayToken;
      if (!url) {
        this._replaceOverlay(null);
        return Promise.resolve();
      }
      this._notice("");
      return (async () => {
        let bitmap;
        try {
          const blob = await (await fetchOk(url, this._abort.signal)).blob();
          bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none" });
        } catch (error) {
          if (token === this._overlayToken && !this._destroyed) {
            this._notice("The heatmap could not be loaded.");
          }
          throw new Error(`heatmap overlay could not be loaded (${error.message})`);
        }
        if (token !== this._overlayToken || this._destroyed) {
          bitmap.close();
          return;
        }
        const { rows, columns } = this._expectedShape();
        if (rows && columns && (bitmap.width !== columns || bitmap.height !== rows)) {
          console.warn(`XrsViewer: heatmap is ${bitmap.width}x${bitmap.height}, image ${columns}x${rows}; stretched`);
        }
        this._replaceOverlay(bitmap);
      })();
    }

    summary() {
      const now = performance.now();
      const elapsed = (clock) => clock.ms + (clock.since === null ? 0 : now - clock.since);
      return {
        window_changes: this._counts.window_changes,
        zoom_changes: this._counts.zoom_changes,
        pan_changes: this._counts.pan_changes,
        invert_toggles: this._counts.invert_toggles,
        resets: this._counts.resets,
        overlay_toggles: this._counts.overlay_toggles,
        overlay_visible_ms: Math.round(elapsed(this._clocks.overlay)),
        overlay_opacity: Math.round(this._opacity * 100) / 100,
        presets_used: this._counts.presets_used,
        viewer_ms: Math.round(elapsed(this._clocks.viewer)),
      };
    }

    getWindow() {
      return { center: this._win.center, width: this._win.width };
    }

    /** Programmatic window change (not counted in summary()). Width is clamped to >= 1. */
    setWindow(center, width) {
      if (!finite(center) || !finite(width)) throw new TypeError("setWindow needs finite numbers");
      this._setWin(center, width);
    }

    /** Diagnostics: duration of the last windowing pass and of the last frame, in ms. */
    renderStats() {
      return { ...this._stats };
    }

    /** Client (viewport) coordinates of the centre of image pixel (column x, row y). */
    imageToClient(x, y) {
      const rect = this._canvas.getBoundingClientRect();
      const { scale, tx, ty } = this._view;
      return { x: rect.left + tx + (x + 0.5) * scale, y: rect.top + ty + (y + 0.5) * scale };
    }

    destroy() {
      if (this._destroyed) return;
      this._updateClocks(true);
      this._destroyed = true;
      this._abort.abort();
      if (this._raf) cancelAnimationFrame(this._raf);
      this._raf = 0;
      this._resizeObserver.disconnect();
      document.removeEventListener("keydown", this._onKeyDown);
      document.removeEventListener("visibilitychange", this._onVisibility);
      if (this._overlay) this._overlay.close();
      this._overlay = null;
      this._source = null;
      this._root.remove();
      this.container.classList.remove("xrs-viewer-host");
      const list = XrsViewer._instances;
      list.splice(list.indexOf(this), 1);
      if (XrsViewer._active === this) XrsViewer._active = null;
    }

    // ------------------------------------------------------------ loading
    _expectedShape() {
      const s = this._source;
      if (s) return { rows: s.rows, columns: s.columns };
      return { rows: this.options.rows, columns: this.options.columns };
    }

    async _load(overlay) {
      const o = this.options;
      let source = null;
      const reasons = [];
      if (o.pixelsUrl && !o.isColor) {
        try {
          source = await this._loadPixels();
        } catch (error) {
          if (this._destroyed) throw new Error("viewer destroyed");
          reasons.push(`pixels: ${error.message}`);
          if (o.displayUrl) console.warn(`XrsViewer: full-precision pixels unusable (${error.message}); showing the 8-bit display image`);
        }
      }
      if (!source && o.displayUrl) {
        try {
          source = await this._loadPng();
        } catch (error) {
          if (this._destroyed) throw new Error("viewer destroyed");
          reasons.push(`display image: ${error.message}`);
        }
      }
      if (this._destroyed) throw new Error("viewer destroyed");
      if (!source) {
        if (!reasons.length) reasons.push("no image URL given");
        const error = new Error(`The image could not be loaded (${reasons.join("; ")}).`);
        this._showError(error.message);
        throw error;
      }
      this._useSource(source);
      if (overlay) {
        try {
          await overlay;
        } catch (error) {
          // the image is usable: the notice in the viewer says the heatmap failed
        }
      }
      if (this._destroyed) throw new Error("viewer destroyed");
      this._frame();
      this._message.hidden = true;
      this._root.dataset.state = "ready";
    }

    async _loadPixels() {
      const pixels = await readPixels(await fetchOk(this.options.pixelsUrl, this._abort.signal));
      const { rows, columns } = this.options;
      if ((rows && rows !== pixels.rows) || (columns && columns !== pixels.columns)) {
        throw new Error(`array is ${pixels.rows}x${pixels.columns}, expected ${rows}x${columns}`);
      }
      // storedMin/Max: the range of the array (the integer lookup table's domain);
      // dataMin/Max: the range of the modality values (the same unless there is a rescale)
      const [lo, hi] = finiteRange(pixels.data);
      const a = rescaled(pixels.rescale, lo);
      const b = rescaled(pixels.rescale, hi);
      return {
        mode: "values", ...pixels, storedMin: lo, storedMax: hi,
        dataMin: Math.min(a, b), dataMax: Math.max(a, b),
      };
    }

    async _loadPng() {
      const blob = await (await fetchOk(this.options.displayUrl, this._abort.signal)).blob();
      const bitmap = await createImageBitmap(blob, {
        colorSpaceConversion: "none", premultiplyAlpha: "none",
      });
      const canvas = el("canvas", { width: bitmap.width, height: bitmap.height });
      const ctx = canvas.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(bitmap, 0, 0);
      bitmap.close();
      const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      return { mode: "rgba", data, rows: canvas.height, columns: canvas.width, dataMin: 0, dataMax: 255 };
    }

    _useSource(source) {
      const o = this.options;
      this._source = source;
      this._offscreen = el("canvas", { width: source.columns, height: source.rows });
      this._offCtx = this._offscreen.getContext("2d");
      this._imageData = this._offCtx.createImageData(source.columns, source.rows);
      this._out32 = new Uint32Array(this._imageData.data.buffer);
      this._intLut = null;
      if (source.mode === "values") {
        const lo = o.valueMin !== null ? o.valueMin : source.dataMin;
        const hi = o.valueMax !== null ? o.valueMax : source.dataMax;
        this._range = hi > lo ? [lo, hi] : [source.dataMin, source.dataMax];
        const span = source.storedMax - source.storedMin;
        if (source.isInteger && span < INT_LUT_MAX_ENTRIES) this._intLut = new Uint32Array(span + 1);
        this._monochrome1 = o.monochrome1;
        const first = o.presets[0];
        const [a, b] = this._range;
        this._initialWin = first
          ? { center: first.center, width: first.width }
          : { center: (a + b) / 2 + 0.5, width: b - a + 1 }; // maps a -> 0 and b -> 255
      } else {
        // 8-bit display image: already windowed (and MONOCHROME1-inverted) by the server
        this._range = [0, 255];
        this._monochrome1 = false;
        this._initialWin = { center: 128, width: 256 }; // identity
        this._presetGroup.hidden = true;
        this._fallbackFlag.hidden = o.isColor;
      }
      this._win = { ...this._initialWin };
      this._buildPresetButtons();
      this._root.dataset.mode = source.mode;
      this._needsFit = true;
      this._measure();
      this._updateClocks();
    }

    // ------------------------------------------------------------ DOM
    _buildDom() {
      const button = (testid, label, title, extra) =>
        el("button", { type: "button", className: "xrs-btn", "data-testid": testid, title, "aria-label": title, text: label, ...extra });
      this._presetGroup = el("div", { className: "xrs-group xrs-presets" });
      this._invertButton = button("viewer-invert", "Invert", "Invert (I)", { "aria-pressed": "false" });
      this._resetButton = button("viewer-reset", "Reset", "Reset: fit and initial window (R, Space)");
      this._zoomOutButton = button("viewer-zoom-out", "\u2212", "Zoom out (-)");
      this._zoomInButton = button("viewer-zoom-in", "+", "Zoom in (+)");
      this._overlayButton = button("viewer-overlay-toggle", "Heatmap", "Show / hide the heatmap (H)", { "aria-pressed": "true" });
      this._opacityInput = el("input", {
        type: "range", min: 0, max: 100, step: 1, value: Math.round(this._opacity * 100),
        className: "xrs-range", "data-testid": "viewer-overlay-opacity", "aria-label": "Heatmap opacity",
      });
      this._opacityValue = el("span", { className: "xrs-range-value", text: `${Math.round(this._opacity * 100)}%` });
      this._overlayGroup = el("div", { className: "xrs-group xrs-overlay-controls", hidden: true }, [
        this._overlayButton,
        el("label", { className: "xrs-range-label", title: "Heatmap opacity" }, [this._opacityInput, this._opacityValue]),
      ]);
      this._helpButton = button("viewer-help", "?", "Keyboard and mouse shortcuts (?)", { "aria-expanded": "false" });
      this._toolbar = el("div", { className: "xrs-toolbar", role: "toolbar", "aria-label": "Image viewer tools" }, [
        this._presetGroup,
        el("div", { className: "xrs-group" }, [this._invertButton, this._resetButton, this._zoomOutButton, this._zoomInButton]),
        this._overlayGroup,
        el("span", { className: "xrs-spacer" }),
        this._helpButton,
      ]);

      this._canvas = el("canvas", {
        className: "xrs-canvas", "data-testid": "viewer-canvas", tabindex: 0,
        role: "img", "aria-label": "Medical image",
      });
      this._ctx = this._canvas.getContext("2d", { alpha: false });
      this._wlText = el("span", { "data-testid": "viewer-wl" });
      this._zoomText = el("span", { "data-testid": "viewer-zoom" });
      this._invertFlag = el("span", { className: "xrs-flag", "data-testid": "viewer-inverted", text: "Inverted", hidden: true });
      this._fallbackFlag = el("span", { className: "xrs-flag", "data-testid": "viewer-fallback", text: "8-bit display image", hidden: true });
      this._noticeText = el("span", { className: "xrs-notice", "data-testid": "viewer-notice", role: "status", hidden: true });
      this._status = el("div", { className: "xrs-status", "data-testid": "viewer-status" }, [
        this._wlText, this._zoomText, this._invertFlag, this._fallbackFlag, this._noticeText,
      ]);
      this._message = el("div", { className: "xrs-message", "data-testid": "viewer-loading", role: "status", text: "Loading image\u2026" });
      const rows = SHORTCUTS.map(([keys, action]) => el("tr", {}, [el("th", { scope: "row", text: keys }), el("td", { text: action })]));
      this._helpPanel = el("div", { className: "xrs-help", "data-testid": "viewer-help-panel", role: "dialog", "aria-label": "Viewer shortcuts", hidden: true }, [
        el("h2", { text: "Viewer shortcuts" }),
        el("table", {}, [el("tbody", {}, rows)]),
        el("p", { className: "xrs-help-foot", text: "Shortcuts are ignored while typing in a form field. Press ? or Esc to close." }),
      ]);
      this._stage = el("div", { className: "xrs-stage" }, [this._canvas, this._status, this._message, this._helpPanel]);
      this._root = el("div", { className: "xrs-viewer", "data-state": "loading" }, [this._toolbar, this._stage]);
      this.container.classList.add("xrs-viewer-host");
      this.container.append(this._root);
    }

    _buildPresetButtons() {
      this._presetButtons = this.options.presets.map((p, i) => {
        const label = i < 9 ? `${i + 1} ${p.name}` : p.name;
        const b = el("button", {
          type: "button", className: "xrs-btn xrs-preset", "data-testid": `viewer-preset-${i + 1}`,
          title: `${p.name}: W ${this._fmt(p.width)} L ${this._fmt(p.center)}${i < 9 ? ` (${i + 1})` : ""}`,
          "aria-pressed": "false", text: label,
        });
        b.addEventListener("click", () => this._applyPreset(i));
        return b;
      });
      this._presetGroup.replaceChildren(...this._presetButtons);
    }

    _bindEvents() {
      const c = this._canvas;
      const signal = this._abort.signal;
      const on = (target, type, handler, opts) => target.addEventListener(type, handler, { signal, ...opts });
      on(c, "pointerdown", (e) => this._onPointerDown(e));
      on(c, "pointermove", (e) => this._onPointerMove(e));
      on(c, "pointerup", (e) => this._onPointerUp(e));
      on(c, "pointercancel", (e) => this._onPointerUp(e));
      on(c, "lostpointercapture", (e) => this._onPointerUp(e));
      on(c, "mousedown", (e) => { if (e.button === 1) e.preventDefault(); }); // no autoscroll
      on(c, "auxclick", (e) => e.preventDefault());
      on(c, "contextmenu", (e) => e.preventDefault());
      on(c, "dblclick", (e) => {
        if (!this._source) return;
        e.preventDefault();
        this._counts.zoom_changes++;
        this._fit();
      });
      on(c, "wheel", (e) => this._onWheel(e), { passive: false });
      on(this._root, "pointerdown", () => this._activate(), { capture: true });
      on(this._root, "focusin", () => this._activate());
      // toolbar buttons do not keep the focus, so Space stays "reset" after a click
      on(this._toolbar, "mousedown", (e) => { if (e.target.closest("button")) e.preventDefault(); });
      on(this._invertButton, "click", () => this._toggleInvert());
      on(this._resetButton, "click", () => this._reset());
      on(this._zoomInButton, "click", () => this._zoomKey(ZOOM_STEP));
      on(this._zoomOutButton, "click", () => this._zoomKey(1 / ZOOM_STEP));
      on(this._overlayButton, "click", () => this._toggleOverlay());
      on(this._helpButton, "click", () => this._toggleHelp());
      on(this._opacityInput, "input", () => {
        this._opacity = clamp(Number(this._opacityInput.value) / 100, 0, 1);
        this._opacityValue.textContent = `${Math.round(this._opacity * 100)}%`;
        this._requestFrame();
      });
      this._onKeyDown = (e) => this._handleKey(e);
      this._onVisibility = () => this._updateClocks();
      document.addEventListener("keydown", this._onKeyDown);
      document.addEventListener("visibilitychange", this._onVisibility);
      this._resizeObserver = new ResizeObserver(() => this._measure());
      this._resizeObserver.observe(this._stage);
    }

    _activate() {
      if (!this._destroyed) XrsViewer._active = this;
    }

    _showError(text) {
      this._message.textContent = text;
      this._message.setAttribute("role", "alert");
      this._message.setAttribute("data-testid", "viewer-error");
      this._message.classList.add("xrs-error");
      this._message.hidden = false;
      this._root.dataset.state = "error";
    }

    _notice(text) {
      this._noticeText.textContent = text;
      this._noticeText.hidden = !text;
    }

    _toggleHelp(force) {
      const show = force === undefined ? this._helpPanel.hidden : force;
      this._helpPanel.hidden = !show;
      this._helpButton.setAttribute("aria-expanded", String(show));
    }

    // ------------------------------------------------------------ clocks (summary)
    _updateClocks(stopAll) {
      const now = performance.now();
      const shown = !stopAll && !this._destroyed && document.visibilityState !== "hidden";
      const run = {
        viewer: shown,
        overlay: shown && Boolean(this._source && this._overlay && this._overlayVisible),
      };
      for (const [name, clock] of Object.entries(this._clocks)) {
        if (run[name] && clock.since === null) clock.since = now;
        else if (!run[name] && clock.since !== null) {
          clock.ms += now - clock.since;
          clock.since = null;
        }
      }
    }

    // ------------------------------------------------------------ state changes
    _setWin(center, width) {
      const w = Math.max(1, width);
      if (center === this._win.center && w === this._win.width) return false;
      this._win = { center, width: w };
      this._pixelsDirty = true;
      this._requestFrame();
      return true;
    }

    _applyPreset(index) {
      const p = this.options.presets[index];
      if (!p || !this._source || this._source.mode !== "values") return;
      this._counts.window_changes++;
      this._counts.presets_used++;
      this._setWin(p.center, p.width);
      this._requestFrame();
    }

    _toggleInvert() {
      if (!this._source) return;
      this._counts.invert_toggles++;
      this._inverted = !this._inverted;
      this._invertButton.setAttribute("aria-pressed", String(this._inverted));
      this._pixelsDirty = true;
      this._requestFrame();
    }

    _reset() {
      if (!this._source) return;
      this._counts.resets++;
      this._setWin(this._initialWin.center, this._initialWin.width);
      if (this._inverted) {
        this._inverted = false;
        this._invertButton.setAttribute("aria-pressed", "false");
        this._pixelsDirty = true;
      }
      this._fit();
    }

    _toggleOverlay() {
      if (!this._overlay) return;
      this._counts.overlay_toggles++;
      this._overlayVisible = !this._overlayVisible;
      this._overlayButton.setAttribute("aria-pressed", String(this._overlayVisible));
      this._updateClocks();
      this._requestFrame();
    }

    _replaceOverlay(bitmap) {
      if (this._overlay) this._overlay.close();
      this._overlay = bitmap;
      this._overlayVisible = Boolean(bitmap);
      this._overlayButton.setAttribute("aria-pressed", String(this._overlayVisible));
      this._overlayGroup.hidden = !bitmap;
      if (!bitmap) this._notice("");
      this._updateClocks();
      if (this._source) this._frame(); // draw now so the returned promise means "drawn"
    }

    // ------------------------------------------------------------ geometry
    _measure() {
      if (this._destroyed) return;
      const width = this._stage.clientWidth;
      const height = this._stage.clientHeight;
      const dpr = global.devicePixelRatio || 1;
      const old = this._size;
      if (width === old.width && height === old.height && dpr === old.dpr && !this._needsFit) return;
      this._size = { width, height, dpr };
      this._canvas.width = Math.max(1, Math.round(width * dpr));
      this._canvas.height = Math.max(1, Math.round(height * dpr));
      if (!this._source) return;
      if (this._needsFit || this._fitted) this._fit(true);
      else {
        this._view.tx += (width - old.width) / 2;
        this._view.ty += (height - old.height) / 2;
      }
      this._frame(); // resizing cleared the canvas: redraw synchronously, no flicker
    }

    _fitScale() {
      const s = this._source;
      const { width, height } = this._size;
      return Math.min(width / s.columns, height / s.rows);
    }

    _fit(silent) {
      if (!this._source) return;
      const { width, height } = this._size;
      if (width < 1 || height < 1) {
        this._needsFit = true;
        return;
      }
      const scale = this._fitScale();
      this._view = {
        scale,
        tx: (width - this._source.columns * scale) / 2,
        ty: (height - this._source.rows * scale) / 2,
      };
      this._fitted = true;
      this._needsFit = false;
      if (!silent) this._requestFrame();
    }

    _zoomAt(factor, px, py) {
      const v = this._view;
      const fit = this._fitScale() || 1;
      const scale = clamp(v.scale * factor, Math.min(fit, 1) / 4, Math.max(fit * 8, 32));
      if (scale === v.scale) return false;
      v.tx = px - ((px - v.tx) * scale) / v.scale;
      v.ty = py - ((py - v.ty) * scale) / v.scale;
      v.scale = scale;
      this._fitted = false;
      this._requestFrame();
      return true;
    }

    _zoomKey(factor) {
      if (!this._source) return;
      this._counts.zoom_changes++;
      this._zoomAt(factor, this._size.width / 2, this._size.height / 2);
    }

    _pan(dx, dy) {
      this._view.tx += dx;
      this._view.ty += dy;
      this._fitted = false;
      this._requestFrame();
    }

    _local(e) {
      const rect = this._canvas.getBoundingClientRect();
      return { x: e.clientX - rect.left, y: e.clientY - rect.top };
    }

    // ------------------------------------------------------------ input
    _onPointerDown(e) {
      if (!this._source || this._drag) return;
      let mode = null;
      if (e.button === 0) mode = e.shiftKey ? "pan" : "window";
      else if (e.button === 1) mode = "pan";
      else if (e.button === 2) mode = "zoom";
      if (!mode) return;
      e.preventDefault();
      this._canvas.focus({ preventScroll: true });
      try {
        this._canvas.setPointerCapture(e.pointerId);
      } catch (error) {
        // synthetic pointers cannot always be captured; the drag still works inside the canvas
      }
      this._drag = {
        mode, id: e.pointerId, x0: e.clientX, y0: e.clientY, x: e.clientX, y: e.clientY,
        started: false, counted: false, anchor: this._local(e),
      };
      this._root.dataset.drag = mode;
    }

    _onPointerMove(e) {
      const d = this._drag;
      if (!d || e.pointerId !== d.id) return;
      if (!d.started) {
        if (Math.hypot(e.clientX - d.x0, e.clientY - d.y0) < DRAG_THRESHOLD_PX) return;
        d.started = true;
      }
      const dx = e.clientX - d.x;
      const dy = e.clientY - d.y;
      d.x = e.clientX;
      d.y = e.clientY;
      let changed = false;
      if (d.mode === "window") {
        const [lo, hi] = this._range;
        const sensitivity = Math.max(hi - lo, 1) / 512; // full value span over 512 CSS px
        changed = this._setWin(this._win.center + dy * sensitivity, this._win.width + dx * sensitivity);
        if (changed && !d.counted) this._counts.window_changes++;
      } else if (d.mode === "pan") {
        changed = dx !== 0 || dy !== 0;
        if (changed) this._pan(dx, dy);
        if (changed && !d.counted) this._counts.pan_changes++;
      } else {
        changed = this._zoomAt(Math.exp(-dy * 0.01), d.anchor.x, d.anchor.y);
        if (changed && !d.counted) this._counts.zoom_changes++;
      }
      if (changed) d.counted = true;
    }

    _onPointerUp(e) {
      const d = this._drag;
      if (!d || e.pointerId !== d.id) return;
      this._drag = null;
      delete this._root.dataset.drag;
      if (this._canvas.hasPointerCapture && this._canvas.hasPointerCapture(e.pointerId)) {
        this._canvas.releasePointerCapture(e.pointerId);
      }
    }

    _onWheel(e) {
      if (!this._source) return;
      e.preventDefault();
      let dy = e.deltaY;
      if (e.deltaMode === 1) dy *= 16;
      else if (e.deltaMode === 2) dy *= this._size.height || 800;
      const p = this._local(e);
      const changed = this._zoomAt(clamp(Math.exp(-dy * 0.0015), 0.5, 2), p.x, p.y);
      const now = performance.now();
      if (changed && now - this._lastWheel > WHEEL_GESTURE_GAP_MS) this._counts.zoom_changes++;
      this._lastWheel = now;
    }

    _handleKey(e) {
      if (this._destroyed || e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
      const active = XrsViewer._active && !XrsViewer._active._destroyed
        ? XrsViewer._active : XrsViewer._instances[XrsViewer._instances.length - 1];
      if (active !== this) return;
      const target = e.target;
      if (isEditable(target)) return;
      const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
      // Space and Enter keep their meaning on a focused button or link outside the canvas
      if ((key === " " || key === "Enter") && target && target.closest && target.closest("button, a[href], summary, [role=button]")) return;
      const first = !e.repeat;
      const step = Math.max(20, 0.1 * Math.min(this._size.width, this._size.height));
      let handled = true;
      switch (key) {
        case "?":
          this._toggleHelp();
          break;
        case "Escape":
          handled = !this._helpPanel.hidden;
          if (handled) this._toggleHelp(false);
          break;
        case "i":
          if (first) this._toggleInvert();
          break;
        case "r":
        case " ":
          if (first) this._reset();
          break;
        case "+":
        case "=":
        case "-":
        case "_": {
          if (!this._source) break;
          const factor = key === "+" || key === "=" ? ZOOM_STEP : 1 / ZOOM_STEP;
          if (first) this._zoomKey(factor);
          else this._zoomAt(factor, this._size.width / 2, this._size.height / 2);
          break;
        }
        case "ArrowLeft":
        case "ArrowRight":
        case "ArrowUp":
        case "ArrowDown": {
          if (!this._source) break;
          const dx = key === "ArrowLeft" ? -step : key === "ArrowRight" ? step : 0;
          const dy = key === "ArrowUp" ? -step : key === "ArrowDown" ? step : 0;
          if (first) this._counts.pan_changes++;
          this._pan(dx, dy);
          break;
        }
        case "h":
          handled = Boolean(this._overlay);
          if (handled && first) this._toggleOverlay();
          break;
        default:
          if (/^[1-9]$/.test(key) && this.options.presets[Number(key) - 1] && this._source && this._source.mode === "values") {
            if (first) this._applyPreset(Number(key) - 1);
          } else {
            handled = false;
          }
      }
      if (handled) e.preventDefault();
    }

    // ------------------------------------------------------------ rendering
    _requestFrame() {
      if (this._raf || this._destroyed || !this._source) return;
      this._raf = requestAnimationFrame(() => {
        this._raf = 0;
        this._frame();
      });
    }

    _frame() {
      if (this._destroyed || !this._source) return;
      if ((global.devicePixelRatio || 1) !== this._size.dpr) {
        this._measure(); // moved to a screen with another pixel ratio: resize, then draw
        return;
      }
      const t0 = performance.now();
      if (this._pixelsDirty) {
        this._renderPixels();
        this._pixelsDirty = false;
        this._stats.lastPixelMs = performance.now() - t0;
      }
      this._draw();
      this._updateStatus();
      this._stats.lastFrameMs = performance.now() - t0;
      this._stats.frames++;
    }

    /** Window the source into the offscreen ImageData (once per window / invert change). */
    _renderPixels() {
      const s = this._source;
      const win = linearWindow(this._win.center, this._win.width);
      const invert = this._inverted !== this._monochrome1;
      const out = this._out32;
      const n = s.rows * s.columns;
      if (s.mode === "rgba") {
        const lut8 = new Uint8Array(256);
        for (let v = 0; v < 256; v++) {
          const y = windowed8(v, win);
          lut8[v] = invert ? 255 - y : y;
        }
        const src = s.data;
        const dst = this._imageData.data;
        for (let j = 0; j < 4 * n; j += 4) {
          dst[j] = lut8[src[j]];
          dst[j + 1] = lut8[src[j + 1]];
          dst[j + 2] = lut8[src[j + 2]];
          dst[j + 3] = 255;
        }
      } else {
        const colors = new Uint32Array(256);
        for (let y = 0; y < 256; y++) colors[y] = (OPAQUE_ALPHA | ((invert ? 255 - y : y) * OPAQUE_GRAY)) >>> 0;
        const src = s.data;
        if (this._intLut) {
          const lut = this._intLut;
          const base = s.storedMin;
          const r = s.rescale; // the value of k is exactly the float32 the server stored
          for (let k = 0; k < lut.length; k++) lut[k] = colors[windowed8(rescaled(r, base + k), win)];
          for (let i = 0; i < n; i++) out[i] = lut[src[i] - base];
        } else if (win.threshold !== undefined) {
          const t = win.threshold;
          const hi = colors[255];
          const lo = colors[0];
          for (let i = 0; i < n; i++) out[i] = src[i] > t ? hi : lo;
        } else {
          const a = win.a;
          const b = win.b;
          const lo = colors[0];
          const hi = colors[255];
          for (let i = 0; i < n; i++) {
            const t = src[i] * a + b;
            out[i] = t > 0 ? (t < 255 ? colors[(t + 0.5) | 0] : hi) : lo; // NaN -> lowest
          }
        }
      }
      this._offCtx.putImageData(this._imageData, 0, 0);
    }

    _draw() {
      const ctx = this._ctx;
      const { dpr } = this._size;
      const { scale, tx, ty } = this._view;
      const s = this._source;
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.globalAlpha = 1;
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, this._canvas.width, this._canvas.height);
      ctx.setTransform(dpr * scale, 0, 0, dpr * scale, dpr * tx, dpr * ty);
      ctx.imageSmoothingEnabled = true;
      ctx.imageSmoothingQuality = dpr * scale < 1 ? "high" : "low";
      ctx.drawImage(this._offscreen, 0, 0);
      if (this._overlay && this._overlayVisible && this._opacity > 0) {
        ctx.globalAlpha = this._opacity;
        ctx.drawImage(this._overlay, 0, 0, s.columns, s.rows);
        ctx.globalAlpha = 1;
      }
      ctx.setTransform(1, 0, 0, 1, 0, 0);
    }

    _fmt(value) {
      const [lo, hi] = this._range || [0, 255];
      const span = hi - lo;
      if (span >= 100) return String(Math.round(value));
      if (span >= 1) return String(Math.round(value * 100) / 100);
      return String(Number(value.toPrecision(4)));
    }

    _updateStatus() {
      const { center, width } = this._win;
      const wl = `W ${this._fmt(width)} L ${this._fmt(center)}`;
      if (this._wlText.textContent !== wl) this._wlText.textContent = wl;
      const zoom = `Zoom ${Math.round(this._view.scale * 100)}%`;
      if (this._zoomText.textContent !== zoom) this._zoomText.textContent = zoom;
      this._invertFlag.hidden = !this._inverted;
      (this._presetButtons || []).forEach((b, i) => {
        const p = this.options.presets[i];
        b.setAttribute("aria-pressed", String(p.center === center && p.width === width));
      });
    }
  }

  XrsViewer._instances = [];
  XrsViewer._active = null;
  XrsViewer.parseNpy = parseNpy;
  XrsViewer.parsePixels = parsePixels;
  XrsViewer.readPixels = readPixels;
  XrsViewer.modalityValues = modalityValues;
  XrsViewer.SHORTCUTS = SHORTCUTS;
  global.XrsViewer = XrsViewer;
})(typeof window !== "undefined" ? window : globalThis);
