// npm twitter-api-sdk (X's official TypeScript SDK) through the whole filtered-stream cycle
// against sluice. The only change to the client is its `base_url` request option.

import {
  BEARER, URL_BASE, RECEIVE_TIMEOUT_MS, check, checkAdded, checkAuthor, checkMatchingRules,
  checkNonmatching, checkPost, feed, keyword, load, received, step, within,
} from "./cycle.mjs";

const { Client } = load("twitter-api-sdk");

/** Reads the search stream until a post has the keyword; returns that line and the texts
 * of the posts before it. Leaving the loop aborts the request (the SDK's own cleanup). */
function streamUntil(client, phase, match, stale = []) {
  const texts = [];
  const reading = (async () => {
    const lines = client.tweets.searchStream({ expansions: ["author_id"], "user.fields": ["username"] });
    // The SDK sends the request when the first line is asked for.
    feed(phase, match, stale);
    for await (const line of lines) {
      if (line.errors) console.log("stream errors", JSON.stringify(line.errors));
      const text = line?.data?.text ?? "";
      texts.push(text);
      if (text.includes(match)) return line;
    }
    throw new Error("the stream ended before the post");
  })();
  return within(RECEIVE_TIMEOUT_MS, `no post containing ${match}`, reading).then((line) => [line, texts]);
}

async function addRule(client, value, tag) {
  const answer = await client.tweets.addOrDeleteRules({ add: [{ value, tag }] });
  return checkAdded(answer, value, tag);
}

const client = new Client(BEARER, { base_url: URL_BASE });
const [wordA, tagA] = [keyword("a"), "compat-tag-a"];
const [wordB, tagB] = [keyword("b"), "compat-tag-b"];

const ruleA = await step("add-rules", () => addRule(client, wordA, tagA));

await step("list-rules", async () => {
  const listed = (await client.tweets.getRules()).data ?? [];
  const rules = listed.map((r) => [r.id, r.value, r.tag]);
  check(JSON.stringify(rules) === JSON.stringify([[ruleA, wordA, tagA]]), `the rule list is ${JSON.stringify(listed)}`);
});

// The SDK's stream is a generator that connects on its first read, so connecting and
// receiving are one call; a refused connection fails connect-stream.
const [line, texts] = await step("connect-stream", () => streamUntil(client, "first", wordA));

await step("receive-match", () => {
  received("first", line.data?.id);
  checkPost(line.data, wordA);
  checkMatchingRules(line, ruleA, tagA);
});
await step("expansions", () => checkAuthor(line), { fatal: false });
await step("no-nonmatching", () => checkNonmatching(texts), { fatal: false });

await step("delete-rules", async () => {
  const answer = await client.tweets.addOrDeleteRules({ delete: { ids: [ruleA] } });
  check(answer.meta?.summary?.deleted === 1, `meta.summary is ${JSON.stringify(answer.meta?.summary)}, not deleted 1`);
  const left = (await client.tweets.getRules()).data ?? [];
  check(left.length === 0, `rules left after the delete: ${JSON.stringify(left)}`);
});

await step("reconnect", async () => {
  const ruleB = await addRule(client, wordB, tagB);
  const [line, texts] = await streamUntil(client, "second", wordB, [wordA]);
  received("second", line.data?.id);
  checkNonmatching(texts, [wordA]);
  checkPost(line.data, wordB);
  checkMatchingRules(line, ruleB, tagB);
  await client.tweets.addOrDeleteRules({ delete: { ids: [ruleB] } });
});
