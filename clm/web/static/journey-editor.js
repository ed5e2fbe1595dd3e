// The journey canvas's step editor: pick a step on the canvas (or in the list), change its
// settings in a form built from its kind's JSON Schema (the Pydantic models in
// clm/journeys/step_models.py), add, connect and remove steps. Each change is checked as you
// type, against the schema here and by the server's loader (POST …/draft), which answers the
// YAML and a fresh canvas; the YAML beside it can be edited too. Saving posts the YAML.
(function () {
  "use strict";
  const root = document.getElementById("step-editor");
  if (!root) return;
  const data = JSON.parse(document.getElementById("editor-data").textContent);
  const t = JSON.parse(document.getElementById("editor-labels").textContent);
  const schemas = data.schemas;
  const kinds = Object.keys(schemas);
  const csrf = document.querySelector('input[name="csrf_token"]').value;
  const yamlBox = document.getElementById("definition");
  const errorsBox = document.getElementById("draft-errors");
  const canvasBox = document.getElementById("canvas-box");
  const form = root.querySelector(".step-form");
  const picker = document.getElementById("step-picker");
  let definition = data.definition;
  let selected = null;
  let timer = null;
  let asked = 0;

  const steps = () => definition.steps;
  const kindOf = (step) => kinds.find((k) => k in step);
  const idOf = (step, i) => step.id || "step-" + (i + 1);

  function ids() {
    return steps().map(idOf);
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // the schema of a field, with `anyOf [x, null]` reduced to x (optional fields)
  function plain(prop) {
    if (prop.anyOf) {
      const real = prop.anyOf.filter((p) => p.type !== "null");
      if (real.length === 1) return Object.assign({}, real[0], { title: prop.title, default: prop.default });
      return Object.assign({}, prop, { complex: true });
    }
    return prop;
  }

  // a field that may be a plain text besides other shapes (a send step's template: a name, or one per channel)
  function takesText(prop) {
    return prop.type === "string" || (prop.anyOf || []).some((p) => p.type === "string");
  }

  function isTarget(key) {
    return ["then", "else", "timeout"].includes(key);
  }

  // check one value against its field's schema: the message to show, or ""
  function check(prop, value, required) {
    const p = plain(prop);
    if (value === undefined || value === "" || value === null) return required ? t.required : "";
    if (p.complex) return "";
    if (p.type === "number" || p.type === "integer") {
      if (typeof value !== "number" || Number.isNaN(value)) return t.number;
      if (p.minimum !== undefined && value < p.minimum) return t.min.replace("{n}", p.minimum);
      if (p.exclusiveMinimum !== undefined && value <= p.exclusiveMinimum) return t.above.replace("{n}", p.exclusiveMinimum);
      if (p.maximum !== undefined && value > p.maximum) return t.max.replace("{n}", p.maximum);
    }
    if (p.type === "string") {
      if (p.minLength && value.length < p.minLength) return t.required;
      if (p.maxLength && value.length > p.maxLength) return t.long.replace("{n}", p.maxLength);
      if (p.pattern && !new RegExp(p.pattern).test(value)) return t.pattern;
      if (p.enum && !p.enum.includes(value)) return t.choice;
    }
    return "";
  }

  function targetSelect(name, value, onchange, allowEnd) {
    const select = el("select", { "data-field": name });
    select.append(el("option", { value: "" }, t.following));
    for (const id of ids()) select.append(el("option", { value: id, selected: id === value }, id));
    if (allowEnd) select.append(el("option", { value: "__end__", selected: value === null }, t.end));
    select.addEventListener("change", () => onchange(select.value));
    return select;
  }

  function field(label, control, error) {
    const wrap = el("label", { class: "field" });
    wrap.append(el("span", {}, label), control);
    const msg = el("span", { class: "field-error", role: "alert" }, error || "");
    wrap.append(msg);
    return [wrap, msg];
  }

  function drawForm() {
    form.replaceChildren();
    const index = ids().indexOf(selected);
    if (index < 0) {
      form.append(el("p", { class: "hint" }, t.pick));
      return;
    }
    const step = steps()[index];
    const kind = kindOf(step);
    const schema = schemas[kind];
    const args = step[kind] && typeof step[kind] === "object" ? step[kind] : {};
    step[kind] = args;
    form.append(el("h3", {}, (t.kinds[kind] || kind) + " · " + selected));
    if (schema.description) form.append(el("p", { class: "hint" }, schema.description));

    const idInput = el("input", { type: "text", value: idOf(step, index), "data-field": "id" });
    const [idRow, idMsg] = field(t.id, idInput);
    idInput.addEventListener("input", () => {
      const wanted = idInput.value.trim();
      idMsg.textContent = /^[A-Za-z0-9_-]{1,100}$/.test(wanted) ? (ids().includes(wanted) && wanted !== selected ? t.taken : "") : t.pattern;
      if (!idMsg.textContent) {
        rename(selected, wanted);
        selected = wanted;
        changed();
      }
    });
    form.append(idRow);

    if (kind !== "exit") {
      const next = targetSelect("next", step.next === undefined ? undefined : step.next, (v) => {
        if (v === "") delete step.next;
        else step.next = v === "__end__" ? null : v;
        changed();
      }, true);
      form.append(field(t.next, next)[0]);
    }

    const required = schema.required || [];
    for (const [key, raw] of Object.entries(schema.properties || {})) {
      const prop = plain(raw);
      const label = prop.title || key;
      let control;
      const set = (value) => {
        if (value === undefined || value === "") delete args[key];
        else args[key] = value;
      };
      if (isTarget(key)) {
        control = targetSelect(key, args[key], (v) => { set(v === "" ? undefined : v); changed(); }, false);
        form.append(field(label, control)[0]);
        continue;
      }
      if (prop.enum) {
        control = el("select", { "data-field": key });
        if (!required.includes(key)) control.append(el("option", { value: "" }, t.default + (prop.default ? " (" + prop.default + ")" : "")));
        for (const v of prop.enum) control.append(el("option", { value: v, selected: args[key] === v }, v));
      } else if (prop.type === "number" || prop.type === "integer") {
        control = el("input", { type: "number", step: "any", value: args[key] ?? "", "data-field": key, placeholder: prop.default ?? "" });
      } else if (prop.type === "string") {
        control = el("input", { type: "text", value: args[key] ?? "", "data-field": key, placeholder: prop.default ?? "" });
      } else {
        // maps (arms, goto) and other shapes: written as JSON, e.g. {"a": 45, "b": 45}
        const shown = args[key] === undefined ? "" : (typeof args[key] === "string" && takesText(raw) ? args[key] : JSON.stringify(args[key]));
        control = el("input", { type: "text", class: "json", value: shown, "data-field": key, placeholder: "{}" });
      }
      const [row, msg] = field(label, control, "");
      msg.textContent = check(raw, args[key], required.includes(key));
      const read = () => {
        if (control.classList.contains("json")) {
          if (!control.value.trim()) return undefined;
          try { return JSON.parse(control.value); } catch (e) { return takesText(raw) ? control.value : e; }
        }
        if (control.type === "number") return control.value === "" ? undefined : Number(control.value);
        return control.value;
      };
      control.addEventListener("input", () => {
        const value = read();
        if (value instanceof Error) { msg.textContent = t.json; return; }
        msg.textContent = check(raw, value, required.includes(key));
        set(value);
        changed();
      });
      form.append(row);
    }
    const remove = el("button", { type: "button", class: "small danger", id: "remove-step" }, t.remove);
    remove.addEventListener("click", () => removeStep(selected));
    form.append(remove);
  }

  function rename(from, to) {
    steps().forEach((s, i) => {
      if (idOf(s, i) === from) s.id = to;
      if (s.next === from) s.next = to;
      const k = kindOf(s);
      const a = s[k] || {};
      for (const key of ["then", "else", "timeout"]) if (a[key] === from) a[key] = to;
      if (a.goto) for (const arm of Object.keys(a.goto)) if (a.goto[arm] === from) a.goto[arm] = to;
    });
  }

  function removeStep(id) {
    const list = steps();
    const i = ids().indexOf(id);
    if (i < 0 || list.length < 2) return;
    // name every step, so the ones after keep their ids when the numbering shifts
    list.forEach((s, j) => { s.id = idOf(s, j); });
    list.splice(i, 1);
    list.forEach((s) => {
      if (s.next === id) delete s.next;
      const a = s[kindOf(s)] || {};
      for (const key of ["then", "else", "timeout"]) if (a[key] === id) delete a[key];
      if (a.goto) for (const arm of Object.keys(a.goto)) if (a.goto[arm] === id) delete a.goto[arm];
    });
    selected = null;
    changed();
  }

  function addStep(kind) {
    const list = steps();
    list.forEach((s, j) => { s.id = idOf(s, j); });
    let n = 1;
    while (ids().includes(kind + "-" + n)) n += 1;
    const id = kind + "-" + n;
    const schema = schemas[kind];
    const args = {};
    for (const key of schema.required || []) {
      const p = plain(schema.properties[key]);
      args[key] = p.type === "object" ? (key === "arms" ? { a: 50, b: 50 } : {}) : "";
    }
    if (kind === "wait") args.hours = 1;
    const at = selected ? ids().indexOf(selected) + 1 : list.length;
    list.splice(at, 0, { id: id, [kind]: args });
    selected = id;
    changed();
  }

  function drawPicker() {
    picker.replaceChildren(el("option", { value: "" }, t.choose));
    for (const id of ids()) picker.append(el("option", { value: id, selected: id === selected }, id));
  }

  function showErrors(list) {
    errorsBox.replaceChildren();
    errorsBox.hidden = !list.length;
    for (const e of list) errorsBox.append(el("li", { translate: "no" }, e));
  }

  function markSelected() {
    canvasBox.querySelectorAll(".node[data-step]").forEach((g) => g.classList.toggle("selected", g.dataset.step === selected));
  }

  async function ask(body) {
    const mine = ++asked;
    const response = await fetch(root.dataset.draftUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
    if (mine !== asked) return null; // a newer change is on its way
    if (response.status === 401 || response.status === 403) { showErrors([t.session]); return null; }
    return response.json();
  }

  function apply(answer, fromYaml) {
    if (!answer) return;
    showErrors(answer.errors || []);
    root.dataset.state = answer.ok ? "valid" : "invalid";
    if (answer.svg) { canvasBox.innerHTML = answer.svg; markSelected(); }
    if (answer.yaml && !fromYaml) yamlBox.value = answer.yaml;
    if (fromYaml && answer.definition && answer.svg) {
      definition = answer.definition;
      drawPicker();
      drawForm();
    }
    document.dispatchEvent(new CustomEvent("journey-draft", { detail: answer }));
  }

  function changed() {
    drawPicker();
    if (!form.contains(document.activeElement)) drawForm();
    clearTimeout(timer);
    timer = setTimeout(async () => apply(await ask({ definition: definition }), false), 300);
  }

  yamlBox.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => apply(await ask({ yaml: yamlBox.value }), true), 400);
  });
  canvasBox.addEventListener("click", (e) => {
    const node = e.target.closest(".node[data-step]");
    if (!node || node.dataset.step === "__trigger__") return;
    selected = node.dataset.step;
    markSelected();
    drawPicker();
    drawForm();
  });
  canvasBox.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.target.matches(".node[data-step]")) e.target.dispatchEvent(new MouseEvent("click", { bubbles: true }));
  });
  picker.addEventListener("change", () => { selected = picker.value || null; markSelected(); drawForm(); });
  const kindSelect = document.getElementById("add-kind");
  for (const k of kinds) kindSelect.append(el("option", { value: k }, t.kinds[k] || k));
  document.getElementById("add-step").addEventListener("click", () => addStep(kindSelect.value));
  root.hidden = false;
  drawPicker();
  drawForm();
})();
