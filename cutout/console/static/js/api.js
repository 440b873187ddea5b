// Talking to the server: the console's three small endpoints, the Upload/Admin API (Cloudinary's
// shapes) and the delivery URLs. Every request goes to the page's own origin.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// fetch, with a network failure (server down, connection refused) said in words: the browser's own
// TypeError says only "Failed to fetch". An abort stays an AbortError, for callers that cancel.
async function reach(url, options) {
  try {
    return await fetch(url, options);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, `Cannot reach the server (${error.message})`);
  }
}

async function json(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = body?.error?.message || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, signIn(response.status, message));
  }
  return body;
}

// A 401 from the console's endpoints or the Upload/Admin API means the sign-in no longer holds (the
// server restarted with another key or secret): the browser asks again only when the page is loaded,
// and the message alone ("Wrong API key or secret") left the user with nothing to do.
function signIn(status, message) {
  return status === 401 ? `${message} (reload the page to sign in again)` : message;
}

export async function getConfig() {
  return json(await reach("/console/config", { credentials: "same-origin" }));
}

export async function check(transformation, asset, signal) {
  const query = new URLSearchParams({ transformation, public_id: asset.public_id });
  if (asset.version) query.set("version", String(asset.version));
  return json(await reach(`/console/check?${query}`, { signal, credentials: "same-origin" }));
}

// The Admin API: GET /v1_1/<cloud>/resources/image/upload?prefix=&max_results=&next_cursor=
export async function listResources(cloud, { prefix = "", cursor = "", max = 30 } = {}) {
  const query = new URLSearchParams({ max_results: String(max) });
  if (prefix) query.set("prefix", prefix);
  if (cursor) query.set("next_cursor", cursor);
  return json(await reach(`/v1_1/${encodeURIComponent(cloud)}/resources/image/upload?${query}`,
                          { credentials: "same-origin" }));
}

export async function getResource(cloud, publicId) {
  const path = publicId.split("/").map(encodeURIComponent).join("/");
  return json(await reach(`/v1_1/${encodeURIComponent(cloud)}/resources/image/upload/${path}`,
                          { credentials: "same-origin" }));
}

// The asset's background-removal state from an upload or resource response, or null.
export function removal(resource) {
  const state = resource?.info?.background_removal?.cloudinary_ai;
  if (!state) return null;
  return { status: state.status, confidence: state.data?.confidence_score ?? null, reason: state.reason ?? "" };
}

// The server signs the parameters (the secret stays there), then the browser posts the file to the
// Upload API itself, with progress.
export async function upload(cloud, file, params, onProgress) {
  const signed = await json(await reach("/console/sign", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(params),
  }));
  const form = new FormData();
  for (const [name, value] of Object.entries(signed.params)) form.append(name, value);
  if (signed.api_key) form.append("api_key", signed.api_key);
  if (signed.signature) form.append("signature", signed.signature);
  form.append("file", file, file.name);
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", `/v1_1/${encodeURIComponent(cloud)}/image/upload`);
    request.withCredentials = true;
    request.responseType = "json";
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    request.onload = () => {
      const body = request.response;
      if (request.status >= 200 && request.status < 300 && body) resolve(body);
      else {
        const message = body?.error?.message || `upload failed (${request.status})`;
        reject(new ApiError(request.status, signIn(request.status, message)));
      }
    };
    request.onerror = () => reject(new ApiError(0, "network error during upload"));
    request.send(form);
  });
}

export function escapePublicId(publicId) {
  // As the SDKs write it (cloudinary.utils.smart_escape): only [A-Za-z0-9_.-/:] stay as they are.
  return Array.from(new TextEncoder().encode(publicId), (byte) => {
    const c = String.fromCharCode(byte);
    return /[A-Za-z0-9_.\-/:]/.test(c) && byte < 128 ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }).join("");
}

// The version the SDKs write for an id with none of its own (force_version): v1 for an id in folders,
// which a delivery path needs (a folder named like a component, w_100/x, would read as a transformation).
export function defaultVersion(publicId) {
  return publicId.includes("/") && !/^v[0-9]+/.test(publicId) ? 1 : null;
}

export function deliveryPath(cloud, transformation, asset) {
  const parts = [`/${cloud}/image/upload`];
  if (transformation) parts.push(transformation);
  const version = asset.version || defaultVersion(asset.public_id);
  if (version) parts.push(`v${version}`);
  parts.push(escapePublicId(asset.public_id));
  return parts.join("/");
}

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
});

// A delivery URL as a blob. 423 means the derivative is being generated: wait Retry-After and ask
// again, telling the caller (onGenerating) so the page can say so.
export async function fetchImage(url, { signal, onGenerating } = {}) {
  for (;;) {
    const response = await reach(url, { signal, credentials: "same-origin" });
    if (response.status === 423) {
      onGenerating?.();
      const seconds = Number(response.headers.get("Retry-After")) || 2;
      await sleep(Math.min(seconds, 5) * 1000, signal);
      continue;
    }
    if (!response.ok) {
      // The body is the error's own text (X-Cld-Error carries it %-escaped).
      const message = (await response.text()).trim();
      throw new ApiError(response.status, message || `${response.status}`);
    }
    const blob = await response.blob();
    return { blob, type: blob.type || response.headers.get("Content-Type") || "" };
  }
}
