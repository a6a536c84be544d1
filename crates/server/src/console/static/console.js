// The sluice console: a small page script, no framework. Every page is built from the
// JSON endpoints under /console/api/ with DOM calls (never innerHTML, so no text from the
// server is ever parsed as markup). State-changing calls carry the session's CSRF token.
"use strict";

let me = null; // {role, account?, username?, csrf}
let leavePage = () => {}; // stops what the current page runs (live view, polling)
let notice = ""; // said on the next page (what ended the last one)

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
    nav.append(h("a", { href: "#/streams" }, "Streams and API help"), h("a", { href: "#/usage" }, "Usage"));
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
  say(notice);
  notice = "";
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
    case "rules": return parts[2] ? rulesPage(parts[1], parts[2]) : rulesPage("powertrack", parts[1]);
    case "live": return livePage(parts[1]);
    case "usage": return usagePage(parts[1]);
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

function minutes(seconds) {
  return seconds >= 3600 ? (seconds / 3600).toFixed(1).replace(/\.0$/, "") + " h" : Math.round(seconds / 60) + " min";
}

// The cluster's running nodes, for the node page (nothing on a single node).
function membersOf(m) {
  if (!m) return [];
  const title = h("h4", {}, "Cluster members");
  if (m.error) return [title, h("p", { class: "error" }, "The list is unavailable: " + m.error)];
  return [title, h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Cluster members" },
    h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Datacenter"), h("th", {}, "URL"), h("th", {}, "Worker id"), h("th", {}, "Joined"))),
      h("tbody", {}, m.nodes.map((n) => h("tr", {},
        h("td", {}, n.datacenter), h("td", {}, h("a", { href: n.public_url + "/console/" }, n.public_url)),
        h("td", {}, String(n.worker_id)), h("td", {}, new Date(n.joined_ms).toISOString().replace(/\.\d+Z$/, "Z")))))))];
}

function operatorPage() {
  const health = h("dl", { id: "health" });
  const members = h("div", { id: "members" });
  const open = h("input", { id: "account-name", required: true, autocomplete: "off" });
  const error = h("p", { class: "error", role: "alert", id: "account-error" });
  const tbody = h("tbody", {});
  const pager = h("div", { class: "row", id: "accounts-pager" });
  const create = async () => {
    error.textContent = "";
    const name = open.value.trim();
    const r = await api("PUT", "/admin/accounts/" + enc(name), {});
    if (!r.ok) { error.textContent = errorText(r); return; }
    location.hash = "#/operator/accounts/" + enc(name);
  };
  // The account list, a page at a time: `pages` holds the next_token of each page shown.
  const pages = [null];
  const list = async () => {
    const token = pages[pages.length - 1];
    const r = await api("GET", "/admin/accounts?max_results=20" + (token ? "&next_token=" + enc(token) : ""));
    if (!r.ok) { error.textContent = errorText(r); return; }
    tbody.replaceChildren(...r.body.accounts.map((a) => h("tr", {},
      h("td", {}, h("a", { href: "#/operator/accounts/" + enc(a.account) }, a.account)),
      h("td", {}, String(a.users)), h("td", {}, String(a.streams)),
      h("td", {}, String(a.tokens)), h("td", {}, String(a.apps)))));
    if (!r.body.accounts.length) tbody.append(h("tr", {}, h("td", { colspan: "5" }, "No accounts yet.")));
    pager.replaceChildren(...[
      pages.length > 1 ? h("button", { type: "button", class: "secondary", id: "accounts-prev",
        onclick: () => { pages.pop(); list(); } }, "Previous page") : null,
      r.body.next_token ? h("button", { type: "button", class: "secondary", id: "accounts-next",
        onclick: () => { pages.push(r.body.next_token); list(); } }, "Next page") : null,
    ].filter((b) => b));
  };
  page("Node and accounts",
    h("div", { class: "grid" },
      h("section", { class: "card", "aria-labelledby": "health-h" },
        h("h3", { id: "health-h" }, "This node"), health, members),
      h("section", { class: "card", "aria-labelledby": "acct-h" },
        h("h3", { id: "acct-h" }, "Accounts"),
        h("form", { id: "account-form", onsubmit: (e) => { e.preventDefault(); create(); } },
          field("New account name", open),
          h("button", { type: "submit", id: "create-account" }, "Create account"),
          error),
        h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Scrollable table" }, h("table", { id: "accounts" },
          h("thead", {}, h("tr", {}, h("th", {}, "Account"), h("th", {}, "Users"), h("th", {}, "Streams"),
            h("th", {}, "Tokens"), h("th", {}, "Apps"))),
          tbody)),
        pager)));
  list();
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
    const held = b.post_log.posts + " posts" +
      (b.post_log.oldest_ms ? ", the oldest from " + new Date(b.post_log.oldest_ms).toISOString().replace(/\.\d+Z$/, "Z") : "");
    const rows = [
      ["Status", b.status + (b.reason ? " (" + b.reason + ")" : "")],
      ["Mode", b.cluster ? "cluster member (accounts, streams, rules and posts shared over NATS)" : "single node"],
      ["Datacenter", b.datacenter],
      ["Ingest rate", rate],
      ["Streams", b.streams], ["Rules", b.rules], ["Open connections", b.connections],
      ["Post log position", b.post_log.next_seq],
      ["Post log retention", minutes(b.post_log.retention_seconds)],
      ["Post log holds", held],
    ];
    health.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
    members.replaceChildren(...membersOf(b.members));
  };
  poll();
  const timer = setInterval(poll, 5000);
  leavePage = () => clearInterval(timer);
}

function shownOnce(id, pairs) {
  return h("div", { class: "secret", role: "alert", id },
    h("p", {}, h("strong", {}, "Shown once: copy now.")),
    h("dl", {}, pairs.flatMap(([k, v]) =>
      [h("dt", {}, k), h("dd", {}, h("code", {}, v), " ", copyButton(v, k))])));
}

// A number input for a limit: empty means "the default".
function limitInput(id, label, value, min) {
  const input = h("input", { id, type: "number", min: min || "1", placeholder: "default", inputmode: "numeric" });
  if (value !== undefined && value !== null) input.value = String(value);
  return field(label, input);
}

async function accountPage(name) {
  const base = "/admin/accounts/" + enc(name);
  const r = await api("GET", base);
  if (!r.ok) { page("Account " + name, h("p", { class: "error" }, errorText(r))); return; }
  const acct = r.body;
  const [apps, tokens] = await Promise.all([api("GET", base + "/apps"), api("GET", base + "/tokens")]);
  const reload = () => accountPage(name);
  const action = (errorEl, fn) => async (e) => {
    e.preventDefault();
    errorEl.textContent = "";
    const res = await fn();
    if (!res.ok) { errorEl.textContent = errorText(res); return; }
    say("Done.");
    reload();
  };
  const remove = (path, question, done) => async () => {
    if (!confirm(question)) return;
    const d = await api("DELETE", base + path);
    if (!d.ok) { say(errorText(d)); return; }
    say(done);
    reload();
  };

  // Users.
  const users = h("ul", { id: "users" }, acct.users.map((u) => h("li", {},
    u + " ", h("button", {
      type: "button", class: "danger", "aria-label": "Delete user " + u,
      onclick: remove("/users/" + enc(u), "Delete user " + u + "? Its streams are closed and its console sessions end.", "User " + u + " deleted."),
    }, "Delete"))));
  const uName = h("input", { id: "user-name", required: true, autocomplete: "off" });
  const uPass = h("input", { id: "user-password", type: "password", required: true, autocomplete: "new-password" });
  const uErr = h("p", { class: "error", role: "alert", id: "user-error" });

  // Streams (those that exist; Powerstream's rule set and v2 streams are made on first use).
  const sLabel = h("input", { id: "stream-label", required: true, autocomplete: "off" });
  const sProduct = h("select", { id: "stream-product" },
    h("option", { value: "powertrack" }, "PowerTrack"),
    h("option", { value: "decahose" }, "Decahose"),
    h("option", { value: "firehose" }, "Firehose"),
    h("option", { value: "compliance" }, "Compliance firehose"),
    h("option", { value: "powertrack-replay" }, "PowerTrack Replay"));
  const sConn = limitInput("stream-max-connections", "Max connections", null);
  const sRules = limitInput("stream-max-rules", "Max rules", null, "0");
  const sErr = h("p", { class: "error", role: "alert", id: "stream-error" });
  const editStream = (s) => () => {
    sLabel.value = s.label;
    sProduct.value = s.product;
    $("#stream-max-connections").value = s.max_connections;
    $("#stream-max-rules").value = s.max_rules === undefined ? "" : s.max_rules;
    say("Editing the limits of " + s.label + " (" + s.product + "): change them and save.");
    $("#stream-max-connections").focus();
  };
  const existing = acct.streams.filter((s) => s.exists !== false && s.product !== "powerstream" && !s.product.startsWith("v2"));
  const streams = h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Scrollable table" }, h("table", { id: "streams" },
    h("thead", {}, h("tr", {}, h("th", {}, "Label"), h("th", {}, "Product"), h("th", {}, "Limits"), h("th", {}, "Now"), h("th", {}, "Actions"))),
    h("tbody", {}, existing.map((s) => h("tr", {},
      h("td", {}, s.label), h("td", {}, s.product),
      h("td", {}, s.max_connections + " connections" + (s.max_rules !== undefined ? ", " + s.max_rules + " rules" : "")),
      h("td", {}, s.connections + " open" + (s.rule_count !== undefined ? ", " + s.rule_count + " rules" : "")),
      h("td", { class: "row" },
        h("button", { type: "button", class: "secondary", "aria-label": "Edit limits of stream " + s.label + " (" + s.product + ")", onclick: editStream(s) }, "Edit limits"),
        h("button", {
          type: "button", class: "danger", "aria-label": "Delete stream " + s.label + " (" + s.product + ")",
          onclick: remove("/streams/" + enc(s.label) + "?product=" + enc(s.product),
            "Delete stream " + s.label + " (" + s.product + ") and its rules?", "Stream deleted."),
        }, "Delete")))))));

  // Powerstream tokens.
  const tLabel = h("input", { id: "token-label", autocomplete: "off" });
  const tErr = h("p", { class: "error", role: "alert", id: "token-error" });
  const tShown = h("div", {});
  const tokenList = h("ul", { id: "tokens" }, ((tokens.body && tokens.body.tokens) || []).map((t) => h("li", {},
    h("code", {}, t.prefix), " " + (t.label || "(no label)") + " · created " + t.created +
      " · last used " + (t.last_used || "not since this node started") + " ",
    h("button", {
      type: "button", class: "danger", "aria-label": "Revoke token " + t.prefix,
      onclick: remove("/tokens/" + enc(t.prefix), "Revoke token " + t.prefix + "? It is refused at once and its streams are closed.", "Token revoked."),
    }, "Revoke"))));

  // v2 apps.
  const appName = h("input", { id: "app-name", required: true, autocomplete: "off" });
  const appErr = h("p", { class: "error", role: "alert", id: "app-error" });
  const appSecret = h("div", { id: "app-secret" });
  const appList = h("ul", { id: "apps" }, ((apps.body && apps.body.apps) || []).map((a) => {
    const key = a.app_id;
    const err = h("p", { class: "error", role: "alert" });
    const limits = h("form", { class: "limits", "aria-label": "Limits of app " + a.name, onsubmit: action(err, () => {
      const body = {};
      for (const k of ["max_rules", "max_rule_chars", "max_connections"]) {
        const v = $("#app-" + key + "-" + k).value;
        body[k] = v === "" ? null : Number(v);
      }
      return api("PUT", base + "/apps/" + enc(key), body);
    }) },
      h("div", { class: "row" },
        limitInput("app-" + key + "-max_rules", "Max rules", a.max_rules, "0"),
        limitInput("app-" + key + "-max_rule_chars", "Max rule characters", a.max_rule_chars),
        limitInput("app-" + key + "-max_connections", "Max connections", a.max_connections)),
      h("button", { type: "submit", "aria-label": "Save limits of app " + a.name }, "Save limits"), err);
    return h("li", {},
      h("div", {}, h("strong", {}, a.name), " · " + a.app_id + " · consumer key ", h("code", {}, a.consumer_key), " ",
        h("button", {
          type: "button", class: "danger", "aria-label": "Delete app " + a.name,
          onclick: remove("/apps/" + enc(key), "Delete app " + a.name + "? Its credentials are refused at once; its v2 streams and rules are deleted.", "App deleted."),
        }, "Delete")),
      limits);
  }));

  // Deleting the account: the name typed again is the confirmation.
  const dName = h("input", { id: "delete-account-confirm", autocomplete: "off" });
  const dErr = h("p", { class: "error", role: "alert", id: "delete-account-error" });

  page("Account " + acct.account,
    h("p", {}, h("a", { href: "#/operator" }, "All accounts")),
    h("div", { class: "grid" },
      h("section", { class: "card", "aria-labelledby": "u-h" },
        h("h3", { id: "u-h" }, "Users (basic auth)"), users,
        h("form", { id: "user-form", onsubmit: action(uErr, () =>
          api("PUT", base + "/users/" + enc(uName.value.trim()), { password: uPass.value })) },
          h("div", { class: "row" }, field("Username", uName), field("Password", uPass)),
          h("button", { type: "submit" }, "Create user or set password"), uErr)),
      h("section", { class: "card", "aria-labelledby": "t-h" },
        h("h3", { id: "t-h" }, "Powerstream tokens"), tokenList,
        h("form", { id: "token-form", onsubmit: async (e) => {
          e.preventDefault();
          tErr.textContent = "";
          const res = await api("POST", base + "/tokens", tLabel.value.trim() ? { label: tLabel.value.trim() } : {});
          if (!res.ok) { tErr.textContent = errorText(res); return; }
          await reload();
          $("#token-shown").replaceChildren(shownOnce("token-secret", [["token", res.body.token]]));
        } },
          field("Label (optional)", tLabel), h("button", { type: "submit" }, "Create token"), tErr),
        h("div", { id: "token-shown" }, tShown))),
    h("section", { class: "card", "aria-labelledby": "s-h" },
      h("h3", { id: "s-h" }, "Streams"), streams,
      h("form", { id: "stream-form", onsubmit: action(sErr, () => {
        const body = { product: sProduct.value };
        const conn = $("#stream-max-connections").value;
        const rules = $("#stream-max-rules").value;
        if (conn) body.max_connections = Number(conn);
        if (rules) body.max_rules = Number(rules);
        return api("PUT", base + "/streams/" + enc(sLabel.value.trim()), body);
      }) },
        h("div", { class: "row" }, field("Label", sLabel), field("Product", sProduct), sConn, sRules),
        h("button", { type: "submit" }, "Create stream or set limits"), sErr)),
    h("section", { class: "card", "aria-labelledby": "a-h" },
      h("h3", { id: "a-h" }, "X API v2 apps"), appList,
      h("form", { id: "app-form", onsubmit: async (e) => {
        e.preventDefault();
        appErr.textContent = "";
        const res = await api("POST", base + "/apps", { name: appName.value.trim() });
        if (!res.ok) { appErr.textContent = errorText(res); return; }
        const b = res.body;
        await reload();
        $("#app-secret").replaceChildren(shownOnce("app-secret-shown",
          ["app_id", "consumer_key", "consumer_secret", "bearer_token"].map((k) => [k, b[k]])));
      } },
        field("App name", appName), h("button", { type: "submit" }, "Create app"), appErr),
      appSecret),
    h("section", { class: "card danger-zone", "aria-labelledby": "d-h" },
      h("h3", { id: "d-h" }, "Delete this account"),
      h("p", {}, "Deletes the account with its users, streams and rules, tokens and apps, and closes its open streams. This cannot be undone."),
      h("form", { id: "delete-account-form", onsubmit: async (e) => {
        e.preventDefault();
        dErr.textContent = "";
        if (dName.value !== acct.account) { dErr.textContent = "Type the account's name, " + acct.account + ", to confirm."; return; }
        const res = await api("DELETE", base);
        if (!res.ok) { dErr.textContent = errorText(res); return; }
        notice = "Account " + acct.account + " deleted.";
        location.hash = "#/operator";
      } },
        field("Type the account's name to confirm", dName),
        h("button", { type: "submit", class: "danger", id: "delete-account" }, "Delete account " + acct.account), dErr)));
}

// ---- customer ---------------------------------------------------------------------

const PRODUCT_NAMES = {
  powertrack: "PowerTrack", decahose: "Decahose", firehose: "Firehose", powerstream: "Powerstream",
  "v2-filtered": "X API v2 filtered stream", "v2-sample": "X API v2 sampled stream",
  "v2-sample10": "X API v2 10% sampled stream", "v2-firehose": "X API v2 firehose",
  compliance: "Compliance firehose", "powertrack-replay": "PowerTrack Replay",
};

function credentialNote(s, username) {
  if (s.product === "powerstream") return "Authenticate with a Powerstream token (TOKEN): the operator creates them.";
  if (s.product.startsWith("v2")) return "Authenticate with the bearer token of app " + (s.app || s.label) + " (APP_BEARER_TOKEN), or trade its consumer key and secret for it at /oauth2/token.";
  return "curl asks for the password of " + username + ".";
}

async function streamsPage() {
  const r = await api("GET", "/account");
  if (!r.ok) { page("Streams", h("p", { class: "error" }, errorText(r))); return; }
  const cards = r.body.streams.map((s) => {
    const id = "st-" + s.product + "-" + s.label;
    const title = (s.app ? "app " + s.app : s.label) + " · " + (PRODUCT_NAMES[s.product] || s.product);
    const links = [];
    if (s.product === "powertrack" || s.product === "powerstream" || s.product === "powertrack-replay") {
      const linkId = s.product === "powertrack" ? s.label : s.product === "powerstream" ? s.product : "replay-" + s.label;
      links.push(h("a", { href: "#/rules/" + s.product + "/" + enc(s.label), id: "rules-link-" + linkId }, "Rules"));
    }
    if (s.product === "powertrack") links.push(h("a", { href: "#/live/" + enc(s.label), id: "live-link-" + s.label }, "Live view"));
    return h("section", { class: "card", id, "aria-labelledby": id + "-h" },
      h("h3", { id: id + "-h" }, title),
      s.exists === false ? h("p", { class: "muted" }, "Made at its first call.") : null,
      h("dl", {},
        h("dt", {}, "Stream URL"), h("dd", {}, h("code", {}, s.stream_url), " ", copyButton(s.stream_url, "stream URL of " + title)),
        s.rules_url ? [h("dt", {}, "Rules URL"), h("dd", {}, h("code", {}, s.rules_url), " ", copyButton(s.rules_url, "rules URL of " + title))] : [],
        s.partitions ? [h("dt", {}, "Partitions"), h("dd", {}, "1 to " + s.partitions)] : [],
        h("dt", {}, "Connections"), h("dd", {}, s.connections + " open of " + s.max_connections),
        s.rule_count !== undefined ? [h("dt", {}, "Rules"), h("dd", {}, s.rule_count + " of " + s.max_rules)] : []),
      links.length ? h("p", { class: "row" }, links) : null,
      h("h4", {}, "Try it"),
      h("p", { class: "muted" }, credentialNote(s, r.body.username)),
      s.curl.map((c) => h("div", {}, h("span", { class: "muted" }, c.what),
        h("div", { class: "cmd" }, h("pre", {}, c.command), copyButton(c.command, c.what + " (" + title + ")")))));
  });
  page("Streams of " + r.body.account,
    cards.length ? cards : h("p", {}, "This account has no streams yet: ask the operator."));
}

async function rulesPage(product, label) {
  const query = product === "powertrack" ? "" : "?product=" + enc(product);
  const base = "/streams/" + enc(label) + "/rules";
  const title = product === "powertrack" ? "Rules of " + label
    : product === "powertrack-replay" ? "Replay rules of " + label : "Powerstream rules";
  const r = await api("GET", base + query);
  if (!r.ok) { page(title, h("p", { class: "error" }, errorText(r))); return; }
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
          const d = await api("DELETE", base + "/" + enc(x.id) + query);
          if (!d.ok) { say(errorText(d)); return; }
          say("Rule deleted.");
          rules = rules.filter((y) => y.id !== x.id);
          draw();
        },
      }, "Delete")))));
  };
  search.addEventListener("input", draw);
  const reload = async () => {
    const again = await api("GET", base + query);
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
    const res = await api("POST", base + query, { rules: [rule] });
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
    const res = await api("POST", base + query, body);
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
    const a = h("a", { href: URL.createObjectURL(new Blob([json], { type: "application/json" })), download: (product === "powertrack" ? label : product === "powertrack-replay" ? label + "-replay" : product) + "-rules.json" });
    document.body.append(a);
    a.click();
    a.remove();
  };
  page(title,
    product === "powertrack" ? h("p", {}, h("a", { href: "#/live/" + enc(label) }, "Live view of " + label)) : null,
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
    source.onerror = async () => {
      // One connection at a time: close this one and reconnect after a growing delay,
      // instead of the browser's fixed-interval retries.
      close();
      if (stopped) return;
      state.textContent = "Disconnected.";
      // Ended because the session did (signed out, user deleted)? Then to the sign-in page.
      const who = await api("GET", "/session");
      if (stopped) return;
      if (who.status === 401) {
        stopped = true;
        me = null;
        renderWho();
        notice = "Your session has ended: sign in again.";
        location.hash = "#/signin";
        return;
      }
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

// ---- usage ------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// "202612011400" → "2026-12-01 14:00" (UTC).
function bucketLabel(b, bucket) {
  const day = b.slice(0, 4) + "-" + b.slice(4, 6) + "-" + b.slice(6, 8);
  return bucket === "hour" ? day + " " + b.slice(8, 10) + ":" + b.slice(10, 12) : day;
}

// A bar chart of one count per bucket: drawn as SVG by hand (a few rectangles need no
// library), with the numbers also in the table next to it.
function barChart(id, title, labels, values) {
  const w = 600, hgt = 160, pad = 24;
  const most = Math.max(1, ...values);
  const step = (w - pad) / Math.max(1, values.length);
  const bars = values.map((v, i) => {
    const bh = Math.round((v / most) * (hgt - pad));
    return svg("rect", { x: pad + i * step + 1, y: hgt - pad - bh, width: Math.max(1, step - 2), height: bh },
      svg("title", {}, labels[i] + ": " + v));
  });
  return svg("svg", { id, class: "chart", viewBox: "0 0 " + w + " " + hgt, role: "img", "aria-label": title + ": at most " + most + " per bucket, " + values.reduce((a, b) => a + b, 0) + " in all" },
    svg("line", { x1: pad, y1: hgt - pad, x2: w, y2: hgt - pad, stroke: "#57606a" }),
    svg("text", { x: 0, y: 12, "font-size": 11, fill: "#57606a" }, String(most)),
    svg("text", { x: 0, y: hgt - pad, "font-size": 11, fill: "#57606a" }, "0"),
    svg("text", { x: pad, y: hgt - 6, "font-size": 11, fill: "#57606a" }, labels[0] || ""),
    svg("text", { x: w, y: hgt - 6, "font-size": 11, fill: "#57606a", "text-anchor": "end" }, labels[labels.length - 1] || ""),
    ...bars);
}

function yyyymmdd0000(date) {
  return date.toISOString().slice(0, 10).replace(/-/g, "") + "0000";
}

async function usagePage(bucket) {
  bucket = bucket === "day" ? "day" : "hour";
  let query = "?bucket=" + bucket;
  if (bucket === "day") {
    const now = new Date();
    const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - 29));
    query += "&from=" + yyyymmdd0000(from);
  }
  const r = await api("GET", "/usage" + query);
  if (!r.ok) { page("Usage", h("p", { class: "error" }, errorText(r))); return; }
  const u = r.body;
  const labels = u.buckets.map((b) => bucketLabel(b, bucket));
  const choose = h("select", { id: "usage-bucket", onchange: (e) => { location.hash = "#/usage/" + e.target.value; } },
    h("option", { value: "hour", selected: bucket === "hour" }, "By hour, the last 24 hours"),
    h("option", { value: "day", selected: bucket === "day" }, "By day, the last 30 days"));
  const cards = u.streams.map((s) => {
    const id = "usage-" + s.product + "-" + s.label;
    const delivered = s.usage.map((x) => x.activities);
    const m = s.rule_matches_last_hour;
    const ruleRows = (list, withCount) => list.map((x) => h("tr", {},
      h("td", {}, h("code", {}, x.value)), h("td", {}, x.tag || ""), withCount ? h("td", {}, String(x.matches)) : null));
    return h("section", { class: "card", id, "aria-labelledby": id + "-h" },
      h("h3", { id: id + "-h" }, s.label + " · " + (PRODUCT_NAMES[s.product] || s.product) + (s.deleted ? " (deleted)" : "")),
      h("dl", {},
        h("dt", {}, "Posts delivered"), h("dd", {}, String(s.total.activities) + (s.total.replayed ? " (and " + s.total.replayed + " replayed)" : "")),
        s.deleted ? [] : [h("dt", {}, "Connections now"), h("dd", {}, String(s.connections))],
        h("dt", {}, "Peak connections"), h("dd", {}, String(s.total.peak_connections)),
        s.rules !== undefined && s.rules !== null ? [h("dt", {}, "Rules"), h("dd", {}, String(s.rules))] : []),
      barChart(id + "-chart", "Posts delivered to " + s.label, labels, delivered),
      h("details", {},
        h("summary", {}, "Per " + bucket),
        h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Usage of " + s.label + " per " + bucket },
          h("table", { id: id + "-table" },
            h("thead", {}, h("tr", {}, h("th", {}, bucket === "hour" ? "Hour (UTC)" : "Day (UTC)"), h("th", {}, "Posts delivered"), h("th", {}, "Replayed"), h("th", {}, "Peak connections"))),
            h("tbody", {}, s.usage.map((x, i) => h("tr", {},
              h("td", {}, labels[i]), h("td", {}, String(x.activities)), h("td", {}, String(x.replayed)), h("td", {}, String(x.peak_connections)))))))),
      m ? [
        h("h4", {}, "Rule matches, the last hour"),
        h("p", { class: "muted" }, m.total_matches + " matches by " + m.matched_rules + " rules; " + m.never_matched_count + " rules never matched."),
        m.top.length ? h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Rules of " + s.label + " that matched most" },
          h("table", { id: id + "-top" },
            h("caption", {}, "Matched most"),
            h("thead", {}, h("tr", {}, h("th", {}, "Rule"), h("th", {}, "Tag"), h("th", {}, "Matches"))),
            h("tbody", {}, ruleRows(m.top, true)))) : null,
        m.never_matched.length ? h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Rules of " + s.label + " that never matched" },
          h("table", { id: id + "-never" },
            h("caption", {}, "Never matched" + (m.never_matched_count > m.never_matched.length ? " (the first " + m.never_matched.length + ")" : "")),
            h("thead", {}, h("tr", {}, h("th", {}, "Rule"), h("th", {}, "Tag"))),
            h("tbody", {}, ruleRows(m.never_matched, false)))) : null,
      ] : null);
  });
  page("Usage of " + u.account,
    h("div", { class: "row" }, field("Period", choose)),
    h("p", { class: "muted" }, "Posts delivered count each post once per stream, however many connections received it. Times are UTC."),
    cards.length ? cards : h("p", {}, "No usage yet."));
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", route);
