//! The post-parse benchmark: every candidate reader of [`PostView`] on the same realistic
//! posts, interleaved in one run so that a noisy machine slows them alike.
//!
//! Run with `cargo bench -p sluice-model --bench parse` (release profile, one thread).
//! Posts come from `sluice-synth` (seed 1, the same posts as
//! `cargo run --release -p sluice-synth --example dump -- posts 20000`).
//!
//! Environment:
//! - `SLUICE_BENCH_POSTS`: posts in the corpus (default 20000);
//! - `SLUICE_BENCH_ROUNDS`: timed passes per candidate (default 7); the median is shown;
//! - `SLUICE_BENCH_ONLY`: time only the candidate of this name (to profile it alone).
//!
//! Each pass is timed twice: by the thread's CPU time (what the figures and speedups use:
//! time the thread spent descheduled on a busy machine does not count) and by wall time
//! (shown for reference).
//!
//! Candidates:
//! - `serde_json`: the derived deserializer, reading the post as
//!   [`sluice_model::post::parse_post_with_serde`] does (which also looks for the post's
//!   own `matching_rules` afterwards), what `parse_post` was before the hand-written pass;
//! - `sonic-rs`: the same derived deserializer driven by sonic-rs (SIMD skipping of
//!   ignored values, strings borrowed from the input);
//! - `simd-json`: the same derived deserializer driven by simd-json, which needs a mutable
//!   copy of each post (the copy is part of its time);
//! - `parse_post`: the shipped reader (the hand-written pass, serde_json as fallback).

use std::hint::black_box;
use std::time::{Duration, Instant};

use sluice_model::post::{PostView, parse_post};
use sluice_synth::PostGenerator;

const POST_SEED: u64 = 1;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// One way of reading a post; returns something derived from the view so the work is kept.
struct Candidate {
    name: &'static str,
    read: fn(&[u8]) -> usize,
}

/// What a candidate returns for one post: a few fields, so the view cannot be skipped.
fn digest(post: &PostView<'_>) -> usize {
    post.id().unwrap_or(0) as usize
        ^ post.full_text().len()
        ^ post
            .user
            .as_ref()
            .map_or(0, |u| u.screen_name.as_deref().map_or(0, str::len))
}

fn candidates() -> Vec<Candidate> {
    vec![
        Candidate {
            name: "serde_json",
            // The derived deserializer alone, as `parse_post_with_serde` reads valid UTF-8,
            // without its look for the post's own `matching_rules` afterwards: the
            // baseline the other readers are compared with, as it was measured first.
            read: |p| {
                std::str::from_utf8(p)
                    .ok()
                    .and_then(|text| serde_json::from_str::<PostView<'_>>(text).ok())
                    .map_or(0, |v| digest(&v))
            },
        },
        Candidate {
            name: "sonic-rs",
            read: |p| sonic_rs::from_slice::<PostView<'_>>(p).map_or(0, |v| digest(&v)),
        },
        Candidate {
            name: "simd-json",
            read: |p| {
                let mut copy = p.to_vec();
                simd_json::serde::from_slice::<PostView<'_>>(&mut copy).map_or(0, |v| digest(&v))
            },
        },
        Candidate {
            name: "parse_post",
            read: |p| parse_post(p).map_or(0, |v| digest(&v)),
        },
    ]
}

/// One timed pass over every post: (wall time, thread CPU time).
#[inline(never)]
fn pass(posts: &[Vec<u8>], read: fn(&[u8]) -> usize) -> (Duration, Duration) {
    let (wall, cpu) = (Instant::now(), thread_cpu_time());
    let mut total = 0usize;
    for p in posts {
        total = total.wrapping_add(read(black_box(p)));
    }
    black_box(total);
    (wall.elapsed(), thread_cpu_time().saturating_sub(cpu))
}

/// CPU time consumed by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is supported on
    // every platform this benchmark runs on (Linux).
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn main() {
    let count: usize = env_or("SLUICE_BENCH_POSTS", 20_000);
    let rounds: usize = env_or("SLUICE_BENCH_ROUNDS", 7).max(1);
    if cfg!(debug_assertions) {
        println!("WARNING: debug build; run `cargo bench -p sluice-model --bench parse`");
    }
    let posts: Vec<Vec<u8>> = PostGenerator::new(POST_SEED)
        .take(count)
        .map(String::into_bytes)
        .collect();
    let bytes: usize = posts.iter().map(Vec::len).sum();
    println!(
        "corpus: {count} posts, {:.0} B average (seed {POST_SEED}); {rounds} interleaved rounds, median shown",
        bytes as f64 / count as f64
    );
    let candidates = candidates();
    // Every candidate must read every post as the reference does before it is timed.
    for c in &candidates[1..] {
        let wrong = posts
            .iter()
            .filter(|p| (c.read)(p) != (candidates[0].read)(p))
            .count();
        assert_eq!(
            wrong, 0,
            "{} disagrees with serde_json on {wrong} posts",
            c.name
        );
    }
    let only = std::env::var("SLUICE_BENCH_ONLY").ok();
    let mut candidates = candidates;
    if let Some(only) = &only {
        candidates.retain(|c| c.name == only);
    }
    let mut walls = vec![Vec::with_capacity(rounds); candidates.len()];
    let mut cpus = vec![Vec::with_capacity(rounds); candidates.len()];
    for _ in 0..rounds {
        for (i, c) in candidates.iter().enumerate() {
            let (wall, cpu) = pass(&posts, c.read);
            walls[i].push(wall);
            cpus[i].push(cpu);
        }
    }
    if candidates.is_empty() {
        println!("no candidate named {only:?}");
        return;
    }
    let base_cpu = median(&mut cpus[0]).as_secs_f64();
    let base_wall = median(&mut walls[0]).as_secs_f64();
    println!(
        "{:<12} {:>10} {:>8} {:>8}   {:>10} {:>8}",
        "candidate", "posts/s", "MB/s", "speedup", "wall p/s", "speedup"
    );
    for (i, c) in candidates.iter().enumerate() {
        let cpu = median(&mut cpus[i]).as_secs_f64();
        let wall = median(&mut walls[i]).as_secs_f64();
        println!(
            "{:<12} {:>10.0} {:>8.0} {:>7.2}x   {:>10.0} {:>7.2}x",
            c.name,
            count as f64 / cpu,
            bytes as f64 / cpu / 1e6,
            base_cpu / cpu,
            count as f64 / wall,
            base_wall / wall
        );
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}
