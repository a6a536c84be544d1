//! Prints generated data, to look at it or feed it to `sluice match`:
//! `cargo run -p sluice-synth --example dump -- posts 100 [SEED] > posts.ndjson`,
//! `cargo run -p sluice-synth --example dump -- rules 100 [SEED] > rules.json`
//! (a PowerTrack add-rules body).

use std::io::{BufWriter, Write};

use sluice_synth::{PostGenerator, RuleGenerator};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let what = args.first().map(String::as_str).unwrap_or("posts");
    let count: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(10);
    let seed: u64 = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1);
    let mut out = BufWriter::new(std::io::stdout().lock());
    match what {
        "rules" => {
            let rules: Vec<serde_json::Value> = RuleGenerator::new(seed)
                .take(count)
                .map(|value| serde_json::json!({ "value": value, "tag": null }))
                .collect();
            serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "rules": rules }))?;
            writeln!(out)?;
        }
        _ => {
            for post in PostGenerator::new(seed).take(count) {
                writeln!(out, "{post}")?;
            }
        }
    }
    out.flush()
}
