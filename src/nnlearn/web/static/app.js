// nnlearn serve: the page's own code. Three views (draw, model, train) on one page,
// switched by the address's #fragment; everything it asks for comes from this server.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { model: null, sprite: null, asked: 0, figuresOf: null, run: null, token: null, events: null, costs: [], redraw: 0 };

// ------------------------------------------------------------------- the server

async function answerOf(response) {
  // Every answer is JSON; an error's is {"error": "..."}.
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = { error: `${response.status} ${response.statusText}` };
  }
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

async function loadModel() {
  const model = await answerOf(await fetch("/api/model", { cache: "no-store" }));
  state.model = model;
  state.sprite = null;
  $("#model-name").textContent = `model ${model.id}: ${model.layer_sizes.join("-")} ${model.activation}, ${model.source}`;
  if (model.tiles) {
    const sprite = new Image();
    sprite.src = model.tiles.url;
    await sprite.decode().catch(() => null);
    if (state.model === model) state.sprite = sprite;
  }
  buildBars(model.classes);
  buildHiddenGrid(model);
  $("#note").textContent =
    model.image_side === null
      ? `This model's ${model.layer_sizes[0]} inputs are not a square image: a drawing cannot be read as its input.`
      : "";
  if (!$("#view-model").hidden) showModel();
  return model;
}

// ------------------------------------------------------------------- draw view

const canvas = $("#draw-canvas");
const pen = canvas.getContext("2d");
let stroke = null;
let inked = false;

function blank() {
  pen.fillStyle = "black";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  inked = false;
}

function point(event) {
  const box = canvas.getBoundingClientRect();
  return [((event.clientX - box.left) * canvas.width) / box.width, ((event.clientY - box.top) * canvas.height) / box.height];
}

function startStroke(event) {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  stroke = event.pointerId;
  // A thick round pen: once the digit is scaled into the network's frame its strokes are
  // about as wide as the training digits' (2-3 of 28 pixels).
  pen.strokeStyle = "white";
  pen.lineWidth = canvas.width / 12;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  const [x, y] = point(event);
  pen.beginPath();
  pen.moveTo(x, y);
  pen.lineTo(x, y);
  pen.stroke();
  inked = true;
}

function moveStroke(event) {
  if (stroke !== event.pointerId) return;
  event.preventDefault();
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const each of events.length ? events : [event]) {
    const [x, y] = point(each);
    pen.lineTo(x, y);
  }
  pen.stroke();
}

function endStroke(event) {
  if (stroke !== event.pointerId) return;
  stroke = null;
  askAboutCanvas();
}

function askAboutCanvas() {
  // toDataURL encodes at once; toBlob waited for an idle moment (a second in Chromium).
  const url = canvas.toDataURL("image/png");
  const text = atob(url.slice(url.indexOf(",") + 1));
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  ask(new Blob([bytes], { type: "image/png" }), "image/png");
}

async function ask(body, type) {
  const asked = ++state.asked;
  try {
    const answer = await answerOf(await fetch("/api/predict", { method: "POST", headers: { "Content-Type": type }, body }));
    if (asked !== state.asked) return; // a later stroke's answer is on its way
    if (state.model === null || answer.model !== state.model.id) await loadModel();
    show(answer);
  } catch (error) {
    if (asked === state.asked) $("#note").textContent = error.message;
  }
}

function clearDrawing() {
  state.asked++;
  blank();
  $("#prediction").textContent = "";
  $("#note").textContent = state.model && state.model.image_side === null ? $("#note").textContent : "";
  for (const bar of document.querySelectorAll("#bars .bar")) setBar(bar, 0, false);
  const view = $("#input-view").getContext("2d");
  view.clearRect(0, 0, view.canvas.width, view.canvas.height);
  for (const tile of document.querySelectorAll("#hidden-grid canvas")) tile.style.opacity = "";
}

function buildBars(classes) {
  const bars = $("#bars");
  bars.replaceChildren();
  for (const label of classes) {
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.dataset.class = String(label);
    const name = document.createElement("span");
    name.className = "label";
    name.textContent = String(label);
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    bar.append(name, track, value);
    bars.append(bar);
    setBar(bar, 0, false);
  }
}

function setBar(bar, p, best) {
  bar.dataset.probability = String(p);
  bar.classList.toggle("best", best);
  bar.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
  bar.querySelector(".value").textContent = p > 0 ? `${(100 * p).toFixed(1)}%` : "";
}

function buildHiddenGrid(model) {
  const grid = $("#hidden-grid");
  grid.replaceChildren();
  const units = model.layer_sizes.length > 2 ? model.layer_sizes[1] : 0;
  const columns = model.tiles ? model.tiles.columns : Math.max(1, Math.ceil(Math.sqrt(units)));
  grid.style.gridTemplateColumns = `repeat(${columns}, 44px)`;
  const side = model.tiles ? model.tiles.side : 1;
  for (let k = 0; k < units; k++) {
    const tile = document.createElement("canvas");
    tile.width = side;
    tile.height = side;
    const ink = tile.getContext("2d");
    if (model.tiles && state.sprite) {
      const { columns: c, gap } = model.tiles;
      const step = side + gap;
      ink.drawImage(state.sprite, gap + (k % c) * step, gap + Math.floor(k / c) * step, side, side, 0, 0, side, side);
    } else {
      ink.fillStyle = "white";
      ink.fillRect(0, 0, side, side);
    }
    tile.title = `hidden unit ${k + 1}`;
    grid.append(tile);
  }
}

function show(answer) {
  $("#prediction").textContent = String(answer.prediction);
  const best = answer.probabilities.indexOf(Math.max(...answer.probabilities));
  const bars = document.querySelectorAll("#bars .bar");
  answer.probabilities.forEach((p, i) => bars[i] && setBar(bars[i], p, i === best));
  $("#note").textContent = (answer.notes || []).join(" ");
  drawInput(answer.input, answer.image_side);
  document.querySelectorAll("#hidden-grid canvas").forEach((tile, k) => {
    const b = answer.hidden_brightness[k] ?? 0;
    tile.style.opacity = String(0.12 + 0.88 * b);
    tile.title = `hidden unit ${k + 1}: activation ${Number(answer.hidden[k]).toFixed(3)}`;
  });
}

function drawInput(pixels, side) {
  const view = $("#input-view").getContext("2d");
  view.clearRect(0, 0, view.canvas.width, view.canvas.height);
  if (!pixels || !side) return;
  const small = document.createElement("canvas");
  small.width = side;
  small.height = side;
  const image = small.getContext("2d").createImageData(side, side);
  pixels.forEach((v, i) => {
    const g = Math.round(255 * v);
    image.data.set([g, g, g, 255], 4 * i);
  });
  small.getContext("2d").putImageData(image, 0, 0);
  view.imageSmoothingEnabled = false;
  view.drawImage(small, 0, 0, view.canvas.width, view.canvas.height);
}

function upload(event) {
  const file = event.target.files[0];
  if (!file) return;
  // What is asked about is the file's own bytes, as they are (a phone's JPEG of several MB:
  // base64 in JSON would be a third larger); the canvas shows it, fitted.
  ask(file, file.type.startsWith("image/") ? file.type : "image/*");
  const picture = new Image();
  const url = URL.createObjectURL(file);
  picture.onload = () => {
    URL.revokeObjectURL(url);
    blank();
    const scale = Math.min(canvas.width / picture.width, canvas.height / picture.height);
    const w = picture.width * scale;
    const h = picture.height * scale;
    pen.drawImage(picture, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
  };
  picture.onerror = () => URL.revokeObjectURL(url);
  picture.src = url;
  event.target.value = "";
}

// ------------------------------------------------------------------- model view

function showModel() {
  const model = state.model;
  if (!model) return;
  const rows = [
    ["id", model.id],
    ["source", model.source],
    ["layer sizes", model.layer_sizes.join(" - ")],
    ["activation / output", `${model.activation} / ${model.output}`],
    ["lambda", model.lambda],
    ["classes", model.classes.join(" ")],
    ["input", model.image_side ? `${model.image_side}x${model.image_side} image, framed "${model.framing}"` : "not an image"],
  ];
  for (const [key, value] of Object.entries(model.history)) {
    rows.push([key.replaceAll("_", " "), typeof value === "number" && !Number.isInteger(value) ? value.toFixed(4) : value]);
  }
  const table = $("#model-settings");
  table.replaceChildren();
  for (const [key, value] of rows) {
    const row = table.insertRow();
    const th = document.createElement("th");
    th.textContent = key;
    row.append(th);
    row.insertCell().textContent = String(value);
  }
  if (state.figuresOf !== model.id) {
    state.figuresOf = model.id;
    for (const [name, why] of Object.entries(model.figures)) loadFigure(name, model.id, why);
  }
}

async function loadFigure(name, id, why) {
  // `why`: the server's reason when it cannot draw this figure of this model (no request then).
  const img = $(`#figure-${name}`);
  const caption = img.parentElement.querySelector("figcaption");
  caption.dataset.title = caption.dataset.title || caption.textContent;
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.removeAttribute("src");
  img.hidden = true;
  if (why) {
    caption.textContent = `${caption.dataset.title}: not available, ${why}`;
    return;
  }
  caption.textContent = `${caption.dataset.title} (drawing...)`;
  const response = await fetch(`/api/model/figures/${name}.svg?model=${encodeURIComponent(id)}`);
  if (state.figuresOf !== id) return;
  if (response.ok) {
    img.src = URL.createObjectURL(await response.blob());
    img.hidden = false;
    caption.textContent = caption.dataset.title;
  } else {
    const body = await response.json().catch(() => ({ error: response.statusText }));
    caption.textContent = `${caption.dataset.title}: ${body.error}`;
  }
}

// ------------------------------------------------------------------- train view

async function loadFields() {
  // The form's choices, defaults and bounds come from the server, which reads them from
  // the library: a kind registered there shows here with no edit to this page.
  const { fields } = await answerOf(await fetch("/api/train/fields", { cache: "no-store" }));
  for (const field of fields) {
    const input = $(`#${field.name.replaceAll("_", "-")}`);
    if (!input) continue;
    if (field.choices) {
      const chosen = field.choices.includes(input.value) ? input.value : field.default;
      input.replaceChildren(...field.choices.map((name) => new Option(name, name)));
      input.value = chosen;
      continue;
    }
    if (field.name === "hidden") {
      const bounds = `${field.min} to ${field.max} units, ${field.max_layers} layers at most`;
      input.title = `Units per hidden layer, e.g. 25 or 50, 25: ${bounds}`;
    } else {
      if (field.min !== undefined) input.min = String(field.min);
      if (field.max !== undefined) input.max = String(field.max);
    }
    // A value typed before the fields came stays.
    if (input.value === "") input.value = Array.isArray(field.default) ? field.default.join(", ") : String(field.default);
  }
}

function settings() {
  // The form's settings, or what is wrong with them: an empty number field is not 0.
  const hidden = $("#hidden")
    .value.split(/[\s,]+/)
    .filter((s) => s !== "")
    .map(Number);
  for (const [id, label] of [["lambda", "Lambda"], ["max-iter", "Iterations"]]) {
    if ($(`#${id}`).value.trim() === "") return `${label} is empty: give a number`;
  }
  return {
    dataset: $("#dataset").value,
    hidden,
    lambda: Number($("#lambda").value),
    activation: $("#activation").value,
    output: $("#output").value,
    optimizer: $("#optimizer").value,
    max_iter: Number($("#max-iter").value),
  };
}

function status(text) {
  $("#train-status").textContent = text;
}

function running(yes) {
  $("#start").disabled = yes;
  // Only the page that started a run may cancel it: its token is in this tab's sessionStorage.
  $("#cancel").disabled = !yes || tokenOf(state.run) === null;
}

function tokenOf(run) {
  try {
    const kept = JSON.parse(sessionStorage.getItem("nnlearn-run") || "null");
    return kept && kept.run === run ? kept.token : null;
  } catch (_) {
    return null;
  }
}

async function followRunUnderWay() {
  // After a reload: the run under way, if any, is followed as if this page had started it.
  const going = await answerOf(await fetch("/api/train", { cache: "no-store" }));
  if (!going.run || state.run) return;
  state.run = going.run;
  state.costs = [];
  drawCurve(going.max_iter);
  status("following the run under way...");
  running(true);
  follow(going.events, going.max_iter);
}

async function startTraining(event) {
  event.preventDefault();
  try {
    await state.fields; // the form's defaults
  } catch (error) {
    status(`error: the training form's fields could not be read: ${error.message}`);
    return;
  }
  const asked = settings();
  if (typeof asked === "string") {
    status(`error: ${asked}`);
    return;
  }
  state.costs = [];
  drawCurve(asked.max_iter);
  $("#train-hidden").removeAttribute("src");
  status("starting...");
  try {
    const run = await answerOf(
      await fetch("/api/train", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(asked) })
    );
    state.run = run.run;
    try {
      sessionStorage.setItem("nnlearn-run", JSON.stringify({ run: run.run, token: run.token }));
    } catch (_) {
      // no storage (a private window's quota): this page can still cancel until it is reloaded
      state.token = run.token;
    }
    running(true);
    follow(run.events, asked.max_iter);
  } catch (error) {
    status(`error: ${error.message}`);
  }
}

function follow(address, maxIter) {
  if (state.events) state.events.close();
  const events = new EventSource(address);
  state.events = events;
  const data = (event) => JSON.parse(event.data);
  const end = (text) => {
    events.close();
    state.events = null;
    cancelAnimationFrame(state.redraw);
    state.redraw = 0;
    drawCurve(maxIter);
    running(false);
    status(text);
  };
  events.addEventListener("start", (event) => {
    const d = data(event);
    status(`training ${d.layer_sizes.join("-")} on ${d.dataset} (${d.train_examples} examples)...`);
  });
  events.addEventListener("progress", (event) => {
    const d = data(event);
    if (d.cost === null) return; // not finite: the run is diverging, and will say so
    state.costs.push([d.iteration, d.cost]);
    // Every iteration comes as an event, many at once on a fast run: one redraw a frame.
    if (state.redraw) return;
    state.redraw = requestAnimationFrame(() => {
      state.redraw = 0;
      drawCurve(maxIter);
      const [iteration, cost] = state.costs[state.costs.length - 1];
      if (state.events === events) status(`iteration ${iteration}: cost ${cost.toFixed(4)}`);
    });
  });
  events.addEventListener("hidden", (event) => {
    $("#train-hidden").src = data(event).png;
  });
  events.addEventListener("done", async (event) => {
    const d = data(event);
    const percent = (p) => `${(100 * p).toFixed(1)}%`;
    events.close();
    // The server serves the new model now: the page reads it before it says "done".
    await loadModel().catch((error) => ($("#note").textContent = error.message));
    end(`done: ${d.iterations} iterations, train ${percent(d.train_accuracy)}, test ${percent(d.test_accuracy)}`);
    if (inked) askAboutCanvas();
  });
  events.addEventListener("cancelled", () => end("cancelled"));
  events.addEventListener("error", (event) => {
    if (event.data) end(`error: ${data(event).error}`); // the run's own error event
  });
}

async function cancelTraining() {
  if (!state.run) return;
  const token = tokenOf(state.run) || state.token || "";
  const response = await fetch(`/api/train/${state.run}`, { method: "DELETE", headers: { "X-Run-Token": token } });
  if (!response.ok && response.status !== 409) status(`error: ${(await answerOf(response).catch((e) => e)).message}`);
}

function drawCurve(maxIter) {
  // Iterations 1..maxIter across; the cost upwards on a log scale from its lowest to its
  // highest so far (J falls fast, then slowly: a linear axis flattens the late progress),
  // linear from 0 should a cost not be positive.
  const [left, top, width, height] = [50, 10, 540, 250];
  const costs = state.costs.map(([, c]) => c);
  const log = costs.length > 0 && Math.min(...costs) > 0;
  const scale = log ? Math.log : (c) => c;
  const highest = costs.length ? Math.max(...costs) : 1;
  const lowest = log ? Math.min(...costs) : Math.min(0, ...costs);
  const span = scale(highest) - scale(lowest) || 1;
  const across = Math.max(maxIter, ...state.costs.map(([i]) => i), 2);
  const points = state.costs.map(([i, c]) => {
    const x = left + ((i - 1) / (across - 1)) * width;
    const y = top + height - ((scale(c) - scale(lowest)) / span) * height;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  $("#cost-line").setAttribute("points", points.join(" "));
  $("#cost-top").textContent = costs.length ? highest.toPrecision(3) : "";
  $("#cost-bottom").textContent = costs.length ? lowest.toPrecision(3) : "";
  $("#iter-right").textContent = String(across);
}

// ------------------------------------------------------------------- the views

function route() {
  const name = ["draw", "model", "train"].includes(location.hash.slice(1)) ? location.hash.slice(1) : "draw";
  for (const view of ["draw", "model", "train"]) {
    $(`#view-${view}`).hidden = view !== name;
    $(`#nav-${view}`).classList.toggle("current", view === name);
  }
  if (name === "model") showModel();
}

function keys(event) {
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement && document.activeElement.tagName);
  if (typing || $("#view-draw").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
  if (["c", "C", "Escape", "Delete"].includes(event.key)) {
    event.preventDefault();
    clearDrawing();
  }
}

blank();
canvas.addEventListener("pointerdown", startStroke);
canvas.addEventListener("pointermove", moveStroke);
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);
$("#clear").addEventListener("click", clearDrawing);
$("#upload").addEventListener("change", upload);
document.addEventListener("keydown", keys);
$("#train-form").addEventListener("submit", startTraining);
$("#cancel").addEventListener("click", cancelTraining);
window.addEventListener("hashchange", route);
route();
state.fields = loadFields(); // a promise: a run starts once the form has its defaults
state.fields.catch((error) => status(`The training form's fields could not be read: ${error.message}`));
loadModel().catch((error) => {
  $("#note").textContent = `The model could not be read: ${error.message}`;
});
followRunUnderWay().catch((error) => status(`error: the run under way could not be read: ${error.message}`));
