// The reader's trial page. It renders what the embedded trial payload holds (the questions of
// the current stage, the AI output and similar cases once the server includes them, training
// feedback), hosts the image viewer (static/studies/viewer/viewer.js, class XrsViewer) and
// drives the protocol through the reading API:
//   first (unaided) answer -> POST answer -> POST reveal -> overlay + AI shown -> final answer
//   -> POST answer -> "Next case" (after a session's last case: the study page, which is then the
//   break before the next session or says the study is complete).
// The final stage shows the reader's own unaided answer beside each question; confidence and
// probability sliders start unset (no handle; a required probability is refused until moved); a heatmap that highlights nothing is a neutral "No region highlighted"
// note instead of the overlay controls. The panel keeps the AI output and Submit on screen.
// Every submit carries a client key that is kept in sessionStorage per trial and stage until
// the server confirms it, so a retried submit is stored once. The page learns nothing the
// server's payload does not contain.
(function () {
  "use strict";

  const root = document.querySelector("[data-trial-page]");
  if (!root) return;

  const $ = (selector) => root.querySelector(selector);
  const els = {
    viewer: $("[data-viewer]"),
    progress: $("[data-progress]"),
    status: $("[data-status]"),
    ai: $("[data-ai]"),
    aiLabel: $("[data-ai-label]"),
    aiProbability: $("[data-ai-probability]"),
    aiProbabilityLabel: $("[data-ai-probability-label]"),
    aiBar: $("[data-ai-bar]"),
    similar: $("[data-similar]"),
    similarGrid: $("[data-similar-grid]"),
    form: $("[data-answer-form]"),
    heading: $("[data-stage-heading]"),
    formProblems: $("[data-form-problems]"),
    questions: $("[data-questions]"),
    submit: $("[data-submit]"),
    done: $("[data-done]"),
    feedback: $("[data-feedback]"),
    next: $("[data-next]"),
    panel: $(".trial-panel"),
    panelHead: $("[data-panel-head]"),
    actions: $("[data-answer-actions]"),
  };
  const urls = {
    answer: root.dataset.answerUrl,
    reveal: root.dataset.revealUrl,
    next: root.dataset.nextUrl,
    study: root.dataset.studyUrl,
  };
  const csrfToken = root.dataset.csrfToken;

  let payload = JSON.parse(document.getElementById("trial-payload").textContent);
  let viewer = null;
  let viewerReady = false;
  let overlayShown = null;
  let busy = false;
  let leaving = false;

  // Client keys ------------------------------------------------------------------------------

  const memoryKeys = {};

  function newUuid() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    // Plain-http pages (not a secure context) have no randomUUID: build a version 4 UUID.
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function keyName(stage) {
    return `xrs:answer-key:${payload.trial}:${stage}`;
  }

  function clientKey(stage) {
    const name = keyName(stage);
    let key = memoryKeys[name] || null;
    if (!key) {
      try { key = window.sessionStorage.getItem(name); } catch (e) { key = null; }
    }
    if (!key) key = newUuid();
    memoryKeys[name] = key;
    try { window.sessionStorage.setItem(name, key); } catch (e) { /* memory copy is enough */ }
    return key;
  }

  function forgetKey(stage) {
    const name = keyName(stage);
    delete memoryKeys[name];
    try { window.sessionStorage.removeItem(name); } catch (e) { /* nothing stored */ }
  }

  // Small DOM helpers ------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function showStatus(message, kind, action) {
    const children = [el("span", { text: message })];
    if (action && action.href) {
      children.push(" ", el("a", { href: action.href, text: action.label }));
    } else if (action) {
      const button = el("button", { type: "button", className: "secondary", text: action.label });
      button.addEventListener("click", action.run, { once: true });
      children.push(" ", button);
    }
    els.status.className = `trial-status${kind ? " status-" + kind : ""}`;
    els.status.replaceChildren(...children);
  }

  function clearStatus() {
    els.status.className = "trial-status";
    els.status.replaceChildren();
  }

  function setBusy(on, message) {
    busy = on;
    els.submit.disabled = on || !viewerReady;
    els.form.setAttribute("aria-busy", on ? "true" : "false");
    if (on && message) showStatus(message, "busy");
    else if (!on && els.status.classList.contains("status-busy")) clearStatus();
  }

  // Rendering --------------------------------------------------------------------------------

  function renderProgress() {
    els.progress.textContent =
      `Case ${payload.position} of ${payload.trials_in_session}, session ${payload.session} of ${payload.sessions}`;
  }

  function renderAi() {
    const ai = payload.ai;
    els.ai.hidden = !ai;
    if (!ai) return;
    const percent = Math.round(ai.positive_probability * 100);
    els.aiLabel.textContent = ai.label;
    els.aiProbabilityLabel.textContent = `Probability of ${ai.positive_class}:`;
    els.aiProbability.textContent = `${percent}%`;
    els.aiBar.style.width = `${Math.max(0, Math.min(100, percent))}%`;
  }

  function renderSimilar() {
    const cases = payload.similar_cases || [];
    els.similar.hidden = cases.length === 0;
    els.similarGrid.replaceChildren(...cases.map((item, index) =>
      el("figure", { className: "similar-case" },
        el("img", { src: item.url, alt: `Similar case ${index + 1}`, loading: "lazy" }),
        el("figcaption", { text: item.label }))));
  }

  function radioRow(question, values, labels, anchors) {
    const row = el("div", { className: "scale-row", role: "radiogroup", "aria-labelledby": `q-${question.key}-text` });
    row.style.gridTemplateColumns = `repeat(${values.length}, minmax(0, 1fr))`;
    values.forEach((value, index) => {
      const id = `q-${question.key}-${index}`;
      const point = el("label", { className: "scale-point", for: id },
        el("input", { type: "radio", id, name: question.key, value: String(value) }),
        el("span", { text: labels[index] }));
      if (anchors && index === 0 && anchors[0]) point.title = anchors[0];
      if (anchors && index === values.length - 1 && anchors[1]) point.title = anchors[1];
      row.append(point);
    });
    if (!anchors || !(anchors[0] || anchors[1])) return row;
    return el("div", { className: "scale" }, row,
      el("div", { className: "scale-anchors", "aria-hidden": "true" },
        el("span", { className: "anchor anchor-low", text: `1 = ${anchors[0] || ""}` }),
        el("span", { className: "anchor anchor-high", text: `${values.length} = ${anchors[1] || ""}` })));
  }

  function range(low, high) {
    return Array.from({ length: high - low + 1 }, (_, i) => low + i);
  }

  // Keys that move a range input (a key press on an unset slider sets it).
  const SLIDER_KEYS = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown"];

  // A 0-100 slider (confidence, probability) that starts unset: no handle is drawn (nothing anchors the reader at 50) and
  // it reads "not set" until the reader clicks, drags or keys it; an unset slider answers null.
  function slider(question) {
    const id = `q-${question.key}-input`;
    const input = el("input", {
      type: "range", id, name: question.key, min: "0", max: "100", step: "1", value: "50",
      className: "unset", "aria-labelledby": `q-${question.key}-text`, "aria-valuetext": "not set",
      "data-untouched": "1",
    });
    const output = el("output", { for: id, className: "slider-value unset", text: "not set" });
    const show = () => {
      delete input.dataset.untouched;
      input.classList.remove("unset");
      output.classList.remove("unset");
      output.textContent = input.value;
      input.setAttribute("aria-valuetext", input.value);
    };
    input.addEventListener("pointerdown", show);
    input.addEventListener("input", show);
    input.addEventListener("change", show);
    input.addEventListener("keydown", (event) => { if (SLIDER_KEYS.includes(event.key)) show(); });
    // a key press moves the value after keydown: show the moved value
    input.addEventListener("keyup", () => { if (!input.dataset.untouched) show(); });
    return el("div", { className: "slider" },
      el("span", { className: "anchor", text: "0" }), input, el("span", { className: "anchor", text: "100" }), output);
  }

  // The words an advice question shows for its fixed answers (the values sent are the options).
  const ADVICE_WORDS = { accept: "Accept", modify: "Modify", reject: "Reject" };

  function optionLabel(question, option) {
    return question.kind === "advice" ? ADVICE_WORDS[option] || option : option;
  }

  // One choice among the question's options (diagnosis; advice; ordinal: in their order).
  function choices(question) {
    const group = el("div", { className: "choices", role: "radiogroup", "aria-labelledby": `q-${question.key}-text` });
    question.options.forEach((option, index) => {
      const id = `q-${question.key}-${index}`;
      group.append(el("label", { className: "choice", for: id },
        el("input", { type: "radio", id, name: question.key, value: option }),
        el("span", { text: optionLabel(question, option) })));
    });
    return group;
  }

  function widget(question) {
    switch (question.kind) {
      case "diagnosis":
      case "advice":
      case "ordinal":
        return choices(question);
      case "probability":
        return slider(question);
      case "confidence": {
        if (question.scale === "scale5" || question.scale === "scale7") {
          const values = range(1, question.scale === "scale5" ? 5 : 7);
          return radioRow(question, values, values.map(String), null);
        }
        return slider(question);
      }
      case "likert": {
        const values = range(1, question.points || 5);
        return radioRow(question, values, values.map(String), question.anchors || ["", ""]);
      }
      default:
        return el("textarea", {
          name: question.key, rows: "3", maxlength: "5000", "aria-labelledby": `q-${question.key}-text`,
        });
    }
  }

  function shownAnswer(question, value) {
    if (value === null || value === undefined || value === "") return "not answered";
    if (question.kind === "confidence" && ["scale5", "scale7"].includes(question.scale)) {
      return `${value} of ${question.scale === "scale5" ? 5 : 7}`;
    }
    if (question.kind === "confidence" || question.kind === "probability") return `${value} of 100`;
    if (question.kind === "advice") return optionLabel(question, value);
    if (question.kind === "likert") return `${value} of ${question.points || 5}`;
    return String(value);
  }

  // Two-stage final stage: the reader's own unaided answer to this question, read-only.
  function firstAnswer(question) {
    const first = payload.first_answer;
    if (payload.stage !== "final" || !first || !(question.key in first)) return null;
    return el("p", { className: "first-answer", "data-first-answer": question.key },
      el("span", { className: "muted", text: "Your answer before the AI output: " }),
      el("strong", { text: shownAnswer(question, first[question.key]) }));
  }

  function renderQuestion(question) {
    const legend = el("legend", { id: `q-${question.key}-text` }, question.text);
    if (!question.required) legend.append(el("span", { className: "muted", text: " (optional)" }));
    return el("fieldset", { className: `question question-${question.kind}`, "data-question": question.key },
      legend,
      question.help_text ? el("p", { className: "question-help muted", text: question.help_text }) : null,
      firstAnswer(question),
      widget(question),
      el("p", { className: "field-error", "data-error-for": question.key, id: `q-${question.key}-error`, hidden: true }));
  }

  function stageHeading() {
    if (payload.stage === "first") return "Your answer before the AI output";
    if (payload.two_stage) return "Your final answer";
    return "Your answer";
  }

  function renderStage() {
    renderProgress();
    renderAi();
    renderSimilar();
    const answering = payload.stage === "first" || payload.stage === "final";
    els.form.hidden = !answering;
    els.done.hidden = payload.stage !== null;
    if (answering) {
      els.heading.textContent = stageHeading();
      els.formProblems.hidden = true;
      els.questions.replaceChildren(...payload.questions.map(renderQuestion));
      els.submit.textContent = payload.stage === "first" ? "Save and show the AI output" : "Submit";
    }
    if (payload.stage === null) renderDone();
  }

  function sessionComplete() {
    return payload.stage === null && payload.position === payload.trials_in_session;
  }

  function renderDone() {
    els.form.hidden = true;
    els.done.hidden = false;
    const feedback = payload.feedback;
    els.feedback.hidden = !feedback;
    if (feedback) {
      els.feedback.replaceChildren(
        el("p", { text: "Training case feedback:" }),
        el("p", {}, "The reference diagnosis is ", el("strong", { text: feedback.truth || "not known for this case" }), "."));
    }
    els.next.textContent = sessionComplete() ? "Finish the session" : "Next case";
    els.next.focus();
  }

  // Answers ----------------------------------------------------------------------------------

  const TEXT_CHOICE_KINDS = ["diagnosis", "advice", "ordinal"];

  function isSlider(question) {
    return question.kind === "probability" ||
      (question.kind === "confidence" && !["scale5", "scale7"].includes(question.scale));
  }

  // A required probability must be given by moving its slider (it has no default position):
  // refused here before anything is sent (the server refuses a missing answer too).
  function untouchedProbabilities(answers) {
    const fields = {};
    for (const question of payload.questions) {
      if (question.kind === "probability" && question.required && answers[question.key] === null) {
        fields[question.key] = "move the slider to give your answer";
      }
    }
    return fields;
  }

  function collect() {
    const answers = {};
    for (const question of payload.questions) {
      const box = els.questions.querySelector(`[data-question="${CSS.escape(question.key)}"]`);
      let value = null;
      if (question.kind === "free_text") {
        value = box.querySelector("textarea").value;
      } else if (isSlider(question)) {
        const input = box.querySelector("input[type=range]");
        value = input.dataset.untouched ? null : Number(input.value);
      } else {
        const checked = box.querySelector("input[type=radio]:checked");
        if (checked) value = TEXT_CHOICE_KINDS.includes(question.kind) ? checked.value : Number(checked.value);
      }
      answers[question.key] = value;
    }
    return answers;
  }

  function clearErrors() {
    els.formProblems.hidden = true;
    els.formProblems.replaceChildren();
    for (const box of els.questions.querySelectorAll("[data-question]")) {
      box.classList.remove("invalid");
      const error = box.querySelector("[data-error-for]");
      error.hidden = true;
      error.textContent = "";
      for (const input of box.querySelectorAll("input, textarea")) {
        input.removeAttribute("aria-invalid");
        input.removeAttribute("aria-describedby");
      }
    }
  }

  // Answering a question marked invalid clears its mark (the server checks again on submit).
  function clearFieldError(event) {
    const box = event.target.closest && event.target.closest("[data-question]");
    if (!box || !box.classList.contains("invalid")) return;
    if (["keyup", "pointerup"].includes(event.type) && event.target.type !== "range") return;
    if (event.target.dataset && event.target.dataset.untouched) return; // an unset slider is still unset
    box.classList.remove("invalid");
    const error = box.querySelector("[data-error-for]");
    error.hidden = true;
    error.textContent = "";
    for (const input of box.querySelectorAll("input, textarea")) {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    }
  }

  function showFieldErrors(fields, problems) {
    const general = [];
    let first = null;
    for (const [key, message] of Object.entries(fields || {})) {
      const box = els.questions.querySelector(`[data-question="${CSS.escape(key)}"]`);
      if (!box) { general.push(`${key}: ${message}`); continue; }
      box.classList.add("invalid");
      const error = box.querySelector("[data-error-for]");
      error.textContent = message;
      error.hidden = false;
      for (const input of box.querySelectorAll("input, textarea")) {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", error.id);
      }
      first = first || box;
    }
    if (!Object.keys(fields || {}).length) general.push(...(problems || []));
    if (general.length) {
      els.formProblems.replaceChildren(el("ul", {}, ...general.map((p) => el("li", { text: p }))));
      els.formProblems.hidden = false;
    }
    const focusable = first && first.querySelector("input, textarea");
    if (focusable) focusable.focus();
  }

  function summary() {
    try {
      return (viewer && typeof viewer.summary === "function" && viewer.summary()) || {};
    } catch (e) {
      return {};
    }
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { status: response.status, ok: response.ok, data };
  }

  function explainFailure(result, retry) {
    const data = result.data || {};
    if (result.status === 400 && data.fields && Object.keys(data.fields).length) {
      showFieldErrors(data.fields, data.problems);
      showStatus("Please check the answers marked below; nothing was saved yet.", "bad");
    } else if (result.status === 400 && data.detail) {
      showStatus(`${data.detail}.`, "bad", { label: "Reload the case", href: window.location.href });
    } else if (result.status === 400) {
      const lines = Object.entries(data).map(([key, value]) => `${key}: ${[].concat(value).join(" ")}`);
      showFieldErrors({}, lines);
      showStatus("The answers could not be sent as they are.", "bad");
    } else if (result.status === 401 || result.status === 403) {
      showStatus("You are signed out or the page is out of date. Reload the page (answers of this step are not saved yet).",
        "bad", { label: "Reload", href: window.location.href });
    } else if (result.status === 404) {
      showStatus("This case is not available.", "bad", { label: "Back to the study", href: urls.study });
    } else {
      showStatus(`The server could not save this (error ${result.status}). Your answers are kept here.`, "bad",
        { label: "Try again", run: retry });
    }
  }

  async function submitAnswers(event) {
    if (event) event.preventDefault();
    const stage = payload.stage;
    if (busy || !viewerReady || (stage !== "first" && stage !== "final")) return;
    clearErrors();
    const answers = collect();
    const unset = untouchedProbabilities(answers);
    if (Object.keys(unset).length) {
      showFieldErrors(unset, []);
      showStatus("Please check the answers marked below; nothing was saved yet.", "bad");
      return;
    }
    setBusy(true, "Saving your answers…");
    const body = { stage, answers, client_key: clientKey(stage), interactions: summary() };
    let result;
    try {
      result = await post(urls.answer, body);
    } catch (e) {
      setBusy(false);
      showStatus("Could not reach the server. Your answers are kept here; try again when you are back online.", "bad",
        { label: "Try again", run: () => submitAnswers() });
      return;
    }
    setBusy(false);
    if (result.ok && result.data && result.data.payload) {
      forgetKey(stage);
      payload = result.data.payload;
      clearStatus();
      await advance();
      return;
    }
    explainFailure(result, () => submitAnswers());
  }

  async function reveal() {
    if (busy) return;
    els.form.hidden = true;
    setBusy(true, "Your first answer is saved. Loading the AI output…");
    let result;
    try {
      result = await post(urls.reveal, {});
    } catch (e) {
      setBusy(false);
      showStatus("Could not reach the server to show the AI output.", "bad", { label: "Try again", run: reveal });
      return;
    }
    setBusy(false);
    if (result.ok && result.data) {
      payload = result.data;
      clearStatus();
      await advance();
      return;
    }
    explainFailure(result, reveal);
  }

  function overlayUrl() {
    return (payload.overlay && payload.overlay.url) || null;
  }

  // An explanation that highlights no region has no overlay: a neutral note stands where the
  // overlay controls would be (the same for every explainer).
  function renderEmptyOverlay() {
    const empty = Boolean(payload.overlay && payload.overlay.empty);
    let note = document.querySelector("[data-overlay-empty]");
    if (!empty) {
      if (note) note.hidden = true;
      return;
    }
    if (!note) {
      note = el("span", { className: "overlay-empty-note", "data-overlay-empty": true, role: "note",
        text: "No region highlighted" });
      const controls = els.viewer.querySelector(".xrs-overlay-controls");
      if (controls) controls.after(note);
      else els.ai.append(note);
    }
    note.hidden = false;
  }

  async function showOverlay() {
    renderEmptyOverlay();
    const url = overlayUrl();
    if (!url || url === overlayShown || !viewer) return;
    try {
      await viewer.setOverlay(url);
      overlayShown = url;
    } catch (e) {
      showStatus("The explanation image could not be loaded.", "bad", { label: "Try again", run: showOverlay });
    }
  }

  async function advance() {
    if (payload.stage === "reveal") {
      renderProgress();
      await reveal();
      return;
    }
    // The explanation and the AI output appear together; the questions follow.
    await showOverlay();
    renderStage();
  }

  function goNext() {
    if (leaving) return;
    leaving = true;
    els.next.disabled = true;
    if (viewer && typeof viewer.destroy === "function") viewer.destroy();
    // after the last trial of a session, the study page: a break before the next session, the
    // date it opens, or the end of the study (trials are read in order: the last one ends it)
    window.location.assign(sessionComplete() ? urls.study : urls.next);
  }

  // The panel's head (AI output) and Submit bar are sticky: a field that is focused or scrolled
  // to (e.g. the first invalid answer) must not end up hidden behind them.
  function keepFieldsClearOfStickyBars() {
    if (!els.panel || !els.panelHead) return;
    const update = () => {
      els.panel.style.scrollPaddingTop = `${els.panelHead.offsetHeight + 8}px`;
      els.panel.style.scrollPaddingBottom = `${(els.actions ? els.actions.offsetHeight : 0) + 8}px`;
    };
    update();
    if (typeof window.ResizeObserver === "function") {
      const observer = new ResizeObserver(update);
      observer.observe(els.panelHead);
      if (els.actions) observer.observe(els.actions);
    }
  }

  // Start ------------------------------------------------------------------------------------

  keepFieldsClearOfStickyBars();
  els.form.addEventListener("submit", submitAnswers);
  els.questions.addEventListener("input", clearFieldError);
  els.questions.addEventListener("change", clearFieldError);
  els.questions.addEventListener("keyup", clearFieldError);
  els.questions.addEventListener("pointerup", clearFieldError);
  els.next.addEventListener("click", goNext);
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || payload.stage !== null || els.done.hidden) return;
    if (event.target === els.next || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (event.target instanceof HTMLTextAreaElement) return;
    event.preventDefault();
    goNext();
  });

  renderStage();
  if (payload.stage === "reveal") els.form.hidden = true;
  els.submit.disabled = true;

  async function startViewer() {
    if (typeof window.XrsViewer !== "function") {
      throw new Error("the image viewer is not loaded");
    }
    const image = payload.image;
    viewer = new window.XrsViewer(els.viewer, {
      pixelsUrl: image.pixels_url,
      displayUrl: image.display_url,
      rows: image.rows,
      columns: image.columns,
      isColor: image.is_color,
      monochrome1: image.monochrome1,
      valueMin: image.value_min,
      valueMax: image.value_max,
      presets: image.presets,
      overlayUrl: overlayUrl(),
      overlayOpacity: undefined, // the viewer's default
    });
    overlayShown = overlayUrl();
    await viewer.ready;
    renderEmptyOverlay();
  }

  startViewer().then(
    () => {
      viewerReady = true;
      els.submit.disabled = busy;
      document.body.dataset.viewerReady = "1"; // a signal for tests and timing: first frame drawn
      if (payload.stage === "reveal") reveal();
    },
    () => {
      showStatus("The image could not be loaded, so this case cannot be answered yet.", "bad",
        { label: "Reload the page", href: window.location.href });
    },
  );

  // A page restored from the back-forward cache has a destroyed viewer and a stale stage.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) window.location.reload();
  });
})();
