// The originals: a paged grid from the Admin API's listing (thumbnails are delivery URLs with
// c_fill and f_auto), search by prefix, and uploads by drag and drop or file picker, each with its
// progress; pending background removals are polled until they are done, then show their confidence.
import { deliveryPath, getResource, listResources, removal, upload } from "./api.js";

const $ = (id) => document.getElementById(id);
const THUMB = "c_fill,h_208,w_208/f_auto";
const POLL_MS = 1500;
// Upload rows kept at most: past it, the oldest finished ones go (one still under way stays, with its bar).
const UPLOAD_ROWS = 20;
// Originals per page of the listing (?page_size=N on the page's URL changes it, 1 to 500).
const PAGE_SIZE = Math.min(500, Math.max(1, Number(new URLSearchParams(location.search).get("page_size")) || 30));

export class Originals {
  constructor(config, { onSelect }) {
    this.config = config;
    this.cloud = config.cloud;
    this.onSelect = onSelect;
    this.cursor = "";
    this.prefix = "";
    this.items = new Map(); // public_id -> { asset, li }
    this.selected = null;
    this.following = new Set(); // public ids whose pending background removal is being polled
    $("search").addEventListener("submit", (event) => {
      event.preventDefault();
      this.prefix = $("prefix").value.trim();
      this.reload();
    });
    $("more").addEventListener("click", () => this.page());
    $("clear-uploads").addEventListener("click", () => {
      for (const row of this.finishedRows()) row.remove();
      this.tidyUploads();
      $("drop").focus(); // not lost on the page's body with the button, now hidden
    });
    this.wireUploads();
  }

  ids() {
    return [...this.items.keys()];
  }

  async reload() {
    this.cursor = "";
    this.items.clear();
    $("grid").replaceChildren();
    await this.page();
  }

  async page() {
    const status = $("grid-status");
    if (!this.config.upload) {
      status.textContent = "Open an original by its public id (in the Transformation panel).";
      return;
    }
    status.textContent = "Loading…";
    // "Load more" from the keyboard: the focus goes on to the first new original, not to the page's top
    // (where it fell when the last page hid the button).
    const fromMore = document.activeElement === $("more");
    try {
      const listing = await listResources(this.cloud, { prefix: this.prefix, cursor: this.cursor, max: PAGE_SIZE });
      const known = this.items.size;
      for (const asset of listing.resources || []) this.show(asset, false);
      if (fromMore && this.items.size > known) [...this.items.values()][known].li.firstChild.focus();
      this.cursor = listing.next_cursor || "";
      $("more").hidden = !this.cursor;
      this.count();
      if (!this.selected && this.items.size) this.select(this.ids()[0]);
    } catch (error) {
      status.textContent = `Cannot list originals: ${error.message}`;
    }
  }

  count() {
    const count = this.items.size;
    $("grid-status").textContent = count
      ? `${count} original${count === 1 ? "" : "s"}${this.cursor ? " (more below)" : ""}`
      : `No originals${this.prefix ? ` under “${this.prefix}”` : ""}.`;
  }

  // One grid entry (created or updated in place).
  show(asset, first) {
    let item = this.items.get(asset.public_id);
    if (!item) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "thumb";
      button.setAttribute("aria-pressed", "false");
      const img = document.createElement("img");
      img.className = "checker";
      img.loading = "lazy";
      img.alt = "";
      const id = document.createElement("span");
      id.className = "id";
      id.textContent = asset.public_id;
      const badge = document.createElement("span");
      badge.className = "badge";
      button.append(img, id, badge);
      button.addEventListener("click", () => this.select(asset.public_id));
      li.append(button);
      item = { asset, li };
      this.items.set(asset.public_id, item);
      if (first) $("grid").prepend(li); else $("grid").append(li);
    }
    item.asset = { ...item.asset, ...asset };
    const button = item.li.firstChild;
    const img = button.querySelector("img");
    const src = deliveryPath(this.cloud, THUMB, item.asset);
    if (img.getAttribute("src") !== src) img.src = src;
    const badge = button.querySelector(".badge");
    const state = removal(item.asset);
    badge.className = `badge ${state ? state.status : ""}`;
    badge.textContent = !state ? ""
      : state.status === "complete" ? `cut-out ${Number(state.confidence ?? 0).toFixed(2)}`
      : state.status === "pending" ? "removing…" : `removal ${state.status}`;
    badge.title = !state ? "" : state.status === "complete"
      ? `background removed, confidence ${Number(state.confidence ?? 0).toFixed(2)}` : `background removal ${state.status}`;
    const { width, height } = item.asset;
    button.setAttribute("aria-label", [asset.public_id, width ? `${width} × ${height}` : "", badge.title]
      .filter(Boolean).join(", "));
    if (first) this.count();
    // A removal still pending (listed after a reload, say) is followed until it is done.
    if (state?.status === "pending" && !this.following.has(asset.public_id)) this.follow(asset.public_id, null);
    return item;
  }

  select(publicId) {
    const item = this.items.get(publicId);
    if (!item) return;
    this.mark(publicId);
    this.onSelect(item.asset);
  }

  // Which original the builder shows (one opened by its id too, listed here or not): its entry, if any,
  // is the one pressed, and a removal followed to its end re-opens it only while it is still shown.
  mark(publicId) {
    for (const [id, other] of this.items) {
      other.li.firstChild.setAttribute("aria-pressed", String(id === publicId));
    }
    this.selected = publicId;
  }

  wireUploads() {
    const drop = $("drop");
    const picker = $("files");
    if (!this.config.background_removal) {
      // Checked by default, it made every upload fail: "background removal is not available".
      $("remove-bg").checked = false;
      $("remove-bg").closest("label").hidden = true;
    }
    if (!this.config.upload) {
      drop.hidden = true;
      $("search").hidden = true; // it searches the Admin API's listing: without it, Search did nothing
      $("remove-bg").closest("label").hidden = true;
      $("upload-off").hidden = false;
      $("upload-off").textContent = "Uploads and the originals list need the Upload/Admin API: start the server "
        + "with CUTOUT_UPLOAD=1, CUTOUT_API_KEY and CUTOUT_API_SECRET, and sign in here with the key and secret.";
    }
    drop.addEventListener("click", () => picker.click());
    drop.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); picker.click(); }
    });
    picker.addEventListener("change", () => { this.uploadAll([...picker.files]); picker.value = ""; });
    drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      // Every file goes to the Upload API, which says why it refuses one (the row shows it).
      this.uploadAll([...event.dataTransfer.files]);
    });
  }

  // The rows of uploads that came to an end (uploaded, refused, removal done or failed), newest first.
  finishedRows() {
    return [...$("uploads").children].filter((row) => row.dataset.state === "finished");
  }

  // The list stays bounded (the oldest finished rows go past UPLOAD_ROWS), and Clear is there while it
  // has something to clear.
  tidyUploads() {
    const finished = this.finishedRows();
    let excess = $("uploads").childElementCount - UPLOAD_ROWS;
    while (excess-- > 0 && finished.length) finished.pop().remove();
    $("clear-uploads").hidden = !this.finishedRows().length;
  }

  uploadAll(files) {
    return Promise.all(files.map((file) => this.uploadOne(file)));
  }

  async uploadOne(file) {
    const row = document.createElement("li");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = file.name;
    const status = document.createElement("span");
    status.className = "state";
    status.textContent = "waiting";
    // The list was a live region: a screen reader read out every percent of every upload. Only what
    // each upload came to is told (#upload-news); the percent is on the bar.
    const tell = (text) => {
      status.textContent = text;
      // Added, not replaced: several uploads end at once, and each is read.
      const news = $("upload-news");
      news.append(Object.assign(document.createElement("span"), { textContent: `${file.name}: ${text}. ` }));
      while (news.childElementCount > 10) news.firstElementChild.remove();
    };
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute("aria-label", `Upload of ${file.name}`);
    row.append(name, status, bar);
    row.dataset.state = "active"; // until it is uploaded and any background removal has ended
    $("uploads").prepend(row);
    this.tidyUploads();
    const params = { use_filename: "true", unique_filename: "true" };
    // Browsing a folder ("shop/"): uploads go into it.
    if (this.prefix.endsWith("/") && this.prefix.length > 1) params.folder = this.prefix.slice(0, -1);
    if ($("remove-bg").checked) params.background_removal = "cloudinary_ai";
    try {
      const asset = await upload(this.cloud, file, params, (fraction) => {
        bar.value = fraction;
        status.textContent = `${Math.round(fraction * 100)} %`;
      });
      bar.value = 1;
      const state = removal(asset);
      tell(state?.status === "pending" ? "uploaded · removing background…" : "uploaded");
      const pending = state?.status === "pending";
      if (pending) this.following.add(asset.public_id); // followed here, with this row's status
      this.show(asset, true);
      this.select(asset.public_id);
      if (pending) await this.follow(asset.public_id, tell);
    } catch (error) {
      tell(`failed: ${error.message}`);
      row.classList.add("failed");
      // Full (the file was sent before the server refused it), it looked like the uploads that worked.
      bar.hidden = true;
    } finally {
      row.dataset.state = "finished";
      this.tidyUploads();
    }
  }

  // Poll the Admin API until the background removal is no longer pending; ``tell`` says how it goes in
  // the upload's row (null for one listed as pending).
  async follow(publicId, tell) {
    this.following.add(publicId);
    const say = (text) => tell?.(text);
    try {
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        let asset;
        try {
          asset = await getResource(this.cloud, publicId);
        } catch (error) {
          say(`cannot follow: ${error.message}`);
          return;
        }
        const state = removal(asset);
        if (state?.status === "pending") continue;
        this.show(asset, false);
        say(state?.status === "complete"
          ? `background removed · confidence ${Number(state.confidence ?? 0).toFixed(2)}`
          : `background removal ${state?.status || "ended"}${state?.reason ? `: ${state.reason}` : ""}`);
        if (this.selected === publicId) this.onSelect(this.items.get(publicId).asset);
        return;
      }
    } finally {
      this.following.delete(publicId);
    }
  }
}
