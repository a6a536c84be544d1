//! `sluice rules` against the X API v2 filtered stream's rules API
//! (`/2/tweets/search/stream/rules`, docs/compatibility.md §7.1–§7.2), with an app's
//! bearer token: list (every page, following `meta.next_token`), add and delete (one
//! operation per request: `{"add":[…]}`, `{"delete":{"ids"|"values":[…]}}`,
//! `delete_all=true`), `dry_run=true`, and the rule counts.
//!
//! Output follows `sluice rules`' conventions: the server's JSON on stdout (pages and
//! batches merged into one body of X's shape: `data` concatenated, `meta.summary` added
//! up, `errors` concatenated, `sent` of the last answer), one line per rule problem on
//! stderr (a duplicate with the id of the rule that has the value, an invalid rule with
//! each of its `details`, a delete entry that named no rule), and exit code 2 when a rule
//! is invalid.

use std::io::{self, Write as _};

use anyhow::{Context as _, bail};
use hyper::Method;
use hyper::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use url::Url;

use crate::client::http::{Auth, HttpClient, Reply, Request, send_waiting_out_429};
use crate::client::output::{pretty_stdout, write_json};

use super::rules::{EXIT_ERROR, EXIT_INVALID_RULES, EXIT_OK};

/// Rules per list page: X's largest `max_results`.
const PAGE_SIZE: u32 = 1000;
/// Rules per add or delete request: X documents no cap; 1,000 keeps a body well under the
/// server's body limit, and 25,000 rules take 25 of an app's 100 changes per 15 minutes.
pub const BATCH: usize = 1000;

/// Whether `url` is the v2 filtered stream's rules API (or its `counts`).
pub fn is_v2(url: &Url) -> bool {
    url.path().starts_with("/2/tweets/search/stream/rules")
}

/// An app's session with the v2 rules API.
pub struct V2Rules {
    client: HttpClient,
    auth: Auth,
    /// `…/2/tweets/search/stream/rules`, without a query.
    url: Url,
}

/// A rule to add: its text and tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRule {
    /// The rule text.
    pub value: String,
    /// Its tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// What a delete names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// Rules by id.
    Ids(Vec<String>),
    /// Rules by value.
    Values(Vec<String>),
}

impl V2Rules {
    /// A session with the rules API at `url` (a `counts` URL or a query is trimmed off).
    pub fn new(client: HttpClient, auth: Auth, url: &Url) -> Self {
        let mut url = url.clone();
        url.set_query(None);
        let path = url.path().trim_end_matches('/').to_owned();
        if let Some(rules) = path.strip_suffix("/counts") {
            url.set_path(rules);
        }
        Self { client, auth, url }
    }

    async fn send(
        &self,
        what: &str,
        method: Method,
        url: &Url,
        body: Option<Value>,
    ) -> anyhow::Result<Reply> {
        let mut request = Request::new(method, url, &self.auth)?;
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&body)?);
        }
        send_waiting_out_429(&self.client, what, &request).await
    }

    /// `POST …/rules` with `query` pairs.
    fn change_url(&self, query: &[(&str, &str)]) -> Url {
        let mut url = self.url.clone();
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Prints every rule, following `next_token` page after page, as one list body.
    pub async fn list(&self) -> anyhow::Result<u8> {
        let merged = self.all_rules().await?;
        print(&merged)?;
        Ok(EXIT_OK)
    }

    /// Every page of the list, merged: `{"data":[…],"meta":{"sent","result_count"}}` (no
    /// `data` without rules, as X).
    async fn all_rules(&self) -> anyhow::Result<Value> {
        let mut rules: Vec<Value> = Vec::new();
        let mut token: Option<String> = None;
        let sent = loop {
            let mut url = self.url.clone();
            url.query_pairs_mut()
                .append_pair("max_results", &PAGE_SIZE.to_string());
            if let Some(token) = &token {
                url.query_pairs_mut().append_pair("pagination_token", token);
            }
            let page = success(self.send("list", Method::GET, &url, None).await?)?;
            let page: Value =
                serde_json::from_slice(&page.body).context("the list answer is not JSON")?;
            if let Some(Value::Array(data)) = page.get("data") {
                rules.extend(data.iter().cloned());
            }
            let next = page["meta"]["next_token"].as_str().map(str::to_owned);
            match next {
                // A server that hands out the same token again would loop for ever.
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                _ => break page["meta"]["sent"].clone(),
            }
        };
        let mut body = Map::new();
        let count = rules.len();
        if !rules.is_empty() {
            body.insert("data".to_owned(), Value::Array(rules));
        }
        body.insert(
            "meta".to_owned(),
            json!({"sent": sent, "result_count": count}),
        );
        Ok(Value::Object(body))
    }

    /// Adds `rules` in batches (or only checks them with `dry_run`); stops at the first
    /// refused batch.
    pub async fn add(&self, rules: &[NewRule], batch: usize, dry_run: bool) -> anyhow::Result<u8> {
        let query: &[(&str, &str)] = if dry_run { &[("dry_run", "true")] } else { &[] };
        let url = self.change_url(query);
        let mut merged = Merged::new(&["created", "not_created", "valid", "invalid"]);
        for (index, chunk) in rules.chunks(batch.max(1)).enumerate() {
            let reply = self
                .send("add", Method::POST, &url, Some(json!({ "add": chunk })))
                .await?;
            if reply.status.is_success() {
                merged.push(&reply.body)?;
                continue;
            }
            if index > 0 {
                eprintln!(
                    "sluice rules add: {}",
                    earlier_batches(&merged, index, chunk.len())
                );
            }
            if !has_errors(&reply.body) {
                bail!("HTTP {}: {}", reply.status, reply.error_message());
            }
            merged.push(&reply.body)?;
            merged.refused = true;
            break;
        }
        merged.report("add");
        merged.print()?;
        Ok(if merged.count("invalid") > 0 {
            EXIT_INVALID_RULES
        } else if merged.refused {
            EXIT_ERROR
        } else {
            EXIT_OK
        })
    }

    /// Deletes the rules `named` in batches (or only checks with `dry_run`).
    pub async fn delete(&self, named: Named, batch: usize, dry_run: bool) -> anyhow::Result<u8> {
        let query: &[(&str, &str)] = if dry_run { &[("dry_run", "true")] } else { &[] };
        let url = self.change_url(query);
        let (key, items) = match named {
            Named::Ids(ids) => ("ids", ids),
            Named::Values(values) => ("values", values),
        };
        let mut merged = Merged::new(&["deleted", "not_deleted"]);
        for chunk in items.chunks(batch.max(1)) {
            let body = json!({ "delete": { key: chunk } });
            let reply = success(self.send("delete", Method::POST, &url, Some(body)).await?)?;
            merged.push(&reply.body)?;
        }
        merged.report("delete");
        merged.print()?;
        Ok(EXIT_OK)
    }

    /// Deletes every rule of the app in one request (`delete_all=true`).
    pub async fn delete_all(&self, dry_run: bool) -> anyhow::Result<u8> {
        let mut query = vec![("delete_all", "true")];
        if dry_run {
            query.push(("dry_run", "true"));
        }
        let url = self.change_url(&query);
        let body = json!({ "delete": {} });
        let reply = success(self.send("delete", Method::POST, &url, Some(body)).await?)?;
        let mut merged = Merged::new(&["deleted", "not_deleted"]);
        merged.push(&reply.body)?;
        merged.print()?;
        Ok(EXIT_OK)
    }

    /// Prints the app's and the project's rule counts and caps.
    pub async fn counts(&self) -> anyhow::Result<u8> {
        let mut url = self.url.clone();
        let path = format!("{}/counts", url.path().trim_end_matches('/'));
        url.set_path(&path);
        let reply = success(self.send("counts", Method::GET, &url, None).await?)?;
        let body: Value =
            serde_json::from_slice(&reply.body).context("the counts answer is not JSON")?;
        print(&body)?;
        Ok(EXIT_OK)
    }
}

/// What is said on stderr when batch `index` (0-based) of `size` rules is refused after
/// earlier ones went through.
fn earlier_batches(merged: &Merged, index: usize, size: usize) -> String {
    format!(
        "{} rules of the {index} earlier requests were added; request {} ({size} rules) was \
         refused and later ones were not sent",
        merged.count("created"),
        index + 1
    )
}

/// The reply if it is a success, else an error with its status and X's message.
fn success(reply: Reply) -> anyhow::Result<Reply> {
    if reply.status.is_success() {
        return Ok(reply);
    }
    bail!("HTTP {}: {}", reply.status, reply.error_message())
}

/// Whether a body is X's change answer with per-rule `errors` (an add refused because of
/// invalid rules, or over the rule cap), which is printed rather than reduced to a message.
fn has_errors(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| {
        v.get("meta").is_some() && v["errors"].as_array().is_some_and(|e| !e.is_empty())
    })
}

fn print(body: &Value) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec(body)?;
    let mut out = io::stdout().lock();
    match write_json(&mut out, &bytes, pretty_stdout()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}

/// The answers of a batched add or delete, merged into one body of X's shape.
struct Merged {
    /// The `meta.summary` keys, in X's order.
    keys: &'static [&'static str],
    counts: Vec<u64>,
    data: Vec<Value>,
    errors: Vec<Value>,
    sent: Value,
    /// Whether a request was refused with per-rule errors (invalid rules, the rule cap).
    refused: bool,
}

impl Merged {
    fn new(keys: &'static [&'static str]) -> Self {
        Self {
            keys,
            counts: vec![0; keys.len()],
            data: Vec::new(),
            errors: Vec::new(),
            sent: Value::Null,
            refused: false,
        }
    }

    /// Adds one answer's rules, counts and problems.
    fn push(&mut self, body: &[u8]) -> anyhow::Result<()> {
        let body: Value =
            serde_json::from_slice(body).context("the server's answer is not JSON")?;
        let summary = &body["meta"]["summary"];
        anyhow::ensure!(
            summary.is_object(),
            "the server's answer has no meta.summary: {body}"
        );
        for (count, key) in self.counts.iter_mut().zip(self.keys) {
            *count += summary[*key].as_u64().unwrap_or(0);
        }
        if let Some(data) = body["data"].as_array() {
            self.data.extend(data.iter().cloned());
        }
        if let Some(errors) = body["errors"].as_array() {
            self.errors.extend(errors.iter().cloned());
        }
        self.sent = body["meta"]["sent"].clone();
        Ok(())
    }

    fn count(&self, key: &str) -> u64 {
        self.keys
            .iter()
            .position(|k| *k == key)
            .map_or(0, |i| self.counts[i])
    }

    /// Names each problem on stderr: `sluice rules ACTION: "VALUE": WHAT`.
    fn report(&self, action: &str) {
        for line in problem_lines(&self.errors) {
            eprintln!("sluice rules {action}: {line}");
        }
    }

    fn print(&self) -> anyhow::Result<()> {
        let mut summary = Map::new();
        for (key, count) in self.keys.iter().zip(&self.counts) {
            summary.insert((*key).to_owned(), json!(count));
        }
        let mut body = Map::new();
        if !self.data.is_empty() {
            body.insert("data".to_owned(), Value::Array(self.data.clone()));
        }
        body.insert(
            "meta".to_owned(),
            json!({"sent": self.sent, "summary": summary}),
        );
        if !self.errors.is_empty() {
            body.insert("errors".to_owned(), Value::Array(self.errors.clone()));
        }
        print(&Value::Object(body))
    }
}

/// One readable line per problem of a change answer: `"cat": DuplicateRule (rule 123
/// has this value)`, `"h:m": Reference to invalid operator 'h' (at position 1).`, `"9":
/// Not Found Error: This rule does not exist.`, or the problem's title and detail.
fn problem_lines(errors: &[Value]) -> Vec<String> {
    let mut lines = Vec::new();
    for e in errors {
        let value = e["value"]
            .as_str()
            .map(|v| format!("{v:?}: "))
            .unwrap_or_default();
        let title = e["title"].as_str().unwrap_or("problem");
        if let Some(details) = e["details"].as_array().filter(|d| !d.is_empty()) {
            for detail in details.iter().filter_map(Value::as_str) {
                lines.push(format!("{value}{detail}"));
            }
        } else if title == "DuplicateRule" {
            match e["id"].as_str() {
                Some(id) => lines.push(format!("{value}DuplicateRule (rule {id} has this value)")),
                None => lines.push(format!("{value}DuplicateRule")),
            }
        } else {
            match e["detail"].as_str() {
                Some(detail) => lines.push(format!("{value}{title}: {detail}")),
                None => lines.push(format!("{value}{title}")),
            }
        }
    }
    lines
}

/// The rules of a file: `{"add":[…]}` (a v2 add body), `{"data":[…]}` (what `rules list`
/// prints for v2) or `{"rules":[…]}` (the PowerTrack body), each rule a `value` and an
/// optional `tag`.
pub fn rules_of_file(body: &[u8]) -> anyhow::Result<Vec<NewRule>> {
    #[derive(Deserialize)]
    struct File {
        add: Option<Vec<NewRule>>,
        data: Option<Vec<NewRule>>,
        rules: Option<Vec<NewRule>>,
    }
    let file: File = serde_json::from_slice(body).context(
        "expected {\"add\":[{\"value\":\"…\",\"tag\":\"…\"}]}, {\"data\":[…]} or {\"rules\":[…]}",
    )?;
    match (file.add, file.data, file.rules) {
        (Some(rules), None, None) | (None, Some(rules), None) | (None, None, Some(rules)) => {
            Ok(rules)
        }
        (None, None, None) => bail!("expected an \"add\", \"data\" or \"rules\" list of rules"),
        _ => bail!("give one list of rules: \"add\", \"data\" or \"rules\""),
    }
}

/// The rules a delete file names: `{"delete":{"ids"|"values":[…]}}` (a v2 delete body) or
/// the ids of `{"data":[{"id":…}]}` (what `rules list` prints for v2).
pub fn named_by_file(body: &[u8]) -> anyhow::Result<Named> {
    #[derive(Deserialize)]
    struct File {
        delete: Option<Delete>,
        data: Option<Vec<Listed>>,
    }
    #[derive(Deserialize)]
    struct Delete {
        ids: Option<Vec<String>>,
        values: Option<Vec<String>>,
    }
    #[derive(Deserialize)]
    struct Listed {
        id: String,
    }
    let shapes = "expected {\"delete\":{\"ids\":[…]}}, {\"delete\":{\"values\":[…]}} or a v2 list \
                  {\"data\":[{\"id\":\"…\"}]}";
    let file: File = serde_json::from_slice(body).context(shapes)?;
    match (file.delete, file.data) {
        (
            Some(Delete {
                ids: Some(ids),
                values: None,
            }),
            None,
        ) => Ok(Named::Ids(ids)),
        (
            Some(Delete {
                ids: None,
                values: Some(values),
            }),
            None,
        ) => Ok(Named::Values(values)),
        (None, Some(listed)) => Ok(Named::Ids(listed.into_iter().map(|r| r.id).collect())),
        _ => bail!("{shapes}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_files_take_each_shape_once() {
        let want = vec![NewRule {
            value: "cat".into(),
            tag: Some("t".into()),
        }];
        for body in [
            r#"{"add":[{"value":"cat","tag":"t"}]}"#,
            r#"{"data":[{"id":"1","value":"cat","tag":"t"}],"meta":{"result_count":1}}"#,
            r#"{"rules":[{"value":"cat","tag":"t"}]}"#,
        ] {
            assert_eq!(rules_of_file(body.as_bytes()).expect(body), want, "{body}");
        }
        for bad in [
            r#"{}"#,
            r#"{"add":[],"rules":[]}"#,
            r#"{"add":[{"tag":"no value"}]}"#,
            r#"[]"#,
            "not json",
        ] {
            assert!(rules_of_file(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn delete_files_name_ids_or_values() {
        assert_eq!(
            named_by_file(br#"{"delete":{"ids":["1","2"]}}"#).unwrap(),
            Named::Ids(vec!["1".into(), "2".into()])
        );
        assert_eq!(
            named_by_file(br#"{"delete":{"values":["cat"]}}"#).unwrap(),
            Named::Values(vec!["cat".into()])
        );
        assert_eq!(
            named_by_file(br#"{"data":[{"id":"7","value":"cat"}],"meta":{}}"#).unwrap(),
            Named::Ids(vec!["7".into()])
        );
        for bad in [
            r#"{"delete":{}}"#,
            r#"{"delete":{"ids":["1"],"values":["a"]}}"#,
            r#"{"rule_ids":[1]}"#,
            r#"{"data":[{"value":"no id"}]}"#,
        ] {
            assert!(named_by_file(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn problems_read_as_one_line_each() {
        let errors = serde_json::from_str::<Vec<Value>>(
            r#"[
                {"value":"cat","id":"12","title":"DuplicateRule","type":"…/duplicate-rules"},
                {"value":"h:m","details":["Reference to invalid operator 'h' (at position 1).","Reference to invalid field 'h' (at position 1)."],"title":"UnprocessableEntity"},
                {"value":"9","detail":"This rule does not exist.","title":"Not Found Error"},
                {"title":"Rule Cap Exceeded","detail":"Too many rules."}
            ]"#,
        )
        .unwrap();
        assert_eq!(
            problem_lines(&errors),
            [
                "\"cat\": DuplicateRule (rule 12 has this value)",
                "\"h:m\": Reference to invalid operator 'h' (at position 1).",
                "\"h:m\": Reference to invalid field 'h' (at position 1).",
                "\"9\": Not Found Error: This rule does not exist.",
                "Rule Cap Exceeded: Too many rules.",
            ]
        );
    }

    #[test]
    fn batched_answers_merge_into_one_body() {
        let mut merged = Merged::new(&["created", "not_created", "valid", "invalid"]);
        merged
            .push(br#"{"data":[{"id":"1","value":"a"}],"meta":{"sent":"s1","summary":{"created":1,"not_created":1,"valid":2,"invalid":0}},"errors":[{"value":"b","id":"9","title":"DuplicateRule"}]}"#)
            .unwrap();
        merged
            .push(br#"{"data":[{"id":"2","value":"c"}],"meta":{"sent":"s2","summary":{"created":1,"not_created":0,"valid":1,"invalid":0}}}"#)
            .unwrap();
        assert_eq!(merged.counts, [2, 1, 3, 0]);
        assert_eq!(merged.data.len(), 2);
        assert_eq!(merged.errors.len(), 1);
        assert_eq!(merged.sent, "s2");
        merged
            .push(br#"{"meta":{"sent":"s3","summary":{"created":0,"not_created":1,"valid":0,"invalid":1}},"errors":[{"value":"h:m","title":"UnprocessableEntity"}]}"#)
            .unwrap();
        assert_eq!(merged.count("invalid"), 1);
        assert!(merged.push(br#"{"title":"Unauthorized"}"#).is_err());
    }

    #[test]
    fn sessions_use_the_rules_url_whatever_was_given() {
        let tls = crate::client::http::TlsArgs { cacert: None };
        let client = || HttpClient::new(&tls, None).expect("client");
        let auth = Auth::Bearer("t".into());
        for given in [
            "http://h/2/tweets/search/stream/rules",
            "http://h/2/tweets/search/stream/rules/counts",
            "http://h/2/tweets/search/stream/rules?max_results=5",
        ] {
            let session = V2Rules::new(client(), auth.clone(), &Url::parse(given).unwrap());
            assert_eq!(
                session.url.as_str(),
                "http://h/2/tweets/search/stream/rules",
                "{given}"
            );
            assert!(is_v2(&Url::parse(given).unwrap()));
        }
        assert!(!is_v2(
            &Url::parse("http://h/rules/powertrack/accounts/a/publishers/twitter/p.json").unwrap()
        ));
    }
}
