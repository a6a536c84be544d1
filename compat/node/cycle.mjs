// What the Node scenarios share: the settings the harness passes in the environment,
// step reporting, the harness's feeding protocol (see compat/harness.py), and loading the
// pinned clients from the install outside the clone (SLUICE_COMPAT_NODE_MODULES).

import { createRequire } from "node:module";
import { randomBytes } from "node:crypto";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through compat/run`);
  return value;
};

export const URL_BASE = env("SLUICE_COMPAT_URL");
export const BEARER = env("SLUICE_COMPAT_BEARER");
export const AUTHOR_ID = env("SLUICE_COMPAT_AUTHOR_ID");
export const AUTHOR_USERNAME = env("SLUICE_COMPAT_AUTHOR_USERNAME");

/** How long a scenario waits for a fed post before the step fails. */
export const RECEIVE_TIMEOUT_MS = 35_000;

/** A package of the pinned install (compat/node/package-lock.json). */
export function load(name) {
  const require = createRequire(join(env("SLUICE_COMPAT_NODE_MODULES"), "..", "index.js"));
  return require(name);
}

function event(payload) {
  process.stdout.write(`@@ ${JSON.stringify(payload)}\n`);
}

export class Failure extends Error {}

export function check(condition, message) {
  if (!condition) throw new Failure(message);
}

/** Runs one step and reports it passed or why it failed. A failed step ends the scenario,
 * unless `fatal` is false: a check the later steps do not depend on (the exit status is
 * then 1 at the end). */
export async function step(name, body, { fatal = true } = {}) {
  console.log(`--- ${name}`);
  try {
    const result = await body();
    event({ step: name, ok: true });
    return result;
  } catch (error) {
    if (!(error instanceof Failure)) console.log(error);
    const detail = error instanceof Failure ? error.message : describe(error);
    event({ step: name, ok: false, detail: detail.slice(0, 500) });
    process.exitCode = 1;
    if (fatal) process.exit(1);
  }
}

/** A client error with what the server answered, when the client kept it. */
function describe(error) {
  const parts = [`${error?.name ?? "Error"}: ${error?.message ?? error}`];
  const status = error?.code ?? error?.status;
  if (typeof status === "number") parts.push(`HTTP ${status}`);
  const body = error?.data ?? error?.error;
  if (body !== undefined) parts.push(JSON.stringify(body));
  return parts.join(" ");
}

/** A rule keyword no other post contains. */
export function keyword(label) {
  return `compat${label}${randomBytes(4).toString("hex")}`;
}

/** Asks the harness to start ingesting this phase's posts. */
export function feed(phase, match, stale = []) {
  event({ feed: phase, match, stale });
}

/** Tells the harness the matching post arrived, so it stops feeding. */
export function received(phase, id) {
  event({ received: phase, id });
}

/** X's v2 ids are strings of decimal digits. */
export function isId(value) {
  return typeof value === "string" && /^[0-9]+$/.test(value);
}

/** The fed matching post is `KEYWORD post ID`: text and id must agree. */
export function checkPost(post, match) {
  check(isId(post?.id), `post id ${JSON.stringify(post?.id)} is not a string of digits`);
  const expected = `${match} post ${post.id}`;
  check(post.text === expected, `text ${JSON.stringify(post.text)} is not the fed post's text ${JSON.stringify(expected)}`);
}

/** The post's `matching_rules` name exactly this rule. */
export function checkMatchingRules(line, ruleId, tag) {
  const rules = JSON.stringify(line.matching_rules);
  check(rules === JSON.stringify([{ id: ruleId, tag }]),
    `matching_rules ${rules}, expected only id ${ruleId} tag ${JSON.stringify(tag)}`);
}

/** `includes.users` is the compat author, with `username`, and `data.author_id` links to
 * it (X documents the expansion's id in `data` even when `tweet.fields` does not ask for
 * it: docs.x.com, "Expansions"). Both problems are reported when both occur. */
export function checkAuthor(line) {
  const problems = [];
  const users = (line.includes?.users ?? []).map((u) => [u.id, u.username]);
  if (JSON.stringify(users) !== JSON.stringify([[AUTHOR_ID, AUTHOR_USERNAME]])) {
    problems.push(`includes.users is ${JSON.stringify(line.includes?.users)}, expected ${AUTHOR_USERNAME} (${AUTHOR_ID})`);
  }
  if (line.data?.author_id !== AUTHOR_ID) {
    problems.push(`data.author_id is ${JSON.stringify(line.data?.author_id)}, expected ${AUTHOR_ID}`);
  }
  check(problems.length === 0, problems.join("; "));
}

/** No post other than the rule's own arrived before the match. */
export function checkNonmatching(texts, stale = []) {
  const unrelated = texts.filter((t) => t.startsWith("unrelated"));
  check(unrelated.length === 0, `a post no rule matches was delivered: ${JSON.stringify(unrelated[0])}`);
  for (const word of stale) {
    const deleted = texts.filter((t) => t.includes(word));
    check(deleted.length === 0, `a post matching only a deleted rule was delivered: ${JSON.stringify(deleted[0])}`);
  }
}

/** The add answer has one created rule with a string id and the value sent. */
export function checkAdded(answer, value, tag) {
  check(!answer.errors, `errors in the add answer: ${JSON.stringify(answer.errors)}`);
  check(Array.isArray(answer.data) && answer.data.length === 1, `the add answer is ${JSON.stringify(answer)}`);
  const rule = answer.data[0];
  check(isId(rule.id), `rule id ${JSON.stringify(rule.id)} is not a string of digits`);
  check(rule.value === value, `rule value ${JSON.stringify(rule.value)}, expected ${JSON.stringify(value)}`);
  check(rule.tag === undefined || rule.tag === tag, `rule tag ${JSON.stringify(rule.tag)}, expected ${JSON.stringify(tag)}`);
  check(answer.meta?.summary?.created === 1, `meta.summary is ${JSON.stringify(answer.meta?.summary)}, not created 1`);
  return rule.id;
}

/** Resolves with the value, or fails the step after `ms`. */
export function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`${what} within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
