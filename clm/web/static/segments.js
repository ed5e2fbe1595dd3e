// The segment condition builder's state (Alpine.js): a tree of groups and rules, the same
// condition as text, and the switch between them. The server converts between the two forms
// (POST /segments/condition) and counts the matches (POST /segments/preview, htmx); this file
// only edits the tree. Loaded before Alpine starts, so `segmentBuilder` exists when it does.
(function () {
  "use strict";
  let nextId = 1;

  function withIds(node) {
    node.id = nextId++;
    if (node.kind === "group") node.items.forEach(withIds);
    if (node.kind === "count" || node.kind === "purchased") {
      node.filters = node.filters || [];
      node.types = node.types || [];
    }
    return node;
  }

  function strip(node) {
    // the tree as the server reads it: without the ids the page gave its nodes
    const copy = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === "id") continue;
      copy[key] = key === "items" ? value.map(strip) : value;
    }
    return copy;
  }

  function csrf(form) {
    const input = form.querySelector("input[name=csrf_token]");
    return input ? input.value : "";
  }

  window.segmentBuilder = function (config, start) {
    return {
      config: config,
      mode: start.mode,
      root: withIds(start.tree),
      text: start.text,
      canonical: "",
      errorNode: null,
      errorMessage: "",
      switchError: "",
      saving: false,

      init() {
        this.$watch("root", () => this.changed());
      },
      changed() {
        this.$el.dispatchEvent(new CustomEvent("condition-changed", { bubbles: true }));
      },
      treeJson() {
        return JSON.stringify(strip(this.root));
      },

      // the tree as rows: a group opens, its rules and groups follow one level deeper, it closes
      rows() {
        const out = [];
        const walk = (node, parent, depth) => {
          if (node.kind === "group") {
            out.push({ key: "o" + node.id, type: "open", node: node, parent: parent, depth: depth });
            node.items.forEach((item) => walk(item, node, depth + 1));
            out.push({ key: "c" + node.id, type: "close", node: node, parent: parent, depth: depth + 1 });
          } else {
            out.push({ key: "l" + node.id, type: "leaf", node: node, parent: parent, depth: depth });
          }
        };
        walk(this.root, null, 0);
        return out;
      },
      fieldsOf(group) {
        return this.config.fields.filter((f) => f.group === group);
      },
      fieldKey(node) {
        return node.field && node.field.startsWith("attr.") ? "attr." : node.field;
      },
      fieldInfo(node) {
        const key = this.fieldKey(node);
        return this.config.fields.find((f) => f.name === key) || { kind: "text", choices: [] };
      },
      eventTypes() {
        const events = this.config.functions.find((f) => f.name === "events");
        return events ? events.eventTypes : [];
      },
      opsFor(node) {
        const kind = this.fieldInfo(node).kind;
        if (kind === "bool") return ["is true", "=", "!=", "is null", "is not null"];
        if (kind === "number") return [">=", ">", "=", "!=", "<", "<=", "in", "not in", "is null", "is not null"];
        return ["=", "!=", "in", "not in", "is null", "is not null", "<", "<=", ">", ">="];
      },
      choicesOf(node) {
        const info = this.fieldInfo(node);
        return info.kind === "bool" ? ["true", "false"] : info.choices || [];
      },
      needsValue(node) {
        return !["is null", "is not null", "is true"].includes(node.op);
      },
      isList(node) {
        return node.op === "in" || node.op === "not in";
      },
      shown(value) {
        if (value === null || value === undefined) return "";
        return Array.isArray(value) ? value.join(", ") : String(value);
      },
      splitList(text) {
        return text.split(/[,，]/).map((s) => s.trim()).filter((s) => s !== "");
      },
      setValue(node, text) {
        node.value = this.isList(node) ? this.splitList(text) : text;
      },
      setField(node, name) {
        const info = this.config.fields.find((f) => f.name === name) || { kind: "text", choices: [] };
        node.field = name === "attr." ? "attr." : name;
        node.op = info.kind === "bool" ? "is true" : info.kind === "number" ? ">=" : "=";
        node.value = info.choices && info.choices.length ? info.choices[0] : info.kind === "number" ? 1 : "";
      },
      ruleKind(node) {
        return node.kind === "count" ? node.fn : node.kind;
      },
      setKind(node, kind) {
        for (const key of Object.keys(node)) if (key !== "id" && key !== "not") delete node[key];
        Object.assign(node, this.blank(kind));
      },
      blank(kind) {
        if (kind === "field") return { kind: "field", field: "orders", op: ">=", value: 1 };
        if (["events", "orders", "spent"].includes(kind))
          return { kind: "count", fn: kind, types: [], days: 30, filters: [], op: ">=", value: 1 };
        if (kind === "purchased") return { kind: "purchased", days: 30, filters: [] };
        if (kind === "segment") return { kind: "segment", segment: this.config.segments[0] || "" };
        return { kind: "raw", text: "" };
      },
      addRule(group) {
        group.items.push(withIds(Object.assign({ not: false }, this.blank("field"))));
      },
      addGroup(group) {
        const inner = withIds({ kind: "group", op: "or", not: false, items: [] });
        inner.items.push(withIds(Object.assign({ not: false }, this.blank("field"))));
        group.items.push(inner);
      },
      remove(parent, node) {
        if (!parent) return;
        parent.items.splice(parent.items.indexOf(node), 1);
      },

      async convert(fields) {
        const body = new URLSearchParams(Object.assign({ csrf_token: csrf(this.$root) }, fields));
        const response = await fetch("/segments/condition", {
          method: "POST",
          body: body,
          headers: { "X-CSRF-Token": csrf(this.$root) },
          credentials: "same-origin",
        });
        return response.json();
      },
      async toText() {
        if (this.mode === "text") return;
        const answer = await this.convert({ mode: "builder", tree: this.treeJson() });
        if (answer.error) {
          this.switchError = answer.error.message;
          return;
        }
        this.switchError = "";
        this.text = answer.text;
        this.mode = "text";
        this.$nextTick(() => this.changed());
      },
      async toBuilder() {
        if (this.mode === "builder") return;
        const answer = await this.convert({ mode: "text", where: this.text });
        if (answer.error) {
          // stay in the text, with the caret where the parser stopped
          this.switchError = answer.error.message;
          this.pointAt(answer.error.pos);
          return;
        }
        this.switchError = "";
        this.root = withIds(answer.tree);
        this.mode = "builder";
        this.$nextTick(() => this.changed());
      },
      pointAt(pos) {
        const box = this.$refs.text;
        if (!box || pos === undefined || pos < 0) return;
        box.focus();
        box.setSelectionRange(pos, Math.min(this.text.length, pos + 1));
      },
      onPreview(detail) {
        const error = detail.problem;
        this.errorNode = error && error.node !== undefined ? error.node : null;
        this.errorMessage = error ? error.message : "";
        if (detail.text) this.canonical = detail.text;
        if (error && this.mode === "text" && document.activeElement !== this.$refs.text) this.pointAt(error.pos);
      },
    };
  };
})();
