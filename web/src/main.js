// The Genesis studio page: submit pictures, follow the queue, view and compare results.
import "./style.css";
import { ApiError, download, fetchBytes, followJob, getToken, request, setToken, takeTokenFromFragment } from "./api.js";
import { Viewer } from "./viewer.js";

const $ = (selector) => document.querySelector(selector);
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const LIST_REFRESH_MS = 5000;

const state = {
  models: [],
  picture: null,
  jobs: new Map(),
  followers: new Map(),
  slots: [],
};

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function say(text, kind = "info") {
  const message = $("#form-message");
  message.textContent = text;
  message.dataset.kind = kind;
}

function describeError(error) {
  if (error instanceof ApiError && error.status === 401) {
    $("#token-box").open = true;
    return "This server needs its access token: enter it above.";
  }
  return error.message || String(error);
}

// ------------------------------------------------------------------ picture

function setPicture(file) {
  if (!file) return;
  if (!file.type.startsWith("image/")) {
    say(`${file.name} is not a picture; choose a PNG, JPEG or WebP file`, "error");
    return;
  }
  state.picture = file;
  const preview = $("#preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  $("#drop-text").textContent = `${file.name} (${Math.round(file.size / 1024)} KiB)`;
  updateSubmit();
}

function setUpPicture() {
  for (const input of [$("#picture-input"), $("#camera-input")]) {
    input.addEventListener("change", () => setPicture(input.files[0]));
  }
  const zone = $("#drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    setPicture(event.dataTransfer.files[0]);
  });
}

// ------------------------------------------------------------------ models and parameters

function currentModel() {
  return state.models.find((model) => model.name === $("#model-select").value);
}

async function loadModels() {
  state.models = await request("GET", "/api/models");
  const select = $("#model-select");
  select.replaceChildren(
    ...state.models.map((model) =>
      element(
        "option",
        { value: model.name, disabled: !model.available },
        `${model.title}${model.available ? "" : " (unavailable)"}`,
      ),
    ),
  );
  const first = state.models.find((model) => model.available);
  if (first) select.value = first.name;
  showModel();
}

function showModel() {
  const model = currentModel();
  const params = $("#params");
  const formats = $("#formats");
  params.replaceChildren(element("legend", {}, "Parameters"));
  formats.replaceChildren(element("legend", {}, "Formats"));
  if (!model) return updateSubmit();
  $("#model-description").textContent = model.available
    ? `${model.description} Makes ${model.outputs.join(" and ")}. Licence: ${model.license}.`
    : model.reason;
  for (const [name, value] of Object.entries(model.default_params)) {
    const help = model.param_help?.[name] || "";
    let input;
    if (typeof value === "boolean") {
      input = element("input", { type: "checkbox", name, checked: value });
    } else if (typeof value === "number") {
      input = element("input", { type: "number", name, value, step: Number.isInteger(value) ? 1 : "any" });
    } else {
      input = element("input", { type: "text", name, value: value ?? "" });
    }
    input.dataset.param = name;
    input.dataset.kind = typeof value;
    params.append(
      element(
        "label",
        { class: "param" },
        element("span", {}, name),
        input,
        element("small", { class: "help" }, `${help} Default: ${value}.`),
      ),
    );
  }
  for (const name of model.formats) {
    formats.append(
      element("label", { class: "format" }, element("input", { type: "checkbox", name: "format", value: name, checked: true }), ` .${name}`),
    );
  }
  updateSubmit();
}

function readParams() {
  const params = {};
  for (const input of document.querySelectorAll("#params [data-param]")) {
    const kind = input.dataset.kind;
    if (kind === "boolean") params[input.dataset.param] = input.checked;
    else if (kind === "number") params[input.dataset.param] = Number(input.value);
    else params[input.dataset.param] = input.value;
  }
  return params;
}

function updateSubmit() {
  const model = currentModel();
  $("#submit-button").disabled = !(state.picture && model && model.available);
}

async function submit(event) {
  event.preventDefault();
  const model = currentModel();
  const body = new FormData();
  body.append("image", state.picture, state.picture.name || "picture");
  body.append("model", model.name);
  body.append("params", JSON.stringify(readParams()));
  body.append("seed", $("#seed-input").value || "0");
  const formats = [...document.querySelectorAll("#formats input:checked")].map((input) => input.value);
  body.append("formats", formats.join(","));
  $("#submit-button").disabled = true;
  try {
    const job = await request("POST", "/api/jobs", body);
    say(`Queued job ${job.id.slice(0, 8)}.`);
    upsertJob(job);
    follow(job);
  } catch (error) {
    say(describeError(error), "error");
  } finally {
    updateSubmit();
  }
}

// ------------------------------------------------------------------ queue and history

async function refreshJobs() {
  try {
    const page = await request("GET", "/api/jobs?limit=50");
    const seen = new Set(page.items.map((job) => job.id));
    for (const id of [...state.jobs.keys()]) if (!seen.has(id)) removeJob(id);
    for (const job of page.items.reverse()) {
      upsertJob(job);
      if (!TERMINAL.has(job.status)) follow(job);
    }
    $("#server-status").textContent = "";
  } catch (error) {
    $("#server-status").textContent = describeError(error);
  }
}

function follow(job) {
  if (state.followers.has(job.id) || TERMINAL.has(job.status)) return;
  const follower = followJob(job.id, (update) => {
    // A count of progress events received, shown to tests as <body data-events>.
    document.body.dataset.events = String(Number(document.body.dataset.events || 0) + 1);
    upsertJob(update);
  });
  state.followers.set(job.id, follower);
  follower.done
    .catch(() => {})
    .finally(async () => {
      state.followers.delete(job.id);
      try {
        upsertJob(await request("GET", `/api/jobs/${job.id}`));
      } catch {
        removeJob(job.id);
      }
    });
}

function removeJob(id) {
  state.jobs.delete(id);
  document.querySelector(`#job-list [data-job-id="${id}"]`)?.remove();
  state.followers.get(id)?.abort();
}

function progressText(job) {
  const { stage, step, total } = job.progress;
  if (job.status === "queued") return "waiting in the queue";
  if (job.status === "running") return `${stage || "starting"} ${total ? `${step}/${total}` : ""}`;
  if (job.status === "failed") return job.error?.message || "failed";
  if (job.status === "completed") {
    const stages = Object.entries(job.timings.stages)
      .map(([name, seconds]) => `${name} ${seconds.toFixed(1)} s`)
      .join(", ");
    return stages || "done";
  }
  return job.status;
}

function upsertJob(job) {
  const list = $("#job-list");
  const known = state.jobs.get(job.id);
  if (known && JSON.stringify(known) === JSON.stringify(job) && list.querySelector(`[data-job-id="${job.id}"]`)) return;
  state.jobs.set(job.id, job);
  const fraction = job.status === "completed" ? 1 : job.progress.total ? job.progress.step / job.progress.total : 0;
  const actions = [];
  if (job.status === "completed") {
    actions.push(element("button", { type: "button", class: "view", onclick: () => showJob(0, job.id) }, "View"));
    actions.push(element("button", { type: "button", class: "compare", onclick: () => compareJob(job.id) }, "Compare"));
  }
  if (!TERMINAL.has(job.status) && !job.cancel_requested) {
    actions.push(element("button", { type: "button", class: "cancel", onclick: () => act("POST", `/api/jobs/${job.id}/cancel`) }, "Cancel"));
  }
  if (job.status === "failed" || job.status === "cancelled") {
    actions.push(element("button", { type: "button", class: "retry", onclick: () => act("POST", `/api/jobs/${job.id}/retry`, job.id) }, "Retry"));
  }
  if (job.status !== "running") {
    actions.push(element("button", { type: "button", class: "delete", onclick: () => act("DELETE", `/api/jobs/${job.id}`, null, job.id) }, "Delete"));
  }
  const item = element(
    "li",
    { class: "job", dataset: { jobId: job.id, status: job.status } },
    element(
      "div",
      { class: "job-head" },
      element("strong", {}, job.picture.name),
      element("span", { class: `status ${job.status}` }, job.status),
    ),
    element("div", { class: "muted" }, `${job.model} · ${job.id.slice(0, 8)} · ${new Date(job.timings.created_at).toLocaleString()}`),
    element("progress", { max: 1, value: fraction }),
    element("div", { class: "progress-text" }, progressText(job)),
    element("div", { class: "row actions" }, ...actions),
  );
  const existing = list.querySelector(`[data-job-id="${job.id}"]`);
  if (existing) existing.replaceWith(item);
  else list.prepend(item);
}

async function act(method, path, refollowId, removedId) {
  try {
    const job = await request(method, path);
    if (removedId) removeJob(removedId);
    if (job) {
      upsertJob(job);
      if (refollowId) follow(job);
    }
  } catch (error) {
    say(describeError(error), "error");
  }
}

// ------------------------------------------------------------------ viewer

function makeSlot(container, index) {
  const root = element("div", { class: "slot", dataset: { slot: index } });
  container.append(root);
  const viewer = new Viewer(root);
  const choices = element("div", { class: "row choices" });
  const downloads = element("div", { class: "row downloads" });
  const health = element("dl", { class: "health" });
  root.append(choices, downloads, health);
  return { root, viewer, choices, downloads, health, jobId: null };
}

function compareJob(jobId) {
  $("#compare-toggle").checked = true;
  setCompare(true);
  showJob(1, jobId);
}

function setCompare(on) {
  state.slots[1].root.hidden = !on;
  document.querySelector("#viewers").classList.toggle("two", on);
}

async function showJob(index, jobId, artifactName) {
  const slot = state.slots[index];
  const job = state.jobs.get(jobId);
  if (!job) return;
  slot.jobId = jobId;
  // Spark reads .ply, .splat and .spz splats; GLB splats (KHR_gaussian_splatting) are downloads only.
  const showable = job.artifacts.filter((item) => (item.kind === "mesh" ? item.format === "glb" : item.format !== "glb"));
  const chosen = showable.find((item) => item.name === artifactName) || showable[0];
  slot.choices.replaceChildren(
    ...showable.map((item) =>
      element(
        "button",
        { type: "button", class: item === chosen ? "chosen" : "", dataset: { artifact: item.name }, onclick: () => showJob(index, jobId, item.name) },
        item.kind === "mesh" ? `Mesh (${item.format})` : `Splats (${item.format})`,
      ),
    ),
  );
  slot.downloads.replaceChildren(
    element("span", { class: "muted" }, "Download:"),
    ...job.artifacts.map((item) =>
      element(
        "button",
        { type: "button", class: "download", onclick: () => download(item.url, `${job.id.slice(0, 8)}-${item.name}`).catch((error) => say(describeError(error), "error")) },
        `${item.name} (${formatBytes(item.bytes)})`,
      ),
    ),
  );
  slot.health.replaceChildren();
  if (!chosen) return;
  const title = `${job.picture.name} · ${job.model} · ${chosen.name}`;
  const [bytes] = await Promise.all([fetchBytes(chosen.url), showHealth(slot, chosen)]);
  await slot.viewer.show(bytes, { kind: chosen.kind, fileName: chosen.name, title });
}

async function showHealth(slot, artifact) {
  try {
    const report = await request("GET", `${artifact.url}/inspect`);
    const rows = [];
    for (const [key, value] of Object.entries(report)) {
      if (value === null || typeof value === "object") continue;
      rows.push(element("dt", {}, key.replaceAll("_", " ")), element("dd", {}, formatValue(value)));
    }
    slot.health.replaceChildren(...rows);
  } catch (error) {
    slot.health.replaceChildren(element("dt", {}, "health"), element("dd", {}, describeError(error)));
  }
}

function formatValue(value) {
  if (typeof value === "number" && !Number.isInteger(value)) return value.toPrecision(4);
  if (typeof value === "boolean") return value ? "yes" : "no";
  return String(value);
}

function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(0)} KiB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

// ------------------------------------------------------------------ start

async function start() {
  takeTokenFromFragment();
  window.addEventListener("hashchange", () => {
    if (location.hash.includes("token=")) {
      takeTokenFromFragment();
      location.reload();
    }
  });
  $("#token-input").value = getToken();
  $("#token-save").addEventListener("click", () => {
    setToken($("#token-input").value.trim());
    location.reload();
  });
  const viewers = $("#viewers");
  state.slots = [makeSlot(viewers, 0), makeSlot(viewers, 1)];
  setCompare(false);
  $("#compare-toggle").addEventListener("change", (event) => setCompare(event.target.checked));
  $("#wireframe-toggle").addEventListener("change", (event) => {
    for (const slot of state.slots) slot.viewer.setWireframe(event.target.checked);
  });
  setUpPicture();
  $("#model-select").addEventListener("change", showModel);
  $("#job-form").addEventListener("submit", submit);
  try {
    await loadModels();
  } catch (error) {
    say(describeError(error), "error");
  }
  await refreshJobs();
  setInterval(refreshJobs, LIST_REFRESH_MS);
  document.body.dataset.ready = "true";
}

start();
