//! `sluice match`: offline matching of an NDJSON posts file against a PowerTrack rules body,
//! exactly as `docs/operator-interface.md` specifies.
//!
//! The rules go through the same steps the server's add endpoint takes: the body is parsed
//! as an add-rules request, every rule is validated (any invalid rule rejects the whole
//! set, answered with the validation endpoint's body), each distinct value gets a Snowflake
//! id in file order (a repeated value is the same rule: the server would not create it
//! twice, and the first occurrence's tag stays), and the rules are indexed. Posts are then
//! streamed line by line: memory stays flat however long the file is, and each output line
//! is written as soon as its post is matched (through a buffered stdout).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use sluice_matcher::{Matcher, Scratch};
use sluice_model::enrich::{MatchedRule, write_matching_rules};
use sluice_model::snowflake::SnowflakeGenerator;
use sluice_wire::{RuleValue, RulesRequest, ValidationDetail, ValidationResponse};

/// Exit code: every post line was read (matched or not).
const EXIT_OK: u8 = 0;
/// Exit code: an input could not be read, the rules body is malformed, or output failed.
const EXIT_ERROR: u8 = 1;
/// Exit code: a rule failed validation; the validation response is on stdout.
const EXIT_INVALID_RULES: u8 = 2;
/// Exit code: at least one post line was not valid post JSON and was skipped.
const EXIT_BAD_POSTS: u8 = 3;

/// Buffer size for reading posts and writing matches.
const IO_BUFFER: usize = 64 * 1024;

const AFTER_HELP: &str = "\
Output: one NDJSON line per post that matches at least one rule, in input order:
  {\"id_str\":\"<post id>\",\"matching_rules\":[{\"tag\":\"…\",\"id\":N,\"id_str\":\"N\"}]}
Rule ids are assigned as the server would: Snowflake ids in the order of the rules file; a
value given twice is one rule (the first tag is kept). Blank post lines are ignored.

Exit codes:
  0  all post lines were read (whether or not any matched)
  1  a file could not be read, the rules body is not a valid add-rules body, or output failed
  2  a rule failed validation: nothing is matched and the validation response body
     (as the rules validation endpoint returns it) is written to stdout
  3  some post lines were not valid post JSON: each is reported on stderr with its line
     number and skipped; the other lines are still matched";

/// Flags of `sluice match`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct MatchArgs {
    /// PowerTrack add-rules body to match with, e.g.
    /// {"rules":[{"value":"cat OR dog","tag":"pets"}]}. `-` reads it from stdin.
    #[arg(long, value_name = "RULES.json")]
    rules: PathBuf,

    /// Posts to match, one post per line in X's native JSON (NDJSON). `-` reads them from
    /// stdin. Read as a stream, so the file may be arbitrarily large.
    #[arg(long, value_name = "POSTS.ndjson")]
    posts: PathBuf,
}

/// Runs `sluice match` and returns its exit code.
pub fn run(args: &MatchArgs) -> ExitCode {
    match execute(args) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("sluice match: error: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The rules, ready to match: the index and each id's tag.
struct RuleSet {
    matcher: Matcher,
    /// `(id, tag)` in ascending id order.
    tags: Vec<(u64, Option<String>)>,
}

impl RuleSet {
    fn tag(&self, id: u64) -> Option<&str> {
        self.tags
            .binary_search_by_key(&id, |(rule_id, _)| *rule_id)
            .ok()
            .and_then(|i| self.tags[i].1.as_deref())
    }
}

/// The exit code of a run that finished, or the message of one that failed (exit 1).
type Outcome = Result<u8, String>;

fn execute(args: &MatchArgs) -> Outcome {
    if is_stdin(&args.rules) && is_stdin(&args.posts) {
        return Err("--rules and --posts cannot both be read from stdin (-)".into());
    }
    let body = read_all(&args.rules)
        .map_err(|e| format!("cannot read rules {}: {e}", display(&args.rules)))?;
    let request = RulesRequest::from_slice(&body).map_err(|e| {
        format!(
            "{} is not a PowerTrack add-rules body {{\"rules\":[{{\"value\":\"…\",\"tag\":\"…\"}}]}}: {}",
            display(&args.rules),
            e.0
        )
    })?;
    let rules = match compile(request) {
        Ok(rules) => rules,
        Err(response) => {
            let mut out = io::stdout().lock();
            let mut bytes = sluice_wire::to_vec(&response);
            bytes.push(b'\n');
            out.write_all(&bytes)
                .and_then(|()| out.flush())
                .or_else(ignore_broken_pipe)
                .map_err(|e| format!("cannot write to stdout: {e}"))?;
            return Ok(EXIT_INVALID_RULES);
        }
    };
    let input = open(&args.posts)
        .map_err(|e| format!("cannot read posts {}: {e}", display(&args.posts)))?;
    match_posts(&rules, input, &args.posts)
}

/// Validates every rule and builds the rule set, or returns the validation response when
/// any rule is invalid.
fn compile(request: RulesRequest) -> Result<RuleSet, ValidationResponse> {
    let parsed: Vec<_> = request
        .rules
        .iter()
        .map(|input| sluice_rules::parse(&input.value))
        .collect();
    if parsed.iter().any(Result::is_err) {
        let detail = request
            .rules
            .into_iter()
            .zip(&parsed)
            .map(|(input, result)| {
                let rule = RuleValue {
                    value: input.value,
                    tag: input.tag,
                };
                match result {
                    Ok(_) => ValidationDetail::valid(rule),
                    Err(e) => ValidationDetail::invalid(rule, e.powertrack_message()),
                }
            })
            .collect();
        return Err(ValidationResponse::new(
            detail,
            sluice_wire::sent::rules_sent_now(),
        ));
    }

    let ids = SnowflakeGenerator::new(0).expect("worker 0 is in range");
    let mut matcher = Matcher::new();
    let mut tags = Vec::with_capacity(request.rules.len());
    let mut seen: HashMap<&str, u64> = HashMap::with_capacity(request.rules.len());
    for (input, rule) in request.rules.iter().zip(parsed) {
        if seen.contains_key(input.value.as_str()) {
            continue;
        }
        let rule = rule.expect("every rule was checked valid above");
        let id = ids.next_id();
        seen.insert(&input.value, id);
        matcher.insert(id, &rule);
        tags.push((id, input.tag.clone()));
    }
    Ok(RuleSet { matcher, tags })
}

/// Streams the posts, writing one line per matching post. Returns the exit code.
///
/// Long on purpose: the read → parse → match → write loop with its reused buffers, where
/// the per-line error handling (line numbers, exit code 3) sits beside the step that fails.
fn match_posts(rules: &RuleSet, input: Box<dyn BufRead>, path: &Path) -> Outcome {
    let mut input = input;
    let mut out = BufWriter::with_capacity(IO_BUFFER, io::stdout().lock());
    let mut line = Vec::with_capacity(4096);
    let mut record = Vec::with_capacity(256);
    let mut matched = Vec::new();
    let mut scratch = Scratch::default();
    let mut line_no: u64 = 0;
    let mut bad_lines: u64 = 0;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read posts {}: {e}", display(path)))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let post = match sluice_model::parse_post(&line) {
            Ok(post) => post,
            Err(e) => {
                bad_lines += 1;
                eprintln!(
                    "sluice match: {}: line {line_no}: skipped: {e}",
                    display(path)
                );
                continue;
            }
        };
        rules
            .matcher
            .match_post_with(&post, &mut scratch, &mut matched);
        if matched.is_empty() {
            continue;
        }
        let post_id = post.id().expect("parse_post only accepts posts with an id");
        record.clear();
        write!(record, "{{\"id_str\":\"{post_id}\",\"matching_rules\":")
            .expect("writing into a Vec cannot fail");
        write_matching_rules(
            matched.iter().map(|&id| MatchedRule {
                id,
                tag: rules.tag(id),
            }),
            &mut record,
        );
        record.extend_from_slice(b"}\n");
        if let Err(e) = out.write_all(&record) {
            return finish_on_write_error(e, bad_lines);
        }
    }
    if let Err(e) = out.flush() {
        return finish_on_write_error(e, bad_lines);
    }
    if bad_lines > 0 {
        eprintln!(
            "sluice match: {bad_lines} line(s) of {} were not valid post JSON and were skipped",
            display(path)
        );
        Ok(EXIT_BAD_POSTS)
    } else {
        Ok(EXIT_OK)
    }
}

/// A closed stdout (`sluice match … | head`) ends the run quietly; any other write error
/// is fatal.
fn finish_on_write_error(e: io::Error, bad_lines: u64) -> Outcome {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(if bad_lines > 0 {
            EXIT_BAD_POSTS
        } else {
            EXIT_OK
        })
    } else {
        Err(format!("cannot write to stdout: {e}"))
    }
}

fn ignore_broken_pipe(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e)
    }
}

fn is_stdin(path: &Path) -> bool {
    path == Path::new("-")
}

fn display(path: &Path) -> String {
    if is_stdin(path) {
        "stdin".to_owned()
    } else {
        path.display().to_string()
    }
}

fn open(path: &Path) -> io::Result<Box<dyn BufRead>> {
    if is_stdin(path) {
        Ok(Box::new(BufReader::with_capacity(IO_BUFFER, io::stdin())))
    } else {
        Ok(Box::new(BufReader::with_capacity(
            IO_BUFFER,
            File::open(path)?,
        )))
    }
}

fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if is_stdin(path) {
        io::stdin().lock().read_to_end(&mut bytes)?;
    } else {
        File::open(path)?.read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}
