//! `sluice match`: offline matching of an NDJSON posts file against a PowerTrack rules body,
//! exactly as `docs/operator-interface.md` specifies.
//!
//! The rules go through the same steps the server's add endpoint takes: the body is parsed
//! as an add-rules request, every rule is validated (any invalid rule rejects the whole
//! set, answered with the validation endpoint's body), each distinct value gets a Snowflake
//! id in file order (a repeated value is the same rule: the server would not create it
//! twice, and the first occurrence's tag stays), and the rules are indexed. Posts are then
//! streamed, read a block of lines at a time (`post_lines`): memory stays flat however
//! long the file is, and each output line is written as soon as its post is matched
//! (through a buffered stdout).
//!
//! With `--threads N` above 1 (the default: one per core), the rules are parsed on N
//! threads (the index is still built by one), a reading thread reads blocks
//! of lines ahead into a bounded queue, the lines at hand are matched in chunks on N threads
//! ([`Workers`], the server's matching threads' helper), and the output is written in input
//! order: the same bytes as on one thread, with at most 32 blocks of lines (256 KiB each at
//! most) queued ahead of the lines being matched.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Args;
use sluice_matcher::{Matcher, Scratch};
use sluice_model::enrich::{MatchedRule, write_matching_rule, write_rendered_matching_rules};
use sluice_model::snowflake::SnowflakeGenerator;
use sluice_rules::{Rule, RuleError};
use sluice_server::workers::Workers;
use sluice_wire::{RuleInput, RuleValue, RulesRequest, ValidationDetail, ValidationResponse};

use super::post_lines::{Lines, PostBlocks};

/// Exit code: every post line was read (matched or not).
const EXIT_OK: u8 = 0;
/// Exit code: an input could not be read, the rules body is malformed, or output failed.
const EXIT_ERROR: u8 = 1;
/// Exit code: a rule failed validation; the validation response is on stdout.
const EXIT_INVALID_RULES: u8 = 2;
/// Exit code: at least one post line was not valid post JSON and was skipped.
const EXIT_BAD_POSTS: u8 = 3;

/// Buffer size for writing matches.
const IO_BUFFER: usize = 64 * 1024;
/// The posts file (mapped) or stdin (read), a block of lines at a time.
type Input = PostBlocks;

const AFTER_HELP: &str = "\
Output: one NDJSON line per post that matches at least one rule, in input order:
  {\"id_str\":\"<post id>\",\"matching_rules\":[{\"tag\":\"…\",\"id\":N,\"id_str\":\"N\"}]}
Rule ids are assigned as the server would: Snowflake ids in the order of the rules file; a
value given twice is one rule (the first tag is kept). Blank post lines are ignored, and
so are compliance events (`delete`, `user_protect`, … lines of a recorded firehose): they
are not posts, and no rule matches them.
Posts are matched on --threads threads (default: one per core); the output is the same
whatever their number. A posts file is read through a memory map: do not truncate or
rewrite it while sluice match runs (appending to it is harmless; what was added after the
start is not read).

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

    /// Threads that match posts; the output stays in input order whatever their number
    /// [default: the cores available].
    #[arg(long, value_name = "N")]
    threads: Option<NonZeroUsize>,

    /// When done, print one summary line on stderr: posts read, matched and skipped, the
    /// rules indexed and how long that took, and how long matching took (posts per second,
    /// from the first post read to the last output line written).
    #[arg(long)]
    stats: bool,
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

/// The rules, ready to match: the index, keyed by each rule's position, and each rule's
/// rendered `matching_rules` entry at that position.
///
/// Keyed by position rather than by id so that writing a match is a copy of bytes found by
/// position: at 250k rules a post matches ~17 of them, and a binary search over the ids per
/// match was a cache miss per step (docs/performance.md, "Matching cost"). Ids are issued in
/// file order and increase, so ascending positions are ascending ids.
struct RuleSet {
    matcher: Matcher<u32>,
    /// Each rule's `matching_rules` entry, in ascending id order.
    entries: RenderedEntries,
}

/// Every rule's `matching_rules` entry rendered once, when the rules are loaded, back to
/// back in one buffer.
///
/// Writing a match from the rule's id and tag read its `(id, tag)` pair and then the tag's
/// own heap string, two cache misses per match at 100,000 rules, one after the other; here
/// it is one copy from a place found in a small array of ends, and a post's entries are
/// touched together before any is copied, so that their misses overlap (docs/performance.md,
/// "`sluice match` writes rendered entries").
#[derive(Default)]
struct RenderedEntries {
    bytes: Vec<u8>,
    /// Where each entry ends in `bytes`; it starts where the one before ends.
    ends: Vec<usize>,
}

impl RenderedEntries {
    /// Renders the entry of the rule at the next position, as the server writes it.
    fn push(&mut self, rule: MatchedRule<'_>) {
        write_matching_rule(rule, &mut self.bytes);
        self.ends.push(self.bytes.len());
    }

    /// The rendered entry of the rule at `position`.
    fn get(&self, position: u32) -> &[u8] {
        let position = position as usize;
        let start = match position {
            0 => 0,
            _ => self.ends[position - 1],
        };
        &self.bytes[start..self.ends[position]]
    }

    /// Number of rules.
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Appends the `matching_rules` array of the rules at `positions`, in that order.
    fn write(&self, positions: &[u32], out: &mut Vec<u8>) {
        // One read of each entry's first byte, none depending on another, so the processor
        // has their misses outstanding at once; the copies below then find them cached.
        let touched = positions.iter().fold(0u8, |acc, &p| {
            acc ^ self.get(p).first().copied().unwrap_or(0)
        });
        std::hint::black_box(touched);
        write_rendered_matching_rules(positions.iter().map(|&p| self.get(p)), out);
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
    let threads = args
        .threads
        .map_or_else(sluice_server::workers::available_cores, NonZeroUsize::get);
    let workers = (threads >= 2)
        .then(|| {
            let states = (0..threads)
                .map(|_| (Scratch::default(), Vec::new()))
                .collect();
            Workers::new("sluice-match", states)
        })
        .transpose()
        .map_err(|e| format!("cannot start {threads} matching threads: {e}"))?;
    let indexing = Instant::now();
    let rules = match compile(request, workers.as_ref()) {
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
    let indexed = indexing.elapsed();
    let input = open(&args.posts).map_err(|e| read_error(&args.posts, &e))?;
    let matching = Instant::now();
    let (outcome, counts) = match_posts(&rules, input, &args.posts, workers.as_ref());
    if args.stats {
        eprintln!(
            "{}",
            Stats {
                counts,
                rules: rules.entries.len(),
                indexed,
                matched: matching.elapsed(),
                threads,
            }
        );
    }
    outcome
}

/// What `--stats` prints.
struct Stats {
    counts: Counts,
    rules: usize,
    indexed: Duration,
    matched: Duration,
    threads: usize,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Counts {
            posts,
            matched,
            bad,
        } = self.counts;
        let seconds = self.matched.as_secs_f64();
        let rate = if seconds > 0.0 {
            posts as f64 / seconds
        } else {
            0.0
        };
        write!(
            f,
            "sluice match: {posts} post lines read, {matched} matched, {bad} skipped; \
             {} rules indexed in {:.3} s; posts matched in {seconds:.3} s \
             ({rate:.0} posts/s) on {} thread{}",
            self.rules,
            self.indexed.as_secs_f64(),
            self.threads,
            if self.threads == 1 { "" } else { "s" },
        )
    }
}

/// How many post lines a run read (blank lines aside), how many matched, and how many
/// were skipped as not valid post JSON.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    posts: u64,
    matched: u64,
    bad: u64,
}

/// The matching threads of `--threads` above 1, each with its matcher scratch space and
/// match buffer.
type Matchers = Workers<(Scratch, Vec<u32>)>;

/// Rules parsed together by one of the matching threads.
const PARSE_CHUNK: usize = 512;

/// Validates every rule (on the matching threads, if any) and builds the rule set, or
/// returns the validation response when any rule is invalid.
fn compile(
    request: RulesRequest,
    workers: Option<&Matchers>,
) -> Result<RuleSet, ValidationResponse> {
    let parse = |rules: &[RuleInput]| -> Vec<Result<Rule, RuleError>> {
        rules
            .iter()
            .map(|input| sluice_rules::parse(&input.value))
            .collect()
    };
    let parsed: Vec<Result<Rule, RuleError>> = match workers {
        Some(workers) => workers
            .map_chunks(&request.rules, PARSE_CHUNK, |_, rules| parse(rules))
            .into_iter()
            .flatten()
            .collect(),
        None => parse(&request.rules),
    };
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
    let mut matcher = Matcher::with_keys();
    let mut entries = RenderedEntries::default();
    let mut seen: HashMap<&str, u64> = HashMap::with_capacity(request.rules.len());
    for (input, rule) in request.rules.iter().zip(parsed) {
        if seen.contains_key(input.value.as_str()) {
            continue;
        }
        let rule = rule.expect("every rule was checked valid above");
        let id = ids.next_id();
        seen.insert(&input.value, id);
        let position = u32::try_from(entries.len()).expect("fewer than 2^32 rules");
        matcher.insert(position, &rule);
        entries.push(MatchedRule {
            id,
            tag: input.tag.as_deref(),
        });
    }
    Ok(RuleSet { matcher, entries })
}

/// Streams the posts, writing one line per matching post, on the matching threads if any.
/// Returns the exit code, and what was read.
fn match_posts(
    rules: &RuleSet,
    input: Input,
    path: &Path,
    workers: Option<&Matchers>,
) -> (Outcome, Counts) {
    let mut out = Output {
        stdout: BufWriter::with_capacity(IO_BUFFER, io::stdout().lock()),
        path,
        counts: Counts::default(),
    };
    let read = match workers {
        None => match_on_this_thread(rules, input, &mut out),
        Some(workers) => match_on_workers(rules, input, workers, &mut out),
    };
    if let Err(e) = read.and_then(|()| out.stdout.flush().map_err(Failure::Write)) {
        return (out.finish_on(e), out.counts);
    }
    let outcome = if out.counts.bad > 0 {
        eprintln!(
            "sluice match: {} line(s) of {} were not valid post JSON and were skipped",
            out.counts.bad,
            display(path)
        );
        Ok(EXIT_BAD_POSTS)
    } else {
        Ok(EXIT_OK)
    };
    (outcome, out.counts)
}

/// Where results go, and what was read so far.
struct Output<'p> {
    stdout: BufWriter<io::StdoutLock<'static>>,
    path: &'p Path,
    counts: Counts,
}

/// Why matching stopped before the end of the input.
enum Failure {
    /// Reading the posts failed (the message says how).
    Read(String),
    /// Writing to stdout failed.
    Write(io::Error),
}

impl Output<'_> {
    /// Reports a bad post line on stderr.
    fn bad_line(&mut self, line_no: u64, error: &str) {
        self.counts.bad += 1;
        eprintln!(
            "sluice match: {}: line {line_no}: skipped: {error}",
            display(self.path)
        );
    }

    /// The outcome of a run stopped by `failure`.
    fn finish_on(&self, failure: Failure) -> Outcome {
        match failure {
            Failure::Read(message) => Err(message),
            Failure::Write(e) => finish_on_write_error(e, self.counts.bad),
        }
    }
}

/// The result of matching one post line.
enum Matched {
    /// The post matched: its output line was appended.
    Written,
    /// The post matched no rule.
    Nothing,
    /// The line is not a post: why.
    Bad(String),
}

/// Matches one (non-blank) post line and appends its output line to `record` if any rule
/// matches: the step both ways of running share, so that their output is the same.
fn match_line(
    rules: &RuleSet,
    scratch: &mut Scratch,
    matched: &mut Vec<u32>,
    line: &[u8],
    record: &mut Vec<u8>,
) -> Matched {
    // Compliance events are not posts: the server never matches them either.
    if sluice_model::compliance::is_event(line) {
        return Matched::Nothing;
    }
    let post = match sluice_model::parse_post(line) {
        Ok(post) => post,
        Err(e) => return Matched::Bad(e.to_string()),
    };
    rules.matcher.match_post_with(&post, scratch, matched);
    if matched.is_empty() {
        return Matched::Nothing;
    }
    let post_id = post.id().expect("parse_post only accepts posts with an id");
    write!(record, "{{\"id_str\":\"{post_id}\",\"matching_rules\":")
        .expect("writing into a Vec cannot fail");
    rules.entries.write(matched, record);
    record.extend_from_slice(b"}\n");
    Matched::Written
}

/// One thread reads, matches and writes, a block of lines at a time, with reused match
/// and output buffers.
fn match_on_this_thread(
    rules: &RuleSet,
    mut reader: Input,
    out: &mut Output<'_>,
) -> Result<(), Failure> {
    let mut record = Vec::with_capacity(256);
    let mut matched = Vec::new();
    let mut scratch = Scratch::default();
    while let Some(lines) = reader
        .next_block()
        .map_err(|e| Failure::Read(read_error(out.path, &e)))?
    {
        for (line_no, line) in lines.iter() {
            record.clear();
            out.counts.posts += 1;
            match match_line(rules, &mut scratch, &mut matched, line, &mut record) {
                Matched::Written => {
                    out.counts.matched += 1;
                    out.stdout.write_all(&record).map_err(Failure::Write)?;
                }
                Matched::Nothing => {}
                Matched::Bad(e) => out.bad_line(line_no, &e),
            }
        }
    }
    Ok(())
}

/// How much one read of the posts asks for, or one block of a mapped posts file holds at
/// most (bar a longer line): the whole lines it brings are handed over together (about 64
/// realistic posts from a file; a pipe's read may bring fewer).
const READ_BLOCK: usize = 256 * 1024;
/// Blocks of lines read ahead of matching, at most: with the lines being matched, what
/// bounds memory however long the input is.
const BLOCKS_AHEAD: usize = 32;
/// Lines matched together, about (the blocks at hand are taken whole); fewer when no
/// more input is at hand, so that output follows a slow input instead of waiting for a
/// full block.
const BLOCK_LINES: usize = 2_048;
/// Lines a matching thread takes at a time from a block.
const CHUNK_LINES: usize = 16;

/// What a matching thread made of a chunk of lines: the output lines, and the bad lines
/// with their errors, in input order.
#[derive(Default)]
struct ChunkOutput {
    records: Vec<u8>,
    bad: Vec<(u64, String)>,
    /// Lines of the chunk that matched.
    matched: u64,
}

/// Several threads: `sluice-read` reads lines ahead (a bounded queue), this thread takes
/// what has been read in blocks, the `sluice-match-N` threads match the chunks of a block,
/// and this thread writes their output in input order.
fn match_on_workers(
    rules: &RuleSet,
    input: Input,
    workers: &Matchers,
    out: &mut Output<'_>,
) -> Result<(), Failure> {
    let (lines, read) = mpsc::sync_channel(BLOCKS_AHEAD);
    let path = out.path.to_owned();
    // Not joined when writing fails: it may be waiting for input that never ends (an
    // interactive stdin), and ends with the process.
    let reader = std::thread::Builder::new()
        .name("sluice-read".into())
        .spawn(move || read_lines(input, &path, &lines))
        .map_err(|e| Failure::Read(format!("cannot start the reading thread: {e}")))?;
    let mut blocks: Vec<Lines> = Vec::new();
    let mut failed = None;
    let mut ended = false;
    while !ended {
        blocks.clear();
        let mut taken = 0;
        // Wait for lines, then take whatever else is at hand.
        match read.recv() {
            Ok(Ok(lines)) => {
                taken += lines.lines.len();
                blocks.push(lines);
            }
            Ok(Err(message)) => failed = Some(message),
            Err(_) => ended = true,
        }
        while failed.is_none() && !ended && taken < BLOCK_LINES {
            match read.try_recv() {
                Ok(Ok(lines)) => {
                    taken += lines.lines.len();
                    blocks.push(lines);
                }
                Ok(Err(message)) => failed = Some(message),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => ended = true,
            }
        }
        let block: Vec<(u64, &[u8])> = blocks.iter().flat_map(Lines::iter).collect();
        let chunks = workers.map_chunks(&block, CHUNK_LINES, |(scratch, matched), lines| {
            let mut chunk = ChunkOutput::default();
            for (line_no, line) in lines {
                match match_line(rules, scratch, matched, line, &mut chunk.records) {
                    Matched::Written => chunk.matched += 1,
                    Matched::Nothing => {}
                    Matched::Bad(e) => chunk.bad.push((*line_no, e)),
                }
            }
            chunk
        });
        out.counts.posts += block.len() as u64;
        for chunk in chunks {
            out.counts.matched += chunk.matched;
            for (line_no, e) in &chunk.bad {
                out.bad_line(*line_no, e);
            }
            out.stdout
                .write_all(&chunk.records)
                .map_err(Failure::Write)?;
        }
        if let Some(message) = failed.take() {
            return Err(Failure::Read(message));
        }
    }
    // The queue is closed: the reader has returned.
    let _ = reader.join();
    Ok(())
}

/// The reading thread: sends the non-blank lines of `input` a block at a time, then the
/// read error if there is one, until the input ends or the receiver is gone.
fn read_lines(mut reader: Input, path: &Path, lines: &mpsc::SyncSender<Result<Lines, String>>) {
    loop {
        let sent = match reader.next_block() {
            Ok(Some(block)) if block.lines.is_empty() => Ok(()),
            Ok(Some(block)) => lines.send(Ok(block)),
            Ok(None) => return,
            Err(e) => {
                let _ = lines.send(Err(read_error(path, &e)));
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// The message of a failed read of the posts.
fn read_error(path: &Path, e: &io::Error) -> String {
    format!("cannot read posts {}: {e}", display(path))
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

/// The posts input.
fn open(path: &Path) -> io::Result<Input> {
    if is_stdin(path) {
        Ok(PostBlocks::of_reader(Box::new(io::stdin()), READ_BLOCK))
    } else {
        Ok(PostBlocks::of_file(File::open(path)?, READ_BLOCK))
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

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_model::enrich::write_matching_rules;

    #[test]
    fn rendered_entries_write_what_the_rules_themselves_would() {
        let rules = [
            (1_u64, Some("first")),
            (20, None),
            (300, Some("a \"quoted\"\u{2028}tag")),
            (u64::MAX, Some("")),
        ];
        let mut entries = RenderedEntries::default();
        for &(id, tag) in &rules {
            entries.push(MatchedRule { id, tag });
        }
        assert_eq!(entries.len(), rules.len());
        for positions in [&[][..], &[0], &[3], &[0, 1, 2, 3], &[1, 3], &[2, 0]] {
            let mut rendered = Vec::new();
            entries.write(positions, &mut rendered);
            let mut direct = Vec::new();
            write_matching_rules(
                positions.iter().map(|&p| {
                    let (id, tag) = rules[p as usize];
                    MatchedRule { id, tag }
                }),
                &mut direct,
            );
            assert_eq!(
                String::from_utf8(rendered).expect("UTF-8"),
                String::from_utf8(direct).expect("UTF-8"),
                "{positions:?}"
            );
        }
    }
}
