//! Fuzzes the rule parser: it must never panic, and every rule it accepts must print to a
//! canonical form that parses back to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_rules::{Dialect, parse_with};

fuzz_target!(|text: &str| {
    for dialect in [Dialect::PowerTrack, Dialect::Powerstream, Dialect::V2] {
        match parse_with(text, dialect) {
            Ok(rule) => {
                let printed = rule.to_string();
                let again = parse_with(&printed, dialect).unwrap_or_else(|e| {
                    panic!("{text:?} printed as {printed:?}, which fails: {e}")
                });
                assert_eq!(again, rule, "{text:?} printed as {printed:?}");
            }
            Err(error) => {
                // The message is what the API returns: it must be well-formed.
                let message = error.to_string();
                assert!(message.ends_with('\n'), "{text:?}: {message:?}");
            }
        }
    }
});
