//! Measures the segment log: appends per second and disk bytes per post, with and without
//! compression, on synthetic native posts (`sluice-synth`), and read-back speed.
//!
//! `cargo run --release -p sluice-postlog --example append_throughput [POSTS] [BATCH]`
//! (defaults: 200,000 posts in batches of 100). Writes to a temporary directory.

use std::time::Instant;

use sluice_postlog::{NewPost, PostLog, SegmentLog, SegmentOptions};
use sluice_synth::PostGenerator;

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map_or(200_000, |a| a.parse().expect("POSTS"));
    let batch: usize = args.next().map_or(100, |a| a.parse().expect("BATCH"));
    let pool: Vec<String> = PostGenerator::new(42).take(5_000).collect();
    let raw_avg = pool.iter().map(String::len).sum::<usize>() as f64 / pool.len() as f64;
    println!("{total} synthetic posts, average {raw_avg:.0} bytes, batches of {batch}");
    for compress in [false, true] {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = SegmentOptions {
            compress,
            ..SegmentOptions::default()
        };
        let log = SegmentLog::open_with(dir.path(), options).expect("open");
        let start = Instant::now();
        let mut written = 0usize;
        let mut raw_bytes = 0usize;
        while written < total {
            let n = batch.min(total - written);
            let posts: Vec<NewPost<'_>> = (written..written + n)
                .map(|i| NewPost {
                    datacenter: "local",
                    bytes: pool[i % pool.len()].as_bytes(),
                })
                .collect();
            raw_bytes += posts.iter().map(|p| p.bytes.len()).sum::<usize>();
            log.append(&posts, 1_000 + written as u64 / 1_000)
                .expect("append");
            written += n;
        }
        let append = start.elapsed().as_secs_f64();
        let start = Instant::now();
        log.sync().expect("sync");
        let sync = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let mut from = 0;
        let mut read = 0usize;
        loop {
            let posts = log.read(from, 1_000).expect("read");
            let Some(last) = posts.last() else { break };
            from = last.seq + 1;
            read += posts.len();
        }
        let read_s = start.elapsed().as_secs_f64();
        assert_eq!(read, total);
        let disk = log.disk_bytes() as f64;
        println!(
            "compress={compress}: {:.0} appends/s ({:.0} MB/s of posts), sync {sync:.2} s, \
             {:.0} disk bytes/post ({:.2} of raw), reads {:.0} posts/s",
            total as f64 / append,
            raw_bytes as f64 / append / 1e6,
            disk / total as f64,
            disk / raw_bytes as f64,
            total as f64 / read_s,
        );
    }
}
