//! Fuzzes the Bluesky converter (`sluice_bluesky::Converter`): the input is split into
//! lines, each converted in turn by one converter (so later lines meet the handles and
//! posts earlier ones left in its caches). No input may panic it; every post it produces
//! passes the ingest check with the id it reported, every delete is a compliance event
//! about that id, and an error's message stays short.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_bluesky::{Converter, Output};
use sluice_model::check_line;
use sluice_model::compliance::{EventKind, parse_event};

fuzz_target!(|bytes: &[u8]| {
    let mut converter = Converter::with_capacities(4, 4);
    for line in bytes.split(|&b| b == b'\n') {
        match converter.convert(line) {
            Ok(converted) => match converted.output {
                Output::Post { id, line } => {
                    let post = check_line(&line).expect("ingest accepts every post");
                    assert_eq!(post.id(), Some(id));
                    assert!(!line.contains(&b'\n'));
                }
                Output::Delete { id, line } => {
                    let event = parse_event(&line).expect("ingest accepts every delete");
                    assert_eq!(event.kind, EventKind::Delete);
                    assert_eq!(event.status_id, Some(id));
                }
                Output::Nothing => {}
            },
            Err(error) => {
                let message = error.to_string();
                assert!(message.len() < 400, "{message}");
            }
        }
    }
});
