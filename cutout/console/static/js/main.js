// The console page: wires the originals (grid and uploads) to the builder.
import { getConfig } from "./api.js";
import { Builder } from "./builder.js";
import { Originals } from "./originals.js";

async function start() {
  const config = await getConfig();
  document.getElementById("cloud").textContent =
    `cloud ${config.cloud}${config.background_removal ? "" : " · background removal is off on this server"}`;
  let originals = null;
  const builder = new Builder(config, {
    otherIds: () => originals?.ids() ?? [],
    onOpen: (publicId) => originals?.mark(publicId),
  });
  originals = new Originals(config, { onSelect: (asset) => builder.select(asset) });
  await originals.reload();
  document.body.dataset.ready = "true"; // for tests: the first listing is on the page
}

start().catch((error) => {
  document.getElementById("grid-status").textContent = `The console could not start: ${error.message}`;
});
