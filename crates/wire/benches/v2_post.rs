//! The v2 Post conversion benchmark: posts per second converted from native bytes to the
//! serialised v2 line, with the default fields and with every field and expansion the
//! conversion supports, next to parsing alone (`sluice_model::parse_post`, what every
//! delivered post already costs) so the ratio is visible.
//!
//! Run with `cargo bench -p sluice-wire --bench v2_post` (release profile, one thread).
//! Posts come from `sluice-synth` with a fixed seed. `SLUICE_BENCH_POSTS` sets the corpus
//! size (default 20000).

use std::hint::black_box;
use std::time::{Duration, Instant};

use sluice_model::parse_post;
use sluice_synth::PostGenerator;
use sluice_wire::v2_post::{V2Fields, to_v2_bytes, with_matching_rules};

const POST_SEED: u64 = 20_261_101;
const RUNS: usize = 3;

/// Every field and expansion the conversion fills from a native post.
const ALL: &[(&str, &str)] = &[
    (
        "tweet.fields",
        "author_id,created_at,lang,source,possibly_sensitive,conversation_id,in_reply_to_user_id,display_text_range,public_metrics,referenced_tweets,entities,attachments,geo,edit_controls",
    ),
    (
        "expansions",
        "author_id,entities.mentions.username,referenced_tweets.id,referenced_tweets.id.author_id,attachments.media_keys,geo.place_id",
    ),
    (
        "user.fields",
        "created_at,description,location,verified,protected,public_metrics,profile_image_url,url",
    ),
    (
        "media.fields",
        "url,preview_image_url,width,height,alt_text,duration_ms,variants",
    ),
    ("place.fields", "country,country_code,name,place_type,geo"),
];

/// Posts per second of `f` over the corpus, best of [`RUNS`] passes, and the bytes it
/// produced in the last pass.
fn throughput(posts: &[String], mut f: impl FnMut(&[u8]) -> usize) -> (f64, usize) {
    let mut best = Duration::MAX;
    let mut bytes = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        bytes = posts.iter().map(|p| f(p.as_bytes())).sum();
        best = best.min(start.elapsed());
    }
    (posts.len() as f64 / best.as_secs_f64(), bytes)
}

/// Converts and serialises one post as the stream would write it.
fn line(post: &[u8], fields: &V2Fields) -> usize {
    let v2 = to_v2_bytes(post, fields).expect("synthetic posts are JSON");
    let v2 = with_matching_rules(v2, &[("1128017341835464704", None)]);
    black_box(sluice_wire::to_vec(&v2)).len()
}

fn main() {
    let count = std::env::var("SLUICE_BENCH_POSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let mut generator = PostGenerator::new(POST_SEED);
    let posts: Vec<String> = (0..count).map(|_| generator.next_post()).collect();
    let native_bytes: usize = posts.iter().map(String::len).sum();
    let all = V2Fields::parse(ALL.iter().copied()).expect("documented names");

    let (parse, _) = throughput(&posts, |p| {
        black_box(parse_post(p).expect("synthetic posts parse"));
        1
    });
    let (default, default_bytes) = throughput(&posts, |p| line(p, &V2Fields::default()));
    let (full, full_bytes) = throughput(&posts, |p| line(p, &all));

    println!(
        "v2 Post conversion, {count} posts ({} B/post native)",
        native_bytes / count
    );
    println!(
        "{:<32} {:>12} {:>10} {:>12}",
        "", "posts/s", "B/post", "× parse"
    );
    println!(
        "{:<32} {:>12.0} {:>10} {:>12}",
        "parse_post (native)", parse, "-", "1.00"
    );
    for (name, rate, bytes) in [
        ("to_v2 default fields", default, default_bytes),
        ("to_v2 all fields + expansions", full, full_bytes),
    ] {
        println!(
            "{name:<32} {rate:>12.0} {:>10} {:>12.2}",
            bytes / count,
            parse / rate
        );
    }
}
