//! One module per subcommand. Each exposes its clap `Args` struct and a `run` function
//! returning the process exit code.

pub mod bench;
pub mod ingest;
pub mod match_cmd;
mod post_lines;
pub mod record;
pub mod rules;
pub mod rules_v2;
pub mod serve;
pub mod source;
pub mod stream;
