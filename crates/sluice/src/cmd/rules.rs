//! `sluice rules list|add|delete|validate|counts`: a client for the PowerTrack rules API
//! (spec docs/compatibility.md §2) and, given a `/2/tweets/search/stream/rules` URL and an
//! app's bearer token, the X API v2 filtered stream's rules API (§7, in [`super::rules_v2`])
//! for operators and scripts.
//!
//! Every action prints the server's JSON on stdout (indented on a terminal, one compact
//! line otherwise). Large inputs are sent in batches, like demian85/gnip does (5,000 rules
//! per add, 4,000 per delete, and never a body near the 5 MB limit); the answers of a
//! batched action are merged into one body of the same shape (summary counts added up,
//! details concatenated in input order, `sent` of the last answer), so a script reads the
//! same thing whatever the batch count. A 429 is waited out until `x-rate-limit-reset`.

use std::collections::HashMap;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use hyper::Method;
use hyper::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use sluice_wire::{Rule, RuleIdsRequest, RuleValue, RulesRequest};
use url::Url;

use crate::client::http::{
    Auth, Credentials, HttpClient, Reply, Request, TlsArgs, send_waiting_out_429,
};
use crate::client::output::{pretty_stdout, write_json};

use super::rules_v2::{self, V2Rules};

/// Exit code: the action succeeded.
pub(super) const EXIT_OK: u8 = 0;
/// Exit code: the request failed (HTTP error, network, unreadable input).
pub(super) const EXIT_ERROR: u8 = 1;
/// Exit code: a rule is invalid (`add` refused with 422, `validate` found one).
pub(super) const EXIT_INVALID_RULES: u8 = 2;

/// Rules per add request (demian85/gnip's batch size).
const ADD_BATCH: usize = 5_000;
/// Rules per delete request (demian85/gnip's batch size).
const DELETE_BATCH: usize = 4_000;
/// Largest request body the client builds; the API refuses bodies over 5 MB.
const MAX_BODY_BYTES: usize = 4_500_000;

const AFTER_HELP: &str = "\
RULES_URL is the stream's rules URL, as the admin API lists it, with -u USER:PASSWORD:
  https://HOST/rules/powertrack/accounts/ACCOUNT/publishers/twitter/LABEL.json
(validate posts to the matching …/LABEL/validation.json), or the X API v2 filtered
stream's rules URL with an app's --bearer token:
  https://HOST/2/tweets/search/stream/rules
On v2, list follows next_token through every page, add and delete send 1,000 rules per
request ({\"add\":[…]}, {\"delete\":{\"ids\"|\"values\":[…]}}), delete --all is
delete_all=true, --dry-run is dry_run=true (validate is an add with dry_run=true), and
counts prints the app's and the project's rule counts and caps. Duplicates, invalid rules
(with each of X's details) and deletes that named no rule are also named on stderr.

Output: the server's JSON on stdout, indented on a terminal and one compact line otherwise.
Batched requests (large adds and deletes, v2 list pages) print one merged body of the
same shape.

Exit codes:
  0  success
  1  the request failed: the HTTP status and X's message are on stderr
  2  a rule is invalid: `add` was refused (422, or 400 on v2; its body, with each rule's
     message, is on stdout) or `validate` found an invalid rule";

/// Flags of `sluice rules`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct RulesArgs {
    #[command(subcommand)]
    action: Action,
}

/// The rules API calls.
#[derive(Debug, Subcommand)]
enum Action {
    /// Print the stream's rules.
    #[command(after_help = AFTER_HELP)]
    List {
        #[command(flatten)]
        server: Server,
    },
    /// Add rules, given as arguments or in a file.
    #[command(after_help = AFTER_HELP)]
    Add(AddArgs),
    /// Delete rules by value, by id, from a file, or all of them.
    #[command(after_help = AFTER_HELP)]
    Delete(DeleteArgs),
    /// Check rules without adding them.
    #[command(after_help = AFTER_HELP)]
    Validate(ValidateArgs),
    /// Print the app's and the project's rule counts and caps (X API v2 only).
    #[command(after_help = AFTER_HELP)]
    Counts {
        #[command(flatten)]
        server: Server,
    },
}

/// Where the rules API is and who calls it.
#[derive(Debug, Args)]
struct Server {
    /// The stream's rules URL (…/rules/powertrack/accounts/ACCOUNT/publishers/twitter/LABEL.json,
    /// or …/2/tweets/search/stream/rules).
    #[arg(long, value_name = "RULES_URL")]
    url: Url,

    /// Basic-auth credentials of a user of the stream's account (PowerTrack).
    #[arg(
        short = 'u',
        long = "user",
        value_name = "USER:PASSWORD",
        env = "SLUICE_USER",
        hide_env_values = true,
        required_unless_present = "bearer"
    )]
    credentials: Option<Credentials>,

    /// An app's bearer token (the X API v2 rules API).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SLUICE_BEARER",
        hide_env_values = true,
        // Tokens are URL-safe base64, so one may begin with '-'.
        allow_hyphen_values = true
    )]
    bearer: Option<String>,

    #[command(flatten)]
    tls: TlsArgs,
}

/// Rules to add or validate.
#[derive(Debug, Args)]
struct RuleSource {
    /// Rules, one per argument (quote each one; put `--` before a rule starting with `-`).
    #[arg(value_name = "RULE")]
    values: Vec<String>,

    /// The tag of the rules given as arguments.
    #[arg(long)]
    tag: Option<String>,

    /// A JSON file of rules, {"rules":[{"value":"…","tag":"…"}]} (as `rules list` prints
    /// them; on v2 also {"add":[…]} or a v2 `rules list` output); `-` reads stdin. Sent
    /// before any rules given as arguments.
    #[arg(short = 'f', long, value_name = "FILE")]
    file: Option<PathBuf>,
}

/// Flags of `sluice rules add`.
#[derive(Debug, Args)]
struct AddArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    source: RuleSource,
    /// Rules per request [default: 5,000; 1,000 on v2].
    #[arg(long, value_name = "N", value_parser = batch_size)]
    batch_size: Option<usize>,
    /// Only check what the add would do (X API v2's dry_run=true).
    #[arg(long)]
    dry_run: bool,
}

/// Flags of `sluice rules validate`.
#[derive(Debug, Args)]
struct ValidateArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    source: RuleSource,
    /// Rules per request [default: 5,000; 1,000 on v2].
    #[arg(long, value_name = "N", value_parser = batch_size)]
    batch_size: Option<usize>,
}

/// Flags of `sluice rules delete`.
#[derive(Debug, Args)]
struct DeleteArgs {
    #[command(flatten)]
    server: Server,

    /// Values of the rules to delete (exact and case-sensitive).
    #[arg(value_name = "RULE")]
    values: Vec<String>,

    /// Id of a rule to delete; repeat for several.
    #[arg(long = "id", value_name = "ID")]
    ids: Vec<u64>,

    /// A JSON file naming the rules: {"rules":[{"value":"…"}]} (e.g. `rules list` output)
    /// or {"rule_ids":[…]}; on v2 {"delete":{"ids"|"values":[…]}} or the ids of a v2
    /// `rules list` output; `-` reads stdin.
    #[arg(short = 'f', long, value_name = "FILE")]
    file: Option<PathBuf>,

    /// Delete every rule of the stream.
    #[arg(long, conflicts_with_all = ["values", "ids", "file"])]
    all: bool,

    /// Rules per request [default: 4,000; 1,000 on v2].
    #[arg(long, value_name = "N", value_parser = batch_size)]
    batch_size: Option<usize>,

    /// Only check what the delete would do (X API v2's dry_run=true).
    #[arg(long)]
    dry_run: bool,
}

fn batch_size(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number of at least 1".to_owned()),
    }
}

/// Runs `sluice rules` and returns its exit code.
pub fn run(args: &RulesArgs) -> ExitCode {
    let name = match &args.action {
        Action::List { .. } => "list",
        Action::Add(_) => "add",
        Action::Delete(_) => "delete",
        Action::Validate(_) => "validate",
        Action::Counts { .. } => "counts",
    };
    let result = crate::client::runtime()
        .context("starting the async runtime")
        .and_then(|rt| {
            rt.block_on(async {
                match &args.action {
                    Action::List { server } if rules_v2::is_v2(&server.url) => {
                        v2_session(server)?.list().await
                    }
                    Action::List { server } => list(&Session::new(server)?).await,
                    Action::Add(add_args) => add(add_args).await,
                    Action::Delete(delete_args) => delete(delete_args).await,
                    Action::Validate(validate_args) => validate(validate_args).await,
                    Action::Counts { server } => v2_session(server)?.counts().await,
                }
            })
        });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("sluice rules {name}: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// A connection to one stream's rules API.
struct Session {
    client: HttpClient,
    auth: Auth,
    url: Url,
}

impl Session {
    /// A session with a PowerTrack rules API, which takes basic auth.
    fn new(server: &Server) -> anyhow::Result<Self> {
        let Some(credentials) = &server.credentials else {
            bail!(
                "{} is not an X API v2 rules URL (…/2/tweets/search/stream/rules): give \
                 -u USER:PASSWORD",
                server.url
            );
        };
        Ok(Self {
            client: HttpClient::new(&server.tls, None)?,
            auth: Auth::Basic(credentials.clone()),
            url: server.url.clone(),
        })
    }

    /// Sends one request, waiting out 429s.
    async fn send(
        &self,
        what: &str,
        method: Method,
        url: &Url,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Reply> {
        let mut request = Request::new(method, url, &self.auth)?;
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        send_waiting_out_429(&self.client, what, &request).await
    }
}

/// A session with the X API v2 rules API, which takes an app's bearer token.
fn v2_session(server: &Server) -> anyhow::Result<V2Rules> {
    if !rules_v2::is_v2(&server.url) {
        bail!(
            "{} is not an X API v2 rules URL (…/2/tweets/search/stream/rules)",
            server.url
        );
    }
    let Some(token) = &server.bearer else {
        bail!("the X API v2 rules API takes an app's bearer token: give --bearer TOKEN");
    };
    let client = HttpClient::new(&server.tls, None)?;
    Ok(V2Rules::new(
        client,
        Auth::Bearer(token.clone()),
        &server.url,
    ))
}

/// Fails with the reply's status and X's message unless it is a success.
fn require_success(reply: Reply) -> anyhow::Result<Reply> {
    if reply.status.is_success() {
        return Ok(reply);
    }
    bail!("HTTP {}: {}", reply.status, reply.error_message())
}

fn print(body: &[u8]) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match write_json(&mut out, body, pretty_stdout()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}

async fn list(session: &Session) -> anyhow::Result<u8> {
    let reply = session
        .send("list", Method::GET, &session.url, None)
        .await?;
    let reply = require_success(reply)?;
    print(&reply.body)?;
    Ok(EXIT_OK)
}

async fn add(args: &AddArgs) -> anyhow::Result<u8> {
    if rules_v2::is_v2(&args.server.url) {
        let rules = read_v2_rules(&args.source)?;
        let batch = args.batch_size.unwrap_or(rules_v2::BATCH);
        return v2_session(&args.server)?
            .add(&rules, batch, args.dry_run)
            .await;
    }
    if args.dry_run {
        bail!("--dry-run is for the X API v2 rules API; `sluice rules validate` checks rules");
    }
    let rules = read_rules(&args.source)?;
    let session = Session::new(&args.server)?;
    let bodies = batch_bodies("rules", &rules, args.batch_size.unwrap_or(ADD_BATCH));
    let url = session.url.clone();
    let mut merged = Merged::new(["created", "not_created"]);
    let mut added = 0;
    for (index, (body, count)) in bodies.iter().enumerate() {
        let reply = session
            .send("add", Method::POST, &url, Some(body.clone()))
            .await?;
        if reply.status.is_success() {
            added += merged.push(&reply)?.first().copied().unwrap_or(0);
            continue;
        }
        let invalid =
            reply.status == hyper::StatusCode::UNPROCESSABLE_ENTITY && has_detail(&reply.body);
        if index > 0 {
            eprintln!(
                "sluice rules add: {added} rules of the {index} earlier requests were added; \
                 request {} ({count} rules) was refused and later ones were not sent",
                index + 1
            );
        }
        if invalid {
            print(&reply.body)?;
            report_invalid(&reply.body, "add", "created");
            return Ok(EXIT_INVALID_RULES);
        }
        require_success(reply)?;
    }
    merged.print_or_single()?;
    Ok(EXIT_OK)
}

async fn validate(args: &ValidateArgs) -> anyhow::Result<u8> {
    if rules_v2::is_v2(&args.server.url) {
        let rules = read_v2_rules(&args.source)?;
        let batch = args.batch_size.unwrap_or(rules_v2::BATCH);
        return v2_session(&args.server)?.add(&rules, batch, true).await;
    }
    let rules = read_rules(&args.source)?;
    let session = Session::new(&args.server)?;
    let url = validation_url(&session.url)?;
    let mut merged = Merged::new(["valid", "not_valid"]);
    let batch = args.batch_size.unwrap_or(ADD_BATCH);
    for (body, _) in batch_bodies("rules", &rules, batch) {
        let reply = session
            .send("validate", Method::POST, &url, Some(body))
            .await?;
        let reply = require_success(reply)?;
        merged.push(&reply)?;
        report_invalid(&reply.body, "validate", "valid");
    }
    merged.print_or_single()?;
    if merged.counts[1] > 0 {
        return Ok(EXIT_INVALID_RULES);
    }
    Ok(EXIT_OK)
}

async fn delete(args: &DeleteArgs) -> anyhow::Result<u8> {
    if rules_v2::is_v2(&args.server.url) {
        return delete_v2(args).await;
    }
    if args.dry_run {
        bail!("--dry-run is for the X API v2 rules API");
    }
    let session = Session::new(&args.server)?;
    let mut values: Vec<String> = Vec::new();
    let mut ids: Vec<u64> = Vec::new();
    if args.all {
        let reply = require_success(
            session
                .send("list", Method::GET, &session.url, None)
                .await?,
        )?;
        let listed: ListBody = serde_json::from_slice(&reply.body)
            .context("the list answer is not a {\"rules\":[…]} body")?;
        ids = listed.rules.into_iter().map(|r| r.id).collect();
        if ids.is_empty() {
            let empty = Merged {
                sent: listed.sent,
                ..Merged::new(["deleted", "not_deleted"])
            };
            empty.print_merged()?;
            return Ok(EXIT_OK);
        }
    } else {
        if let Some(path) = &args.file {
            let body = read_input(path)?;
            match DeleteFile::parse(&body) {
                Some(DeleteFile::Ids(file_ids)) => ids.extend(file_ids),
                Some(DeleteFile::Values(file_values)) => values.extend(file_values),
                None => bail!(
                    "{} is neither a {{\"rules\":[{{\"value\":\"…\"}}]}} nor a {{\"rule_ids\":[…]}} body",
                    display(path)
                ),
            }
        }
        values.extend(args.values.iter().cloned());
        ids.extend(&args.ids);
    }
    if values.is_empty() && ids.is_empty() {
        bail!("no rules to delete: give values, --id, --file or --all");
    }
    let mut url = session.url.clone();
    url.query_pairs_mut().append_pair("_method", "delete");
    let by_value: Vec<ValueOnly> = values.iter().map(|value| ValueOnly { value }).collect();
    let batch = args.batch_size.unwrap_or(DELETE_BATCH);
    let mut bodies = batch_bodies("rules", &by_value, batch);
    bodies.extend(batch_bodies("rule_ids", &ids, batch));
    let mut merged = Merged::new(["deleted", "not_deleted"]);
    for (body, _) in bodies {
        let reply = session
            .send("delete", Method::POST, &url, Some(body))
            .await?;
        merged.push(&require_success(reply)?)?;
    }
    merged.print_or_single()?;
    Ok(EXIT_OK)
}

/// `sluice rules delete` on the v2 rules API: one operation per request, so values and ids
/// go in requests of their own.
async fn delete_v2(args: &DeleteArgs) -> anyhow::Result<u8> {
    let session = v2_session(&args.server)?;
    if args.all {
        return session.delete_all(args.dry_run).await;
    }
    let batch = args.batch_size.unwrap_or(rules_v2::BATCH);
    let mut values = args.values.clone();
    let mut ids: Vec<String> = args.ids.iter().map(u64::to_string).collect();
    if let Some(path) = &args.file {
        let named = rules_v2::named_by_file(&read_input(path)?)
            .with_context(|| format!("reading {}", display(path)))?;
        match named {
            rules_v2::Named::Ids(file_ids) => ids.splice(0..0, file_ids).for_each(drop),
            rules_v2::Named::Values(file_values) => values.splice(0..0, file_values).for_each(drop),
        }
    }
    match (values.is_empty(), ids.is_empty()) {
        (true, true) => bail!("no rules to delete: give values, --id, --file or --all"),
        (false, true) => {
            session
                .delete(rules_v2::Named::Values(values), batch, args.dry_run)
                .await
        }
        (true, false) => {
            session
                .delete(rules_v2::Named::Ids(ids), batch, args.dry_run)
                .await
        }
        (false, false) => bail!(
            "the v2 rules API deletes by ids or by values in one request: give values or \
             --id, not both"
        ),
    }
}

/// The v2 rules of `source`: the file's first, then the arguments with `--tag`.
fn read_v2_rules(source: &RuleSource) -> anyhow::Result<Vec<rules_v2::NewRule>> {
    let mut rules = Vec::new();
    if let Some(path) = &source.file {
        let body = read_input(path)?;
        rules =
            rules_v2::rules_of_file(&body).with_context(|| format!("reading {}", display(path)))?;
    }
    rules.extend(source.values.iter().map(|value| rules_v2::NewRule {
        value: value.clone(),
        tag: source.tag.clone(),
    }));
    if rules.is_empty() {
        bail!("no rules given: pass them as arguments or with --file");
    }
    Ok(rules)
}

/// The validation URL of a rules URL: `…/LABEL.json` → `…/LABEL/validation.json`.
fn validation_url(rules_url: &Url) -> anyhow::Result<Url> {
    let path = rules_url.path();
    if path.ends_with("/validation.json") {
        return Ok(rules_url.clone());
    }
    let Some(stem) = path.strip_suffix(".json") else {
        bail!("{rules_url} is not a rules URL ending in LABEL.json");
    };
    let mut url = rules_url.clone();
    url.set_path(&format!("{stem}/validation.json"));
    Ok(url)
}

/// The rules of `source`: the file's first, then the arguments with `--tag`.
fn read_rules(source: &RuleSource) -> anyhow::Result<Vec<RuleValue>> {
    let mut rules = Vec::new();
    if let Some(path) = &source.file {
        let body = read_input(path)?;
        let request = RulesRequest::from_slice(&body).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a {{\"rules\":[{{\"value\":\"…\",\"tag\":\"…\"}}]}} body: {}",
                display(path),
                e.0
            )
        })?;
        rules.extend(request.rules.into_iter().map(|r| RuleValue {
            value: r.value,
            tag: r.tag,
        }));
    }
    rules.extend(source.values.iter().map(|value| RuleValue {
        value: value.clone(),
        tag: source.tag.clone(),
    }));
    if rules.is_empty() {
        bail!("no rules given: pass them as arguments or with --file");
    }
    Ok(rules)
}

fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    if path.as_os_str() == "-" {
        io::stdin()
            .read_to_end(&mut body)
            .context("reading stdin")?;
    } else {
        body = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    }
    Ok(body)
}

fn display(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "stdin".to_owned()
    } else {
        path.display().to_string()
    }
}

/// A delete-by-value entry: only the value matters.
#[derive(Serialize)]
struct ValueOnly<'a> {
    value: &'a str,
}

/// What a delete file names.
enum DeleteFile {
    Ids(Vec<u64>),
    Values(Vec<String>),
}

impl DeleteFile {
    fn parse(body: &[u8]) -> Option<DeleteFile> {
        if let Ok(request) = RuleIdsRequest::from_slice(body) {
            return Some(DeleteFile::Ids(request.rule_ids));
        }
        let request = RulesRequest::from_slice(body).ok()?;
        Some(DeleteFile::Values(
            request.rules.into_iter().map(|r| r.value).collect(),
        ))
    }
}

/// The list endpoint's body.
#[derive(Deserialize)]
struct ListBody {
    rules: Vec<Rule>,
    #[serde(default)]
    sent: String,
}

/// Request bodies `{"KEY":[…]}` of at most `max_count` items and [`MAX_BODY_BYTES`]
/// bytes each, with their item counts.
fn batch_bodies<T: Serialize>(key: &str, items: &[T], max_count: usize) -> Vec<(Vec<u8>, usize)> {
    let open = format!("{{\"{key}\":[");
    let mut bodies = Vec::new();
    let mut body = Vec::new();
    let mut count = 0;
    for item in items {
        let encoded = sluice_wire::to_vec(item);
        if count > 0 && (count == max_count || body.len() + 1 + encoded.len() + 2 > MAX_BODY_BYTES)
        {
            body.extend_from_slice(b"]}");
            bodies.push((std::mem::take(&mut body), count));
            count = 0;
        }
        if count == 0 {
            body.extend_from_slice(open.as_bytes());
        } else {
            body.push(b',');
        }
        body.extend_from_slice(&encoded);
        count += 1;
    }
    if count > 0 {
        body.extend_from_slice(b"]}");
        bodies.push((body, count));
    }
    bodies
}

/// A summary/detail answer (add, delete, validate), for merging.
#[derive(Deserialize)]
struct SummaryBody {
    summary: HashMap<String, u64>,
    #[serde(default)]
    detail: Vec<Box<RawValue>>,
    #[serde(default)]
    sent: String,
}

/// The merged answers of a batched action, in X's summary/detail shape.
struct Merged {
    /// The summary keys, in X's order (e.g. `created`, `not_created`).
    keys: [&'static str; 2],
    /// The summed counts of `keys`.
    counts: [u64; 2],
    /// Every answer's details, in order.
    detail: Vec<Box<RawValue>>,
    /// The last answer's `sent`.
    sent: String,
    /// The body of the only answer so far, printed as it came when there was one.
    single: Option<Vec<u8>>,
    answers: usize,
}

impl Merged {
    fn new(keys: [&'static str; 2]) -> Self {
        Self {
            counts: [0, 0],
            detail: Vec::new(),
            sent: String::new(),
            keys,
            single: None,
            answers: 0,
        }
    }

    /// Adds one successful answer; returns its counts for the summary keys.
    fn push(&mut self, reply: &Reply) -> anyhow::Result<[u64; 2]> {
        let body: SummaryBody =
            serde_json::from_slice(&reply.body).context("the server's answer has no summary")?;
        let counts = self.keys.map(|k| body.summary.get(k).copied().unwrap_or(0));
        self.counts[0] += counts[0];
        self.counts[1] += counts[1];
        self.detail.extend(body.detail);
        self.sent = body.sent;
        self.answers += 1;
        self.single = (self.answers == 1).then(|| reply.body.to_vec());
        Ok(counts)
    }

    /// Prints the only answer as it came, or the merged body.
    fn print_or_single(&self) -> anyhow::Result<()> {
        match &self.single {
            Some(body) => print(body),
            None => self.print_merged(),
        }
    }

    fn print_merged(&self) -> anyhow::Result<()> {
        #[derive(Serialize)]
        struct Body<'a> {
            summary: SummaryMap<'a>,
            detail: &'a [Box<RawValue>],
            sent: &'a str,
        }
        struct SummaryMap<'a>(&'a [&'static str; 2], &'a [u64; 2]);
        impl Serialize for SummaryMap<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap as _;
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry(self.0[0], &self.1[0])?;
                map.serialize_entry(self.0[1], &self.1[1])?;
                map.end()
            }
        }
        let body = Body {
            summary: SummaryMap(&self.keys, &self.counts),
            detail: &self.detail,
            sent: &self.sent,
        };
        print(&sluice_wire::to_vec(&body))
    }
}

fn has_detail(body: &[u8]) -> bool {
    serde_json::from_slice::<SummaryBody>(body).is_ok_and(|b| !b.detail.is_empty())
}

/// Names each rule a summary/detail answer marks as failed, with the server's message,
/// on stderr. `flag` is the detail's success key (`created`, `valid`).
fn report_invalid(body: &[u8], action: &str, flag: &str) {
    #[derive(Deserialize)]
    struct Detail {
        rule: RuleValue,
        message: Option<String>,
        #[serde(flatten)]
        flags: HashMap<String, serde_json::Value>,
    }
    let Ok(parsed) = serde_json::from_slice::<SummaryBody>(body) else {
        return;
    };
    for raw in parsed.detail {
        let Ok(detail) = serde_json::from_str::<Detail>(raw.get()) else {
            continue;
        };
        let ok = detail.flags.get(flag).and_then(serde_json::Value::as_bool);
        if let (Some(false), Some(message)) = (ok, detail.message) {
            eprintln!(
                "sluice rules {action}: {:?}: {}",
                detail.rule.value,
                message.trim_end()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_count_and_keep_order() {
        let ids: Vec<u64> = (1..=7).collect();
        let bodies = batch_bodies("rule_ids", &ids, 3);
        let texts: Vec<(String, usize)> = bodies
            .into_iter()
            .map(|(b, n)| (String::from_utf8(b).expect("UTF-8"), n))
            .collect();
        assert_eq!(
            texts,
            [
                ("{\"rule_ids\":[1,2,3]}".to_owned(), 3),
                ("{\"rule_ids\":[4,5,6]}".to_owned(), 3),
                ("{\"rule_ids\":[7]}".to_owned(), 1),
            ]
        );
    }

    #[test]
    fn batches_stay_under_the_body_limit() {
        let value = "x".repeat(2_000);
        let rules: Vec<RuleValue> = (0..5_000)
            .map(|_| RuleValue {
                value: value.clone(),
                tag: None,
            })
            .collect();
        let bodies = batch_bodies("rules", &rules, ADD_BATCH);
        assert!(bodies.len() >= 3);
        assert_eq!(bodies.iter().map(|(_, n)| n).sum::<usize>(), 5_000);
        for (body, count) in &bodies {
            assert!(body.len() <= MAX_BODY_BYTES);
            let parsed = RulesRequest::from_slice(body).expect("a valid add body");
            assert_eq!(parsed.rules.len(), *count);
        }
    }

    #[test]
    fn validation_urls_sit_beside_the_rules_url() {
        let url = |s: &str| Url::parse(s).expect("valid URL");
        let rules = url("https://h/rules/powertrack/accounts/a/publishers/twitter/prod.json");
        assert_eq!(
            validation_url(&rules).expect("a rules URL").as_str(),
            "https://h/rules/powertrack/accounts/a/publishers/twitter/prod/validation.json"
        );
        let already =
            url("https://h/rules/powertrack/accounts/a/publishers/twitter/prod/validation.json");
        assert_eq!(validation_url(&already).expect("kept"), already);
        assert!(validation_url(&url("https://h/rules/prod")).is_err());
    }

    #[test]
    fn delete_files_name_ids_or_values() {
        match DeleteFile::parse(br#"{"rule_ids":[1,"2"]}"#) {
            Some(DeleteFile::Ids(ids)) => assert_eq!(ids, [1, 2]),
            _ => panic!("rule_ids body"),
        }
        let listed = br#"{"rules":[{"value":"cat","tag":null,"id":5,"id_str":"5"}],"sent":"x"}"#;
        match DeleteFile::parse(listed) {
            Some(DeleteFile::Values(values)) => assert_eq!(values, ["cat"]),
            _ => panic!("rules body"),
        }
        assert!(DeleteFile::parse(b"{\"tags\":[]}").is_none());
    }
}
