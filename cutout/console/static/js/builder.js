// The transformation builder: the text field, validated live by the server's own parser; presets; the
// result beside the original (a before/after slider for cut-outs); the URL and the SDK snippets.
import { check, deliveryPath, fetchImage, getResource } from "./api.js";

const $ = (id) => document.getElementById(id);

// Presets: Cloudinary's own examples for background removal, on whatever image is selected. The
// underlay goes under the cut-out: another original that is listed (docs/bg_beach in the samples), else a
// sample that is not the original itself (underlayId).
const PRESETS = {
  cutout: () => "e_background_removal",
  colour: () => "e_background_removal/b_rgb:dbe7f7",
  shadow: () => "e_background_removal/e_dropshadow:azimuth_220;elevation_60;spread_20",
  square: () => "c_fill,g_auto,h_300,w_300",
  underlay: (builder) => {
    const layer = builder.underlayId();
    return `e_background_removal/c_scale,w_400/u_${layer.replaceAll("/", ":")}/c_fill,h_500,w_700/fl_layer_apply`;
  },
};

// The samples' background and another photo (cutout/samples): the underlay when no other original is listed.
const SAMPLE_UNDERLAYS = ["docs/bg_beach", "docs/road"];

const COPIED = { url: "delivery URL", python: "Python code", javascript: "JavaScript code" };

function describe(width, height, type, bytes) {
  const format = (type.split("/")[1] || type || "?").replace("jpeg", "jpg");
  const size = bytes >= 1024 * 1024 ? `${(bytes / 1048576).toFixed(2)} MB`
    : bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KB` : `${bytes} B`;
  const text = `${format} · ${size} (${bytes.toLocaleString("en")} bytes)`;
  // A format the browser cannot decode (f_tiff) has no size here: not "0 × 0", and a broken picture.
  if (!width) return `${text}: this browser cannot show ${format}; Open downloads it`;
  return `${width} × ${height} · ${text}`;
}

export class Builder {
  constructor(config, { otherIds, onOpen }) {
    this.cloud = config.cloud;
    this.otherIds = otherIds; // () -> public ids listed in the grid
    this.onOpen = onOpen; // (public id) -> void: an original opened by its id, for the grid to mark
    this.asset = null;
    this.beforeFailed = false; // the original could not be fetched (its frame shows why)
    this.field = $("transformation");
    this.timer = 0;
    this.checking = null; // AbortController of the check in flight
    this.loading = null; // AbortController of the result image being fetched
    this.original = null; // AbortController of the original image being fetched
    this.urls = []; // object URLs to revoke
    this.field.addEventListener("input", () => this.schedule());
    this.field.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); this.validate(); }
    });
    $("presets").addEventListener("click", (event) => {
      const name = event.target.closest("button[data-preset]")?.dataset.preset;
      if (!name) return;
      this.field.value = PRESETS[name](this);
      this.validate();
    });
    $("compare-range").addEventListener("input", () => this.split());
    document.querySelectorAll("button[data-copy]").forEach((button) => {
      button.addEventListener("click", () => this.copy(button.dataset.copy));
    });
    $("open").addEventListener("submit", async (event) => {
      event.preventDefault();
      const id = $("public-id").value.trim();
      if (!id) return;
      // With the Admin API, the asset's record (its version goes in the URL); else the id alone.
      let asset = { public_id: id };
      if (config.upload) {
        try {
          asset = await getResource(this.cloud, id);
        } catch {
          asset = { public_id: id }; // the check below says what the delivery URL answers (404...)
        }
      }
      this.onOpen?.(asset.public_id); // else the grid goes on marking the original shown before
      this.select(asset);
    });
  }

  underlayId() {
    const shown = this.asset?.public_id;
    const others = this.otherIds().filter((id) => id !== shown);
    if (others.length) return others.find((id) => id.endsWith("bg_beach")) || others[0];
    // Nothing else listed (uploads off: no listing; a prefix that lists only this one): a sample, never
    // the original itself (docs/road laid docs/road under its own cut-out).
    return SAMPLE_UNDERLAYS.find((id) => id !== shown);
  }

  select(asset) {
    this.asset = asset;
    $("public-id").value = asset.public_id;
    // Until they load, the frames are empty: a large original took seconds, and the previous original
    // and its result stayed under this one's name and "Loading…", as if they were its own.
    for (const id of ["before", "after", "compare-before"]) $(id).removeAttribute("src");
    $("compare").hidden = true;
    $("after-info").textContent = "Loading…";
    const before = deliveryPath(this.cloud, "", asset);
    this.showImage($("before"), before, $("before-info"));
    $("compare-before").src = before;
    this.validate();
  }

  // The original at its real size, with what the delivery URL answers.
  // Only the latest original counts: one asked for before it may answer after it.
  async showImage(img, url, info) {
    this.beforeFailed = false;
    this.original?.abort();
    const controller = (this.original = new AbortController());
    info.textContent = "Loading…";
    try {
      const { blob, type } = await fetchImage(url, { signal: controller.signal });
      if (controller.signal.aborted) return;
      await this.place(img, blob);
      info.textContent = describe(img.naturalWidth, img.naturalHeight, type, blob.size);
    } catch (error) {
      if (error.name === "AbortError" || controller.signal.aborted) return;
      img.removeAttribute("src"); // not the previous original's picture over this one's error
      info.textContent = `${error.status || ""} ${error.message}`.trim();
      this.beforeFailed = true; // fetched again once the server answers (validate)
    }
  }

  place(img, blob) {
    const url = URL.createObjectURL(blob);
    this.urls.push(url);
    while (this.urls.length > 8) URL.revokeObjectURL(this.urls.shift());
    return new Promise((resolve) => {
      img.onload = () => resolve();
      img.onerror = () => { img.removeAttribute("src"); resolve(); }; // not the browser's broken-image icon
      img.src = url;
    });
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.validate(), 250);
  }

  // ``checked``: the text the column counts in, as the server read it (a space or an é in a text layer
  // is sent %-encoded, as the browser sends the delivery URL; an encoded structural character, %24 or
  // %2C, is read decoded, as delivery reads it).
  message(text, kind, column, checked = this.field.value) {
    const box = $("t-message");
    box.className = `message ${kind}`;
    box.textContent = text;
    if (column) {
      // A caret under the field's text: the column the parser named (1-based).
      const caret = document.createElement("span");
      caret.className = "caret";
      const value = checked;
      caret.textContent = `${value}\n${" ".repeat(column - 1)}^`;
      box.prepend(caret);
      // The column in view, near the middle: monospace, so one character is the width over the longest line.
      const char = caret.scrollWidth / Math.max(value.length, column);
      caret.scrollLeft = Math.max(0, (column - 0.5) * char - caret.clientWidth / 2);
    }
  }

  async validate() {
    clearTimeout(this.timer);
    if (!this.asset) {
      this.message("Choose an original (or type its public id) first.", "", null);
      return;
    }
    this.checking?.abort();
    const controller = (this.checking = new AbortController());
    const text = this.field.value.trim();
    let answer;
    try {
      answer = await check(text, this.asset, controller.signal);
    } catch (error) {
      if (error.name === "AbortError" || controller.signal.aborted) return;
      // The server is down or refused the check: the URL, code and result of the text checked before
      // would pass for this one's, so they go.
      this.message(`${error.status || ""} ${error.message}`.trim(), "bad", null);
      this.clear("", "No result: the transformation could not be checked.");
      return;
    }
    if (controller.signal.aborted) return;
    this.field.setAttribute("aria-invalid", String(!answer.ok));
    $("url").value = answer.url;
    if (!answer.ok) {
      this.message(`${answer.status} ${answer.message}`, "bad", answer.column, answer.read);
      this.clear(answer.url, `The delivery URL answers ${answer.status}.`);
      return;
    }
    this.message(text ? `Valid: ${answer.canonical || "(no change)"}` : "No transformation: the original.", "good",
                 null);
    $("python").textContent = answer.python;
    $("javascript").textContent = answer.javascript;
    this.actions();
    // The server answers again after the original could not be fetched (it was down): the Original frame
    // said "Cannot reach the server" beside a fresh result until another original was chosen.
    if (this.beforeFailed) {
      const before = deliveryPath(this.cloud, "", this.asset);
      this.showImage($("before"), before, $("before-info"));
      $("compare-before").src = before;
    }
    this.load(answer.path, answer.cutout);
  }

  // No result to show (``url`` is the delivery URL that answers an error, or none): ``why`` says so.
  clear(url, why) {
    $("url").value = url;
    $("python").textContent = "";
    $("javascript").textContent = "";
    this.actions();
    this.loading?.abort();
    $("after").removeAttribute("src");
    $("after-info").textContent = why;
    $("generating").hidden = true;
    $("compare").hidden = true;
  }

  // The result, through the delivery URL itself: 423 shows "Generating…" until it is ready.
  async load(path, cutout) {
    this.loading?.abort();
    const controller = (this.loading = new AbortController());
    const generating = $("generating");
    const info = $("after-info");
    info.textContent = "Loading…";
    $("compare").hidden = true;
    try {
      const { blob, type } = await fetchImage(path, {
        signal: controller.signal,
        onGenerating: () => {
          // Not the previous result under "Generating…", as if it were this one's.
          $("after").removeAttribute("src");
          generating.hidden = false;
          info.textContent = "Generating (423): the image appears when it is ready.";
        },
      });
      if (controller.signal.aborted) return;
      await this.place($("after"), blob);
      const img = $("after");
      img.dataset.path = path;
      info.textContent = describe(img.naturalWidth, img.naturalHeight, type, blob.size);
      if (cutout && (await sameShape($("compare-before"), img))) {
        if (controller.signal.aborted) return;
        $("compare-after").src = img.src;
        $("compare").hidden = false;
        this.split();
      }
    } catch (error) {
      if (error.name === "AbortError" || controller.signal.aborted) return;
      $("after").removeAttribute("src");
      info.textContent = `${error.status || ""} ${error.message}`.trim();
    } finally {
      if (!controller.signal.aborted) generating.hidden = true;
    }
  }

  split() {
    const value = `${$("compare-range").value}%`;
    document.querySelector(".compare-box").style.setProperty("--split", value);
    $("compare-range").setAttribute("aria-valuetext", `${$("compare-range").value}% before`);
  }

  // Copy and Open act on what is there. With no URL or code (nothing opened yet, an error) they were on:
  // Copy put nothing on the clipboard and said "Copied the URL", Open (href="#") opened the console
  // again. "Copied …" goes with the URL it was said of.
  actions() {
    for (const button of document.querySelectorAll("button[data-copy]")) {
      const source = $(button.dataset.copy);
      button.disabled = !(source.value ?? source.textContent);
    }
    const url = $("url").value;
    if (url) $("open-url").href = url; else $("open-url").removeAttribute("href");
    $("copied").textContent = "";
  }

  async copy(what) {
    const source = $(what);
    const text = source.value ?? source.textContent;
    try {
      await navigator.clipboard.writeText(text);
      $("copied").textContent = `Copied the ${COPIED[what]} to the clipboard.`;
    } catch {
      // No clipboard permission (plain http on another host): select it for Ctrl+C instead.
      const range = document.createRange();
      range.selectNodeContents(source);
      getSelection().removeAllRanges();
      if (source.select) source.select(); else getSelection().addRange(range);
      $("copied").textContent = "Selected: press Ctrl+C to copy.";
    }
  }
}

// The slider lays the result over the original, so it means something only when both have one shape: a
// crop, a pad or an underlay's canvas changes it, and the two halves would show different regions at
// different scales.
async function sameShape(before, after) {
  try {
    await before.decode();
  } catch {
    return false;
  }
  const a = before.naturalWidth / before.naturalHeight;
  const b = after.naturalWidth / after.naturalHeight;
  return Math.abs(a - b) <= 0.01 * a;
}
