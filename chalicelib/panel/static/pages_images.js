// The customer's own images: fetch one from a URL, watch it until the provider has it, and
// delete it. The list is polled while any image is pending or being deleted.

import { h, replace } from "./dom.js";
import { get, post, del, id } from "./api.js";
import { actionButton, badge, dateTime, form, money, pageHeader, pagedTable, pollUntilSettled, section } from "./ui.js";

const IMAGES_PER_PAGE = 25;
const BYTES_PER_GB = 1e9;
const TRANSITIONAL_STATES = new Set(["pending", "deleting"]);
const STATE_KINDS = { active: "ok", pending: "warn", deleting: "warn", error: "bad" };

// Storage is billed per decimal GB (10^9 bytes), so sizes are shown in the same unit.
function sizeText(image) {
  if (!image.size_bytes) return image.state === "pending" ? "not known yet" : "—";
  return `${(image.size_bytes / BYTES_PER_GB).toFixed(2)} GB`;
}

function isSettled(images) {
  return !images.some((image) => TRANSITIONAL_STATES.has(image.state));
}

function fetchForm(catalog, onFetched) {
  const regions = catalog.regions.map((region) => ({ value: region.id, label: region.name }));
  return form({
    submitLabel: "Fetch image",
    busyLabel: "Starting…",
    fields: [
      { name: "region", label: "Region", type: "select", options: regions, hint: "The image can be used by VMs in this region." },
      { name: "name", label: "Name", maxLength: 64, autocomplete: "off", placeholder: "debian-custom" },
      { name: "url", label: "Image URL", type: "url", autocomplete: "off", placeholder: "https://example.com/disk.qcow2", hint: "An http or https address of a disk image the provider can download; private and local addresses are not allowed." },
    ],
    onSubmit: async (values, node) => {
      const image = await post("v1/images", { region: values.region, name: values.name.trim(), url: values.url.trim() });
      node.reset();
      await onFetched();
      return `Fetching ${image.name}. It becomes usable once the provider has downloaded it.`;
    },
  });
}

function imageTable(images, names, currency, reload) {
  const remove = (image) =>
    actionButton(
      "Delete",
      async () => {
        await del(`v1/images/${id(image.id)}`);
        await reload();
      },
      {
        kind: "danger",
        busyLabel: "Deleting…",
        confirmText: `Delete the image "${image.name}"? VMs created from it keep running, but it cannot be used again.`,
        success: `Image ${image.name} deleted.`,
      },
    );
  const columns = [
    { label: "Name", value: (image) => image.name },
    { label: "Region", value: (image) => names.get(image.region) || image.region },
    { label: "State", value: (image) => badge(image.state, STATE_KINDS[image.state] || "") },
    { label: "Size", value: sizeText },
    { label: "Storage an hour", value: (image) => (image.price_hourly ? money(image.price_hourly, currency) : "—") },
    { label: "Created", value: (image) => dateTime(image.created_at) },
    { label: "Actions", value: (image) => (image.state === "deleting" ? "" : remove(image)) },
  ];
  return pagedTable(columns, images, { size: IMAGES_PER_PAGE, empty: "You have no images yet. Fetch one from a URL or take a snapshot of a VM." });
}

export async function imageList({ session }) {
  const [catalog, first] = await Promise.all([get("v1/catalog"), get("v1/images")]);
  const names = new Map(catalog.regions.map((region) => [region.id, region.name]));
  const listHolder = h("div", { "aria-live": "polite" });
  let stopPolling = () => {};

  function draw(answer) {
    replace(listHolder, imageTable(answer.images, names, session.currency, reload));
  }

  function watch(answer) {
    stopPolling();
    draw(answer);
    if (!isSettled(answer.images)) {
      stopPolling = pollUntilSettled(() => get("v1/images"), draw, (next) => isSettled(next.images), { node: listHolder });
    }
  }

  async function reload() {
    watch(await get("v1/images"));
  }

  watch(first);
  return h(
    "div",
    {},
    pageHeader("Images"),
    section("Your images", h("p", { class: "hint" }, "Images and snapshots are billed for storage per GB-hour while they exist."), listHolder),
    catalog.regions.length ? section("Fetch an image from a URL", fetchForm(catalog, reload)) : null,
  );
}
