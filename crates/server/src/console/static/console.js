// The sluice console: a small page script, no framework. Every page is built from the
// JSON endpoints under /console/api/ with DOM calls (never innerHTML, so no text from the
// server is ever parsed as markup). State-changing calls carry the session's CSRF token.
"use strict";

let me = null; // {role, account?, username?, csrf}
let leavePage = () => {}; // stops what the current page runs (live view, polling)

// ---- helpers ----------------------------------------------------------------------

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (sel) => document.querySelector(sel);

async function api(method, path, body) {
  const headers = {};
  if (me && me.csrf) headers["X-CSRF-Token"] = me.csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch("/console/api" + path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let json = null;
  if (res.status !== 204) {
    try { json = await res.json(); } catch (_) { json = null; }
  }
  if (res.status === 401 && path !== "/session") {
    me = null;
    renderWho();
    location.hash = "#/signin";
  }
  return { status: res.status, ok: res.ok, body: json };
}

function errorText(r) {
  const b = r.body || {};
  return b.error || (b.errors && b.errors[0] && b.errors[0].message) ||
    (b.error && b.error.message) || ("Request failed (" + r.status + ")");
}

function say(text) {
  $("#status").textContent = text || "";
}

function field(label, input) {
  return h("label", {}, label, input);
}

function page(title, ...children) {
  const main = $("#main");
  main.replaceChildren(h("h2", { text: title }), ...children.flat().filter((c) => c));
  document.title = title + " · sluice console";
  main.focus();
}

function copyButton(text, what) {
  return h("button", {
    type: "button", class: "secondary", "aria-label": "Copy " + what,
    onclick: async (e) => {
      try {
        await navigator.clipboard.writeText(text);
        e.target.textContent = "Copied";
      } catch (_) {
        e.target.textContent = "Select and copy";
      }
      setTimeout(() => { e.target.textContent = "Copy"; }, 1500);
    },
  }, "Copy");
}

function enc(s) { return encodeURIComponent(s); }

// ---- shell ------------------------------------------------------------------------

function renderWho() {
  const nav = $("#nav");
  const who = $("#who");
  nav.replaceChildren();
  who.replaceChildren();
  if (!me) return;
  if (me.role === "operator") {
    nav.append(h("a", { href: "#/operator" }, "Node and accounts"));
    who.append(h("span", {}, "Operator"));
  } else {
    nav.append(h("a", { href: "#/streams" }, "Streams and API help"));
    who.append(h("span", {}, me.username + " @ " + me.account));
  }
  who.append(h("button", {
    type: "button", class: "secondary", id: "sign-out",
    onclick: async () => {
      await api("DELETE", "/session");
      me = null;
      renderWho();
      location.hash = "#/signin";
    },
  }, "Sign out"));
}

async function route() {
  leavePage();
  leavePage = () => {};
  say("");
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (!me && parts[0] !== "signin") {
    const r = await api("GET", "/session");
    if (r.ok) { me = r.body; renderWho(); }
  }
  if (!me) return signInPage();
  switch (parts[0]) {
    case "operator":
      if (parts[1] === "accounts" && parts[2]) return accountPage(parts[2]);
      return operatorPage();
    case "streams": return streamsPage();
    case "rules": return rulesPage(parts[1]);
    case "live": return livePage(parts[1]);
    case "signin": return signInPage();
    default:
      location.hash = me.role === "operator" ? "#/operator" : "#/streams";
  }
}

// ---- sign-in ----------------------------------------------------------------------

function signInPage() {
  const opError = h("p", { class: "error", id: "operator-error", role: "alert" });
  const cuError = h("p", { class: "error", id: "customer-error", role: "alert" });
  const token = h("input", { id: "operator-token", type: "password", autocomplete: "off", required: true });
  const account = h("input", { id: "customer-account", autocomplete: "organization", required: true });
  const username = h("input", { id: "customer-username", autocomplete: "username", required: true });
  const password = h("input", { id: "customer-password", type: "password", autocomplete: "current-password", required: true });
  const signIn = async (body, error) => {
    error.textContent = "";
    me = null;
    const r = await api("POST", "/session", body);
    if (!r.ok) { error.textContent = errorText(r); return; }
    me = r.body;
    renderWho();
    location.hash = me.role === "operator" ? "#/operator" : "#/streams";
  };
  page("Sign in",
    h("div", { class: "grid" },
      h("section", { class: "card", "aria-labelledby": "op-h" },
        h("h3", { id: "op-h" }, "Operator"),
        h("form", { id: "operator-form", onsubmit: (e) => { e.preventDefault(); signIn({ admin_token: token.value }, opError); } },
          field("Admin token", token),
          h("p", { class: "muted" }, "Printed by sluice serve at first start, kept in DATA_DIR/admin-token."),
          h("button", { type: "submit" }, "Sign in as operator"), opError)),
      h("section", { class: "card", "aria-labelledby": "cu-h" },
        h("h3", { id: "cu-h" }, "Customer"),
        h("form", { id: "customer-form", onsubmit: (e) => { e.preventDefault(); signIn({ account: account.value, username: username.value, password: password.value }, cuError); } },
          field("Account", account), field("Username", username), field("Password", password),
          h("button", { type: "submit" }, "Sign in"), cuError))));
}

// ---- operator ---------------------------------------------------------------------

function operatorPage() {
  const health = h("dl", { id: "health" });
  const open = h("input", { id: "account-name", required: true, autocomplete: "off" });
  const error = h("p", { class: "error", role: "alert", id: "account-error" });
  const go = async (create) => {
    error.textContent = "";
    const name = open.value.trim();
    const r = await api(create ? "PUT" : "GET", "/admin/accounts/" + enc(name), create ? {} : undefined);
    if (!r.ok) { error.textContent = errorText(r); return; }
    location.hash = "#/operator/accounts/" + enc(name);
  };
  page("Node and accounts",
    h("div", { class: "grid" },
      h("section", { class: "card", "aria-labelledby": "health-h" },
        h("h3", { id: "health-h" }, "This node"), health),
      h("section", { class: "card", "aria-labelledby": "acct-h" },
        h("h3", { id: "acct-h" }, "Accounts"),
        h("form", { id: "account-form", onsubmit: (e) => { e.preventDefault(); go(true); } },
          field("Account name", open),
          h("div", { class: "row" },
            h("button", { type: "submit", id: "create-account" }, "Create account"),
            h("button", { type: "button", class: "secondary", onclick: () => go(false) }, "Open account")),
          error))));
  let last = null;
  const poll = async () => {
    const r = await api("GET", "/admin/health");
    if (!r.ok) return;
    const b = r.body;
    const now = Date.now();
    let rate = "measuring…";
    if (last) {
      const perSec = (b.post_log.next_seq - last.seq) / ((now - last.at) / 1000);
      rate = perSec.toFixed(1) + " posts/s";
    }
    last = { seq: b.post_log.next_seq, at: now };
    const rows = [
      ["Status", b.status + (b.reason ? " (" + b.reason + ")" : "")],
      ["Mode", b.cluster ? "cluster member" : "single node"],
      ["Datacenter", b.datacenter],
      ["Ingest rate", rate],
      ["Streams", b.streams], ["Rules", b.rules], ["Open connections", b.connections],
      ["Post log position", b.post_log.next_seq],
      ["Post log retention", Math.round(b.post_log.retention_seconds / 60) + " min"],
    ];
    health.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
  };
  poll();
  const timer = setInterval(poll, 5000);
  leavePage = () => clearInterval(timer);
}

async function accountPage(name) {
  const base = "/admin/accounts/" + enc(name);
  const r = await api("GET", base);
  if (!r.ok) { page("Account " + name, h("p", { class: "error" }, errorText(r))); return; }
  const acct = r.body;
  const apps = await api("GET", base + "/apps");
  const reload = () => accountPage(name);
  const action = (form, errorEl, fn) => async (e) => {
    e.preventDefault();
    errorEl.textContent = "";
    const res = await fn();
    if (!res.ok) { errorEl.textContent = errorText(res); return; }
    say("Done.");
    reload();
  };

  const users = h("ul", { id: "users" }, acct.users.map((u) => h("li", {},
    u + " ", h("button", {
      type: "button", class: "danger", "aria-label": "Delete user " + u,
      onclick: async () => {
        if (!confirm("Delete user " + u + "?")) return;
        const d = await api("DELETE", base + "/users/" + enc(u));
        if (!d.ok) say(errorText(d)); else reload();
      },
    }, "Delete"))));
  const uName = h("input", { id: "user-name", required: true, autocomplete: "off" });
  const uPass = h("input", { id: "user-password", type: "password", required: true, autocomplete: "new-password" });
  const uErr = h("p", { class: "error", role: "alert", id: "user-error" });

  const streams = h("table", { id: "streams" },
    h("thead", {}, h("tr", {}, h("th", {}, "Label"), h("th", {}, "Product"), h("th", {}, "Limits"), h("th", {}, "Now"), h("th", {}, ""))),
    h("tbody", {}, acct.streams.map((s) => h("tr", {},
      h("td", {}, s.label), h("td", {}, s.product),
      h("td", {}, s.max_connections + " connections" + (s.max_rules !== undefined ? ", " + s.max_rules + " rules" : "")),
      h("td", {}, s.connections + " open" + (s.rule_count !== undefined ? ", " + s.rule_count + " rules" : "")),
      h("td", {}, s.product === "powerstream" ? "" : h("button", {
        type: "button", class: "danger", "aria-label": "Delete stream " + s.label + " (" + s.product + ")",
        onclick: async () => {
          if (!confirm("Delete stream " + s.label + " (" + s.product + ") and its rules?")) return;
          const d = await api("DELETE", base + "/streams/" + enc(s.label) + "?product=" + enc(s.product));
          if (!d.ok) say(errorText(d)); else reload();
        },
      }, "Delete"))))));
  const sLabel = h("input", { id: "stream-label", required: true, autocomplete: "off" });
  const sProduct = h("select", { id: "stream-product" },
    h("option", { value: "powertrack" }, "PowerTrack"),
    h("option", { value: "decahose" }, "Decahose"),
    h("option", { value: "firehose" }, "Firehose"));
  const sConn = h("input", { id: "stream-max-connections", type: "number", min: "1", placeholder: "default" });
  const sRules = h("input", { id: "stream-max-rules", type: "number", min: "0", placeholder: "default" });
  const sErr = h("p", { class: "error", role: "alert", id: "stream-error" });

  const appName = h("input", { id: "app-name", required: true, autocomplete: "off" });
  const appErr = h("p", { class: "error", role: "alert" });
  const appSecret = h("div", { id: "app-secret" });
  const appList = h("ul", {}, ((apps.body && apps.body.apps) || []).map((a) =>
    h("li", {}, a.name + " — " + a.app_id + ", consumer key " + a.consumer_key)));

  page("Account " + acct.account,
    h("div", { class: "grid" },
      h("section", { class: "card", "aria-labelledby": "u-h" },
        h("h3", { id: "u-h" }, "Users (basic auth)"), users,
        h("form", { id: "user-form", onsubmit: action(null, uErr, () =>
          api("PUT", base + "/users/" + enc(uName.value.trim()), { password: uPass.value })) },
          h("div", { class: "row" }, field("Username", uName), field("Password", uPass)),
          h("button", { type: "submit" }, "Create user or set password"), uErr)),
      h("section", { class: "card", "aria-labelledby": "a-h" },
        h("h3", { id: "a-h" }, "X API v2 apps"), appList,
        h("form", { id: "app-form", onsubmit: async (e) => {
          e.preventDefault();
          appErr.textContent = "";
          const res = await api("POST", base + "/apps", { name: appName.value.trim() });
          if (!res.ok) { appErr.textContent = errorText(res); return; }
          const b = res.body;
          appSecret.replaceChildren(h("div", { class: "secret", role: "alert" },
            h("p", {}, h("strong", {}, "Shown once: copy these now.")),
            h("dl", {},
              ["app_id", "consumer_key", "consumer_secret", "bearer_token"].flatMap((k) =>
                [h("dt", {}, k), h("dd", {}, h("code", {}, b[k]), " ", copyButton(b[k], k))]))));
        } },
          field("App name", appName), h("button", { type: "submit" }, "Create app"), appErr),
        appSecret)),
    h("section", { class: "card", "aria-labelledby": "s-h" },
      h("h3", { id: "s-h" }, "Streams"), streams,
      h("form", { id: "stream-form", onsubmit: action(null, sErr, () => {
        const body = { product: sProduct.value };
        if (sConn.value) body.max_connections = Number(sConn.value);
        if (sRules.value) body.max_rules = Number(sRules.value);
        return api("PUT", base + "/streams/" + enc(sLabel.value.trim()), body);
      }) },
        h("div", { class: "row" }, field("Label", sLabel), field("Product", sProduct),
          field("Max connections", sConn), field("Max rules", sRules)),
        h("button", { type: "submit" }, "Create stream or set limits"), sErr)),
    h("p", { class: "muted" }, "Powerstream tokens: POST " + "/admin/accounts/" + acct.account + "/tokens with the admin token."));
}

// ---- customer ---------------------------------------------------------------------

async function streamsPage() {
  const r = await api("GET", "/account");
  if (!r.ok) { page("Streams", h("p", { class: "error" }, errorText(r))); return; }
  const cards = r.body.streams.map((s) => h("section", { class: "card", "aria-labelledby": "st-" + s.product + "-" + s.label },
    h("h3", { id: "st-" + s.product + "-" + s.label }, s.label + " · " + s.product),
    h("dl", {},
      h("dt", {}, "Stream URL"), h("dd", {}, h("code", {}, s.stream_url), " ", copyButton(s.stream_url, "stream URL")),
      s.rules_url ? [h("dt", {}, "Rules URL"), h("dd", {}, h("code", {}, s.rules_url), " ", copyButton(s.rules_url, "rules URL"))] : [],
      s.partitions ? [h("dt", {}, "Partitions"), h("dd", {}, "1 to " + s.partitions)] : [],
      h("dt", {}, "Connections"), h("dd", {}, s.connections + " open of " + s.max_connections),
      s.rule_count !== undefined ? [h("dt", {}, "Rules"), h("dd", {}, s.rule_count + " of " + s.max_rules)] : []),
    s.product === "powertrack" ? h("p", { class: "row" },
      h("a", { href: "#/rules/" + enc(s.label), id: "rules-link-" + s.label }, "Rules"),
      h("a", { href: "#/live/" + enc(s.label), id: "live-link-" + s.label }, "Live view")) : null,
    h("h4", {}, "Try it"),
    s.curl.map((c) => h("div", {}, h("span", { class: "muted" }, c.what),
      h("div", { class: "cmd" }, h("pre", {}, c.command), copyButton(c.command, c.what))))));
  page("Streams of " + r.body.account,
    h("p", { class: "muted" }, "curl asks for the password of " + r.body.username + "."),
    cards.length ? cards : h("p", {}, "This account has no streams yet: ask the operator."));
}

async function rulesPage(label) {
  const base = "/streams/" + enc(label) + "/rules";
  const r = await api("GET", base);
  if (!r.ok) { page("Rules of " + label, h("p", { class: "error" }, errorText(r))); return; }
  let rules = r.body.rules;
  const search = h("input", { id: "rule-search", type: "search", autocomplete: "off" });
  const tbody = h("tbody", {});
  const count = h("p", { class: "muted", id: "rule-count" });
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const shown = rules.filter((x) => !q || x.value.toLowerCase().includes(q) || (x.tag || "").toLowerCase().includes(q));
    count.textContent = shown.length + " of " + rules.length + " rules";
    tbody.replaceChildren(...shown.map((x) => h("tr", {},
      h("td", {}, h("code", {}, x.value)), h("td", {}, x.tag || ""), h("td", {}, h("code", {}, x.id)),
      h("td", {}, h("button", {
        type: "button", class: "danger", "aria-label": "Delete rule " + x.value,
        onclick: async () => {
          const d = await api("DELETE", base + "/" + enc(x.id));
          if (!d.ok) { say(errorText(d)); return; }
          say("Rule deleted.");
          rules = rules.filter((y) => y.id !== x.id);
          draw();
        },
      }, "Delete")))));
  };
  search.addEventListener("input", draw);
  const reload = async () => {
    const again = await api("GET", base);
    if (again.ok) { rules = again.body.rules; draw(); }
  };
  const value = h("input", { id: "rule-value", required: true, autocomplete: "off", "aria-describedby": "rule-error" });
  const tag = h("input", { id: "rule-tag", autocomplete: "off" });
  const addErr = h("p", { class: "error", id: "rule-error", role: "alert" });
  const add = async (e) => {
    e.preventDefault();
    addErr.textContent = "";
    say("");
    const rule = { value: value.value };
    if (tag.value) rule.tag = tag.value;
    const res = await api("POST", base, { rules: [rule] });
    if (!res.ok) {
      const d = res.body && res.body.detail && res.body.detail[0];
      addErr.textContent = (d && d.message) || errorText(res);
      value.setAttribute("aria-invalid", "true");
      return;
    }
    value.removeAttribute("aria-invalid");
    say(res.body.created ? "Rule added." : "That rule already exists.");
    value.value = ""; tag.value = "";
    reload();
  };
  const importFile = h("input", { id: "rule-import", type: "file", accept: "application/json,.json" });
  const importErr = h("p", { class: "error", role: "alert" });
  importFile.addEventListener("change", async () => {
    importErr.textContent = "";
    say("");
    const file = importFile.files[0];
    if (!file) return;
    let body;
    try {
      const parsed = JSON.parse(await file.text());
      const list = Array.isArray(parsed) ? parsed : parsed.rules;
      body = { rules: list.map((x) => (x.tag ? { value: x.value, tag: x.tag } : { value: x.value })) };
    } catch (_) {
      importErr.textContent = "The file is not JSON of the form {\"rules\":[{\"value\":…,\"tag\":…}]}.";
      return;
    }
    const res = await api("POST", base, body);
    if (!res.ok) {
      const bad = ((res.body && res.body.detail) || []).filter((d) => d.message);
      importErr.textContent = errorText(res) + (bad.length ? " First: " + bad[0].value + " — " + bad[0].message : "");
      return;
    }
    say("Imported: " + res.body.created + " added, " + res.body.existing + " already there.");
    reload();
  });
  const exportRules = () => {
    const json = JSON.stringify({ rules: rules.map((x) => (x.tag ? { value: x.value, tag: x.tag } : { value: x.value })) }, null, 2);
    const a = h("a", { href: URL.createObjectURL(new Blob([json], { type: "application/json" })), download: label + "-rules.json" });
    document.body.append(a);
    a.click();
    a.remove();
  };
  page("Rules of " + label,
    h("p", {}, h("a", { href: "#/live/" + enc(label) }, "Live view of " + label)),
    h("section", { class: "card", "aria-labelledby": "add-h" },
      h("h3", { id: "add-h" }, "Add a rule"),
      h("form", { id: "rule-form", onsubmit: add },
        h("div", { class: "row" }, field("Rule", value), field("Tag (optional)", tag)),
        h("button", { type: "submit" }, "Add rule"), addErr)),
    h("section", { class: "card", "aria-labelledby": "list-h" },
      h("h3", { id: "list-h" }, "Rules"),
      h("div", { class: "row" }, field("Search rules and tags", search),
        h("button", { type: "button", class: "secondary", id: "rule-export", onclick: exportRules }, "Export JSON")),
      field("Import rules from a JSON file (all or nothing)", importFile), importErr,
      count,
      h("table", { id: "rules-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Rule"), h("th", {}, "Tag"), h("th", {}, "Id"), h("th", {}, ""))),
        tbody)));
  draw();
}

function livePage(label) {
  const list = h("ul", { class: "posts", id: "live-posts", "aria-live": "polite" });
  const state = h("p", { class: "muted", id: "live-state" }, "Connecting…");
  const pause = h("button", { type: "button", id: "live-pause", "aria-pressed": "false" }, "Pause");
  let values = {};
  api("GET", "/streams/" + enc(label) + "/rules").then((r) => {
    if (r.ok) for (const x of r.body.rules) values[x.id] = x.value;
  });
  let source = null;
  let timer = null;
  let delay = 1000; // reconnect backoff: doubles to a minute, reset once connected
  let paused = false;
  let stopped = false;
  const close = () => {
    if (source) { source.close(); source = null; }
    clearTimeout(timer);
  };
  const connect = () => {
    close();
    if (stopped || paused) return;
    source = new EventSource("/console/api/streams/" + enc(label) + "/live");
    source.onopen = () => { delay = 1000; state.textContent = "Live: posts appear as they match."; };
    source.addEventListener("post", (e) => {
      const p = JSON.parse(e.data);
      const item = h("li", {},
        h("div", {}, p.user ? h("strong", {}, "@" + p.user + " ") : null, p.text),
        h("div", { class: "muted" }, "post " + p.id + (p.created_at ? " · " + p.created_at : "")),
        h("div", {}, p.matching_rules.map((m) => h("span", { class: "tag", title: values[m.id] || m.id },
          (m.tag || "untagged") + (values[m.id] ? ": " + values[m.id] : "")))));
      list.prepend(item);
      while (list.children.length > 200) list.lastChild.remove();
    });
    source.onerror = () => {
      // One connection at a time: close this one and reconnect after a growing delay,
      // instead of the browser's fixed-interval retries.
      close();
      if (stopped) return;
      state.textContent = "Disconnected: retrying in " + Math.round(delay / 1000) + " s.";
      timer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 60000);
    };
  };
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (paused) { close(); state.textContent = "Paused."; } else { delay = 1000; connect(); }
  });
  page("Live view of " + label,
    h("p", {}, h("a", { href: "#/rules/" + enc(label) }, "Rules of " + label)),
    h("section", { class: "card" }, h("div", { class: "row" }, pause, state), list));
  connect();
  leavePage = () => { stopped = true; close(); };
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", route);
