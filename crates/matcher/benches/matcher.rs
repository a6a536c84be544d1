//! The matcher benchmark: build time, index memory, throughput against the naive evaluator,
//! and single-rule update latency, at several rule-set sizes in one run.
//!
//! Run with `cargo bench -p sluice-matcher` (release profile, one thread). Data comes from
//! `sluice-synth` (fixed seeds), so runs are comparable across commits and machines.
//!
//! Environment:
//! - `SLUICE_BENCH_SIZES`: comma-separated rule-set sizes (default `1000,10000,100000,250000`);
//! - `SLUICE_BENCH_POSTS`: posts in the corpus (default 20000);
//! - `SLUICE_BENCH_NAIVE_SECS`: time budget of the naive run per size (default 2);
//! - `SLUICE_BENCH_TOP_RULES=N`: also list the N rules that match the most posts at each
//!   size (to see what drives "matching rules/post"), and the number of candidate rules
//!   per post that pass their gates.
//! - `SLUICE_BENCH_RATIO_ROUNDS`: rounds of the interleaved ratio measurement (default 7;
//!   0 skips it), see [`ratios`].
//!
//! Memory is measured with a counting global allocator: bytes live after building the index
//! minus bytes live before (the parsed rules are dropped after insertion, so what remains is
//! the index and its spare capacity).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sluice_matcher::{Matcher, NaiveMatcher, Scratch};
use sluice_model::parse_post;
use sluice_rules::{Rule, parse};
use sluice_synth::{PostGenerator, RuleGenerator};

/// Counts the bytes currently allocated through the global allocator.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counter is bookkeeping only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

const POST_SEED: u64 = 20_261_101;
const RULE_SEED: u64 = 42;
/// Single-rule inserts and removes timed per size.
const UPDATES: usize = 1_000;

/// Targets the table reports against.
const TARGET_AT: usize = 100_000;
const TARGET_POSTS_PER_SEC: f64 = 50_000.0;
const TARGET_SPEEDUP: f64 = 1_000.0;
const UPDATE_TARGET_AT: usize = 250_000;
/// Matching cost over parsing alone (one rule): the largest ratio allowed per rule count.
const RATIO_TARGETS: [(usize, f64); 2] = [(100_000, 1.5), (250_000, 2.0)];
const TARGET_UPDATE: Duration = Duration::from_millis(1);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn sizes() -> Vec<usize> {
    match std::env::var("SLUICE_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .filter_map(|s| s.trim().replace('_', "").parse().ok())
            .collect(),
        Err(_) => vec![1_000, 10_000, 100_000, 250_000],
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn parse_rules(rules: &[String], first_id: u64) -> Vec<(u64, Rule)> {
    rules
        .iter()
        .zip(first_id..)
        .map(|(r, id)| {
            (
                id,
                parse(r).unwrap_or_else(|e| panic!("generated rule {r:?}: {e}")),
            )
        })
        .collect()
}

/// Posts per second of `f` applied to every post, best of `runs` passes.
fn throughput(posts: &[String], runs: usize, mut f: impl FnMut(&[u8]) -> usize) -> (f64, usize) {
    let mut best = Duration::MAX;
    let mut total = 0;
    for _ in 0..runs {
        let start = Instant::now();
        total = 0;
        for p in posts {
            total += f(p.as_bytes());
        }
        best = best.min(start.elapsed());
        black_box(total);
    }
    (posts.len() as f64 / best.as_secs_f64(), total)
}

/// Median and maximum of `samples`.
fn median_max(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort_unstable();
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Row {
    size: usize,
    build: Duration,
    memory: usize,
    match_rate: f64,
    naive_rate: f64,
    naive_posts: usize,
    matches_per_post: f64,
    disagreements: usize,
    insert: (Duration, Duration),
    remove: (Duration, Duration),
}

fn main() {
    let sizes = sizes();
    let post_count: usize = env_or("SLUICE_BENCH_POSTS", 20_000);
    let naive_budget = Duration::from_secs_f64(env_or("SLUICE_BENCH_NAIVE_SECS", 2.0));
    let largest = sizes.iter().copied().max().unwrap_or(0);

    println!("sluice matcher benchmark");
    println!(
        "machine: {} cores available, CPU: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    if cfg!(debug_assertions) {
        println!("WARNING: debug build; run `cargo bench -p sluice-matcher` for real numbers");
    }
    println!("threads: 1 (everything below runs on the main thread)");

    let start = Instant::now();
    let posts: Vec<String> = PostGenerator::new(POST_SEED).take(post_count).collect();
    let bytes: usize = posts.iter().map(String::len).sum();
    let mut rule_gen = RuleGenerator::new(RULE_SEED);
    let rules: Vec<String> = rule_gen.by_ref().take(largest).collect();
    let extra: Vec<String> = rule_gen.take(UPDATES).collect();
    println!(
        "corpus: {} posts ({:.0} B average, seed {POST_SEED}), {} + {UPDATES} rules (seed {RULE_SEED}), generated in {:.1} s",
        posts.len(),
        bytes as f64 / posts.len().max(1) as f64,
        rules.len(),
        start.elapsed().as_secs_f64()
    );

    let (parse_rate, _) = throughput(&posts, 3, |p| {
        let view = parse_post(p).expect("generated posts parse");
        black_box(view.id()).map_or(0, |_| 1)
    });
    println!(
        "(a) parse only: {parse_rate:.0} posts/s ({:.1} MB/s)",
        parse_rate * bytes as f64 / posts.len().max(1) as f64 / 1e6
    );
    println!();

    let mut rows = Vec::new();
    for &size in &sizes {
        rows.push(measure(size, &rules[..size], &extra, &posts, naive_budget));
        let r = rows.last().expect("just pushed");
        eprintln!(
            "  done {size} rules: build {:.2} s, {:.0} posts/s",
            r.build.as_secs_f64(),
            r.match_rate
        );
    }

    println!(
        "| rules | build (parse+insert) | index memory | (b) parse+match posts/s | (c) parse+naive posts/s | (b)/(c) | matching rules/post | insert µs med / max | remove µs med / max |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.2} s ({:.1} µs/rule) | {:.1} MB ({:.0} B/rule) | {:.0} | {:.1} ({} posts) | {:.0}× | {:.2} | {:.1} / {:.1} | {:.1} / {:.1} |",
            r.size,
            r.build.as_secs_f64(),
            micros(r.build) / r.size as f64,
            r.memory as f64 / 1e6,
            r.memory as f64 / r.size as f64,
            r.match_rate,
            r.naive_rate,
            r.naive_posts,
            r.match_rate / r.naive_rate,
            r.matches_per_post,
            micros(r.insert.0),
            micros(r.insert.1),
            micros(r.remove.0),
            micros(r.remove.1),
        );
    }
    println!();
    println!(
        "parse share of parse+match time: {}",
        rows.iter()
            .map(|r| format!(
                "{} rules {:.0} %",
                r.size,
                100.0 * r.match_rate / parse_rate
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let disagreements: usize = rows.iter().map(|r| r.disagreements).sum();
    println!(
        "indexed vs naive on the naive-matched posts: {}",
        if disagreements == 0 {
            "identical results".to_owned()
        } else {
            format!("{disagreements} posts DIFFER")
        }
    );

    let rounds: usize = env_or("SLUICE_BENCH_RATIO_ROUNDS", 7);
    let ratio_rows = if rounds > 0 {
        ratios(&rules, &posts, &sizes, rounds)
    } else {
        Vec::new()
    };
    if !ratio_rows.is_empty() {
        print_ratios(&ratio_rows, rounds);
    }

    println!();
    println!("targets:");
    for (size, target) in RATIO_TARGETS {
        match ratio_rows.iter().find(|r| r.size == size) {
            Some(r) => println!(
                "  {} 1 rule ÷ {size} rules ≤ {target}× (median of {rounds} interleaved rounds): {:.2}×",
                verdict(r.median <= target),
                r.median
            ),
            None => println!("  (ratio at {size} rules not measured: size not run or no rounds)"),
        }
    }
    match rows.iter().find(|r| r.size == TARGET_AT) {
        Some(r) => {
            println!(
                "  {} parse+match at {TARGET_AT} rules ≥ {TARGET_POSTS_PER_SEC:.0} posts/s: {:.0}",
                verdict(r.match_rate >= TARGET_POSTS_PER_SEC),
                r.match_rate
            );
            let speedup = r.match_rate / r.naive_rate;
            println!(
                "  {} indexed ≥ {TARGET_SPEEDUP:.0}× naive at {TARGET_AT} rules: {speedup:.0}×",
                verdict(speedup >= TARGET_SPEEDUP)
            );
        }
        None => println!("  (size {TARGET_AT} not run: throughput targets not checked)"),
    }
    match rows.iter().find(|r| r.size == UPDATE_TARGET_AT) {
        Some(r) => {
            for (what, (median, max)) in [("insert", r.insert), ("remove", r.remove)] {
                println!(
                    "  {} {what} at {UPDATE_TARGET_AT} rules < 1 ms (max of {UPDATES}): median {:.1} µs, max {:.1} µs",
                    verdict(max < TARGET_UPDATE),
                    micros(median),
                    micros(max)
                );
            }
        }
        None => println!("  (size {UPDATE_TARGET_AT} not run: update targets not checked)"),
    }
    println!("total time: {:.1} s", start.elapsed().as_secs_f64());
}

fn measure(
    size: usize,
    rules: &[String],
    extra: &[String],
    posts: &[String],
    naive_budget: Duration,
) -> Row {
    // Build: parse + insert every rule, counting the bytes that stay live.
    let before = live_bytes();
    let start = Instant::now();
    let mut matcher = Matcher::new();
    for (id, text) in (1u64..).zip(rules) {
        let rule = parse(text).unwrap_or_else(|e| panic!("generated rule {text:?}: {e}"));
        matcher.insert(id, &rule);
    }
    let build = start.elapsed();
    let memory = live_bytes().saturating_sub(before);
    black_box(matcher.len());

    let top: usize = env_or("SLUICE_BENCH_TOP_RULES", 0);
    if top > 0 {
        print_top_rules(&matcher, rules, posts, top);
    }

    // (b) parse + match with reused buffers.
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    let (match_rate, total_matches) = throughput(posts, 2, |p| {
        parse_and_match(&matcher, &mut scratch, &mut out, p)
    });

    // (c) parse + naive match on as many posts as fit in the budget.
    let mut naive = NaiveMatcher::new();
    for (id, rule) in parse_rules(rules, 1) {
        naive.insert(id, &rule);
    }
    let mut naive_out = Vec::new();
    let mut naive_posts = 0;
    let mut disagreements = 0;
    let start = Instant::now();
    let mut naive_time = Duration::ZERO;
    for p in posts {
        let t = Instant::now();
        let view = parse_post(p.as_bytes()).expect("generated posts parse");
        naive.match_post(&view, &mut naive_out);
        black_box(&naive_out);
        naive_time += t.elapsed();
        naive_posts += 1;
        matcher.match_post_with(&view, &mut scratch, &mut out);
        if out != naive_out {
            disagreements += 1;
        }
        if start.elapsed() >= naive_budget && naive_posts >= 10 {
            break;
        }
    }
    drop(naive);
    let naive_rate = naive_posts as f64 / naive_time.as_secs_f64();

    // Single-rule updates at this size: insert new rules, then remove old ones, timing each.
    let fresh = parse_rules(extra, size as u64 + 1);
    let mut inserts = Vec::with_capacity(fresh.len());
    for (id, rule) in &fresh {
        let t = Instant::now();
        matcher.insert(*id, rule);
        inserts.push(t.elapsed());
    }
    let mut removes = Vec::with_capacity(extra.len());
    // Remove spread-out existing rules (a fixed stride through the ids).
    let stride = (size / extra.len().max(1)).max(1) as u64;
    for k in 0..extra.len().min(size) as u64 {
        let id = 1 + (k * stride) % size as u64;
        let t = Instant::now();
        let removed = matcher.remove(id);
        removes.push(t.elapsed());
        assert!(removed, "rule {id} was present");
    }
    black_box(matcher.len());

    Row {
        size,
        build,
        memory,
        match_rate,
        naive_rate,
        naive_posts,
        matches_per_post: total_matches as f64 / posts.len() as f64,
        disagreements,
        insert: median_max(&mut inserts),
        remove: median_max(&mut removes),
    }
}

/// One rule count's cost relative to a single rule, over interleaved rounds.
struct RatioRow {
    size: usize,
    /// Median posts/s of the one-rule pass and of this size's pass.
    base_rate: f64,
    rate: f64,
    /// Per round, this size's time over the one-rule time of the same round: median,
    /// lowest and highest.
    median: f64,
    low: f64,
    high: f64,
}

/// Matching cost over parsing alone (the one-rule pass), measured so that a shared,
/// noisy machine hardly skews it: the matchers of every size are built first, then each
/// round passes over all posts with the one-rule matcher and with each larger one in turn,
/// and a round's ratio compares passes run seconds apart. Separate runs per size, minutes
/// apart, gave ratios from 1.67× to 1.94× at 100,000 rules on one build (docs/performance.md,
/// "Measuring the ratios").
fn ratios(rules: &[String], posts: &[String], sizes: &[usize], rounds: usize) -> Vec<RatioRow> {
    let mut larger: Vec<usize> = sizes.iter().copied().filter(|&n| n > 1).collect();
    larger.sort_unstable();
    larger.dedup();
    if larger.is_empty() || rules.is_empty() {
        return Vec::new();
    }
    let build = |n: usize| {
        let mut matcher = Matcher::new();
        for (id, rule) in parse_rules(&rules[..n], 1) {
            matcher.insert(id, &rule);
        }
        matcher
    };
    // The one-rule matcher first, so that index 0 is the baseline.
    let matchers: Vec<Matcher> = std::iter::once(1)
        .chain(larger.iter().copied())
        .map(build)
        .collect();
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    // rates[m][round], in posts/s.
    let mut rates = vec![Vec::with_capacity(rounds); matchers.len()];
    for _ in 0..rounds {
        for (m, matcher) in matchers.iter().enumerate() {
            let (rate, _) = throughput(posts, 1, |p| {
                parse_and_match(matcher, &mut scratch, &mut out, p)
            });
            rates[m].push(rate);
        }
    }
    let base_rate = median(&rates[0]);
    larger
        .iter()
        .zip(&rates[1..])
        .map(|(&size, own)| {
            let mut per_round: Vec<f64> = own
                .iter()
                .zip(&rates[0])
                .map(|(rate, base)| base / rate)
                .collect();
            per_round.sort_unstable_by(f64::total_cmp);
            RatioRow {
                size,
                base_rate,
                rate: median(own),
                median: per_round[per_round.len() / 2],
                low: per_round[0],
                high: per_round[per_round.len() - 1],
            }
        })
        .collect()
}

/// The median of `values` (the upper one of an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// Parses `post` and matches it with reused buffers: the pass every throughput figure
/// times. Returns the number of matching rules.
fn parse_and_match(
    matcher: &Matcher,
    scratch: &mut Scratch,
    out: &mut Vec<u64>,
    post: &[u8],
) -> usize {
    let view = parse_post(post).expect("generated posts parse");
    matcher.match_post_with(&view, scratch, out);
    black_box(&*out).len()
}

/// Prints what [`ratios`] measured.
fn print_ratios(rows: &[RatioRow], rounds: usize) {
    println!();
    println!(
        "matching cost over parsing alone (1 rule), {rounds} interleaved rounds over the same posts:"
    );
    for r in rows {
        println!(
            "  {} rules: {:.2}× median (rounds {:.2}× to {:.2}×); median posts/s 1 rule {:.0}, {} rules {:.0}",
            r.size, r.median, r.low, r.high, r.base_rate, r.size, r.rate
        );
    }
}

/// Prints the `top` rules matching the most posts (untimed diagnostics).
fn print_top_rules(matcher: &Matcher, rules: &[String], posts: &[String], top: usize) {
    let mut hits = vec![0usize; rules.len() + 1];
    let mut out = Vec::new();
    for p in posts {
        let view = parse_post(p.as_bytes()).expect("generated posts parse");
        matcher.match_post(&view, &mut out);
        for &id in &out {
            hits[id as usize] += 1;
        }
    }
    let mut scratch = Scratch::default();
    let candidates: usize = posts
        .iter()
        .map(|p| {
            let view = parse_post(p.as_bytes()).expect("generated posts parse");
            matcher.candidate_count(&view, &mut scratch)
        })
        .sum();
    println!(
        "candidate rules past their gates or sure without one per post at {} rules: {:.1}",
        rules.len(),
        candidates as f64 / posts.len() as f64
    );
    let mut ranked: Vec<(usize, usize)> = hits.iter().copied().enumerate().skip(1).collect();
    ranked.sort_unstable_by_key(|&(_, n)| std::cmp::Reverse(n));
    println!("rules matching the most posts at {} rules:", rules.len());
    for (id, n) in ranked.into_iter().take(top) {
        println!(
            "  {:5.1} % {}",
            100.0 * n as f64 / posts.len() as f64,
            rules[id - 1]
        );
    }
}
