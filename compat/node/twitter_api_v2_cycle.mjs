// npm twitter-api-v2 through the whole filtered-stream cycle against sluice. The only
// change to the client is its v2 prefix: `${SLUICE_COMPAT_URL}/2/` instead of
// https://api.x.com/2/.

import {
  BEARER, URL_BASE, RECEIVE_TIMEOUT_MS, check, checkAdded, checkAuthor, checkMatchingRules,
  checkNonmatching, checkPost, feed, keyword, load, received, step, within,
} from "./cycle.mjs";

const { TwitterApi, TwitterApiv2, ETwitterStreamEvent } = load("twitter-api-v2");

/** The client's v2 API with sluice's prefix. `cloneWithPrefix` is the library's way; in
 * 1.29.1 it calls the class constructor without `new` and throws a TypeError, so then this
 * does what it means to do: a TwitterApiv2 sharing the client's credentials, whose prefix
 * is set with the library's own `setPrefix`. */
function v2WithPrefix(client, prefix) {
  try {
    return client.v2.cloneWithPrefix(prefix);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    console.log(`cloneWithPrefix failed (${error.message}); setting the prefix on a new TwitterApiv2`);
    const v2 = new TwitterApiv2(client);
    v2.setPrefix(prefix);
    return v2;
  }
}

/** Connects a search stream, asking for the author with its username. */
async function connect(v2) {
  const stream = await v2.searchStream({ expansions: "author_id", "user.fields": "username" });
  stream.autoReconnect = false;
  return stream;
}

/** The first stream line whose post has the keyword, and the texts of the posts before it. */
function waitForMatch(stream, match) {
  const texts = [];
  const found = new Promise((resolve, reject) => {
    stream.on(ETwitterStreamEvent.Data, (line) => {
      const text = line?.data?.text ?? "";
      texts.push(text);
      if (text.includes(match)) resolve(line);
    });
    stream.on(ETwitterStreamEvent.DataError, (line) => console.log("stream error payload", JSON.stringify(line)));
    stream.on(ETwitterStreamEvent.ConnectionError, (error) => reject(error));
    stream.on(ETwitterStreamEvent.ConnectionClosed, () => reject(new Error("the stream closed before the post")));
  });
  return within(RECEIVE_TIMEOUT_MS, `no post containing ${match}`, found).then((line) => [line, texts]);
}

async function addRule(v2, value, tag) {
  const answer = await v2.updateStreamRules({ add: [{ value, tag }] });
  return checkAdded(answer, value, tag);
}

const v2 = v2WithPrefix(new TwitterApi(BEARER), `${URL_BASE}/2/`);
const [wordA, tagA] = [keyword("a"), "compat-tag-a"];
const [wordB, tagB] = [keyword("b"), "compat-tag-b"];

const ruleA = await step("add-rules", () => addRule(v2, wordA, tagA));

await step("list-rules", async () => {
  const listed = (await v2.streamRules()).data ?? [];
  const rules = listed.map((r) => [r.id, r.value, r.tag]);
  check(JSON.stringify(rules) === JSON.stringify([[ruleA, wordA, tagA]]), `the rule list is ${JSON.stringify(listed)}`);
});

const stream = await step("connect-stream", async () => {
  const stream = await connect(v2);
  feed("first", wordA);
  return stream;
});

const [line, texts] = await step("receive-match", async () => {
  const [line, texts] = await waitForMatch(stream, wordA);
  received("first", line.data?.id);
  checkPost(line.data, wordA);
  checkMatchingRules(line, ruleA, tagA);
  return [line, texts];
});
stream.close();

await step("expansions", () => checkAuthor(line), { fatal: false });
await step("no-nonmatching", () => checkNonmatching(texts), { fatal: false });

await step("delete-rules", async () => {
  const answer = await v2.updateStreamRules({ delete: { ids: [ruleA] } });
  check(answer.meta?.summary?.deleted === 1, `meta.summary is ${JSON.stringify(answer.meta?.summary)}, not deleted 1`);
  const left = (await v2.streamRules()).data ?? [];
  check(left.length === 0, `rules left after the delete: ${JSON.stringify(left)}`);
});

await step("reconnect", async () => {
  const ruleB = await addRule(v2, wordB, tagB);
  const again = await connect(v2);
  feed("second", wordB, [wordA]);
  const [line, texts] = await waitForMatch(again, wordB);
  received("second", line.data?.id);
  again.close();
  checkNonmatching(texts, [wordA]);
  checkPost(line.data, wordB);
  checkMatchingRules(line, ruleB, tagB);
  await v2.updateStreamRules({ delete: { ids: [ruleB] } });
});
