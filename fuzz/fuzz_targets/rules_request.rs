//! Fuzzes the rules API request bodies: the PowerTrack (Gnip) add/validate body, the
//! `rule_ids` body and the delete body, and the Powerstream (`/2/`) delete body. No input
//! may panic a parser; what one accepts, written back as JSON, reads back the same; and the
//! two readers of `rule_ids` agree.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use sluice_wire::{DeleteRequest, RuleIdsRequest, RulesRequest, v2};

/// The Gnip delete body that `request` was read from, up to ignored keys.
fn gnip_delete_json(request: &DeleteRequest) -> Value {
    match request {
        DeleteRequest::Values(entries) => {
            let rules: Vec<Value> = entries
                .iter()
                .map(|e| json!({ "value": e.value, "tag": e.tag }))
                .collect();
            json!({ "rules": rules })
        }
        DeleteRequest::Ids(ids) => json!({ "rule_ids": ids }),
    }
}

/// The Powerstream delete body that `request` was read from, up to ignored keys. An absent
/// `id` stays absent (an explicit `null` is not an id).
fn v2_delete_json(request: &v2::DeleteRequest) -> Value {
    let rules: Vec<Value> = request
        .rules
        .iter()
        .map(|e| {
            let mut entry = json!({ "value": e.value });
            if let Some(id) = &e.id {
                entry["id"] = json!(id);
            }
            entry
        })
        .collect();
    json!({ "rules": rules })
}

fuzz_target!(|bytes: &[u8]| {
    if let Ok(request) = RulesRequest::from_slice(bytes) {
        let again = RulesRequest::from_slice(&sluice_wire::to_vec(&request))
            .expect("a written add body reads back");
        assert_eq!(again, request);
    }
    let ids = RuleIdsRequest::from_slice(bytes);
    if let Ok(request) = &ids {
        let again = RuleIdsRequest::from_slice(&sluice_wire::to_vec(request))
            .expect("a written rule_ids body reads back");
        assert_eq!(&again, request);
    }
    match DeleteRequest::from_slice(bytes) {
        Ok(request) => {
            let written = serde_json::to_vec(&gnip_delete_json(&request)).expect("json");
            let again = DeleteRequest::from_slice(&written).expect("a written delete reads back");
            assert_eq!(again, request);
            // A delete by ids reads its ids as the rule_ids body does.
            if let DeleteRequest::Ids(deleted) = &request {
                assert_eq!(&ids.expect("the same rule_ids").rule_ids, deleted);
            }
        }
        Err(_) => {
            // Only ambiguity (`rules` beside `rule_ids`) refuses a readable rule_ids body.
            if ids.is_ok() {
                // The keys only: a value may hold a number no `Value` can (`11e3616`), which
                // the rule_ids reader skips as it skips every other key's value.
                let keys: BTreeMap<String, IgnoredAny> =
                    serde_json::from_slice(bytes).expect("it was a JSON object");
                assert!(keys.contains_key("rules"), "rule_ids read, delete refused");
            }
        }
    }
    if let Ok(request) = v2::DeleteRequest::from_slice(bytes) {
        let written = serde_json::to_vec(&v2_delete_json(&request)).expect("json");
        let again =
            v2::DeleteRequest::from_slice(&written).expect("a written v2 delete reads back");
        assert_eq!(again, request);
    }
});
