//! The store's behaviour as the server relies on it: identity of streams, the add/delete
//! semantics of the rules API, the rule limit, cascades, and durability across reopen.

use sluice_store::{AddOutcome, NewRule, Product, Store, StoreError, StreamLimits, StreamRef};

const LIMITS: StreamLimits = StreamLimits {
    max_connections: 2,
    max_rules: 250_000,
};

fn stream(product: Product, label: &str) -> StreamRef {
    StreamRef {
        account: "acme".into(),
        product,
        label: label.into(),
    }
}

fn new_rule(id: u64, value: &str, tag: Option<&str>) -> NewRule {
    NewRule {
        id,
        value: value.into(),
        tag: tag.map(str::to_owned),
    }
}

fn store_with_stream() -> (Store, i64) {
    let store = Store::open_in_memory().unwrap();
    assert!(store.put_account("acme", 1).unwrap());
    let (s, created) = store
        .put_stream(&stream(Product::PowerTrack, "prod"), LIMITS, 1)
        .unwrap();
    assert!(created);
    (store, s.id)
}

#[test]
fn accounts_and_users_are_created_once_and_updated_after() {
    let store = Store::open_in_memory().unwrap();
    assert!(store.put_account("acme", 1).unwrap());
    assert!(!store.put_account("acme", 2).unwrap());
    assert!(store.account_exists("acme").unwrap());
    assert!(!store.account_exists("other").unwrap());

    assert!(store.put_user("acme", "alice", "h1").unwrap());
    assert!(!store.put_user("acme", "alice", "h2").unwrap());
    assert_eq!(
        store.password_hash("acme", "alice").unwrap().as_deref(),
        Some("h2")
    );
    assert_eq!(store.password_hash("other", "alice").unwrap(), None);
    assert_eq!(store.usernames("acme").unwrap(), ["alice"]);
    assert!(matches!(
        store.put_user("nobody", "bob", "h"),
        Err(StoreError::NoSuchAccount(a)) if a == "nobody"
    ));
}

#[test]
fn a_deleted_user_is_gone_and_deleting_it_again_finds_nothing() {
    let store = Store::open_in_memory().unwrap();
    store.put_account("acme", 1).unwrap();
    store.put_user("acme", "alice", "h1").unwrap();
    store.put_user("acme", "bob", "h2").unwrap();
    assert!(store.delete_user("acme", "alice").unwrap());
    assert!(!store.delete_user("acme", "alice").unwrap());
    assert!(!store.delete_user("other", "bob").unwrap());
    assert_eq!(store.password_hash("acme", "alice").unwrap(), None);
    assert_eq!(store.usernames("acme").unwrap(), ["bob"]);
}

#[cfg(unix)]
#[test]
fn a_new_database_and_its_wal_files_are_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db");
    let store = Store::open(&path).unwrap();
    store.put_account("acme", 1).unwrap();
    let mode = |name: &str| {
        let meta = std::fs::metadata(dir.path().join(name)).unwrap();
        meta.permissions().mode() & 0o777
    };
    assert_eq!(mode("sluice.db"), 0o600);
    assert_eq!(mode("sluice.db-wal"), 0o600);
    assert_eq!(mode("sluice.db-shm"), 0o600);
}

#[test]
fn a_label_can_exist_once_per_product() {
    let (store, pt) = store_with_stream();
    let (deca, created) = store
        .put_stream(&stream(Product::Decahose, "prod"), LIMITS, 1)
        .unwrap();
    assert!(created);
    assert_ne!(deca.id, pt);
    let bigger = StreamLimits {
        max_connections: 5,
        max_rules: 10,
    };
    let (again, created) = store
        .put_stream(&stream(Product::PowerTrack, "prod"), bigger, 2)
        .unwrap();
    assert!(!created);
    assert_eq!((again.id, again.limits), (pt, bigger));
    assert_eq!(store.streams("acme").unwrap().len(), 2);
}

#[test]
fn adding_reports_existing_rules_including_earlier_in_the_batch() {
    let (store, s) = store_with_stream();
    let first = store
        .add_rules(s, &[new_rule(10, "cat", Some("pets"))], 100, 5)
        .unwrap();
    assert!(matches!(&first[0], AddOutcome::Created(r) if r.id == 10));

    let out = store
        .add_rules(
            s,
            &[
                new_rule(11, "cat", Some("other tag")),
                new_rule(12, "dog", None),
                new_rule(13, "dog", Some("again")),
                new_rule(14, "Cat", None),
            ],
            100,
            6,
        )
        .unwrap();
    let ids: Vec<(bool, u64)> = out
        .iter()
        .map(|o| match o {
            AddOutcome::Created(r) => (true, r.id),
            AddOutcome::Existing(r) => (false, r.id),
        })
        .collect();
    // Values are compared exactly: "Cat" is a different rule from "cat".
    assert_eq!(ids, [(false, 10), (true, 12), (false, 12), (true, 14)]);
    let listed: Vec<_> = store
        .rules(s)
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.value, r.tag))
        .collect();
    assert_eq!(
        listed,
        [
            (10, "cat".to_owned(), Some("pets".to_owned())),
            (12, "dog".to_owned(), None),
            (14, "Cat".to_owned(), None),
        ]
    );
}

#[test]
fn the_rule_limit_refuses_the_whole_add() {
    let (store, s) = store_with_stream();
    store
        .add_rules(s, &[new_rule(1, "a", None), new_rule(2, "b", None)], 3, 1)
        .unwrap();
    let err = store
        .add_rules(s, &[new_rule(3, "c", None), new_rule(4, "d", None)], 3, 2)
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::RuleLimit {
            existing: 2,
            adding: 2,
            limit: 3
        }
    ));
    assert_eq!(
        store.rule_count(s).unwrap(),
        2,
        "nothing of the refused add is kept"
    );
    // Duplicates do not count towards the limit.
    store
        .add_rules(s, &[new_rule(5, "a", None), new_rule(6, "c", None)], 3, 3)
        .unwrap();
    assert_eq!(store.rule_count(s).unwrap(), 3);
}

#[test]
fn previews_answer_like_the_change_and_change_nothing() {
    let (store, s) = store_with_stream();
    store
        .add_rules(
            s,
            &[new_rule(1, "a", None), new_rule(2, "b", Some("t"))],
            4,
            1,
        )
        .unwrap();
    let batch = [
        new_rule(3, "c", None),
        new_rule(4, "a", None),
        new_rule(5, "c", Some("again")),
    ];
    let previewed = store.preview_add_rules(s, &batch, 4, 2).unwrap();
    assert_eq!(
        store.rules(s).unwrap().len(),
        2,
        "the preview added nothing"
    );
    let added = store.add_rules(s, &batch, 4, 2).unwrap();
    assert_eq!(previewed, added);
    assert!(matches!(&previewed[..], [
        AddOutcome::Created(c), AddOutcome::Existing(a), AddOutcome::Existing(c2)
    ] if c.id == 3 && a.id == 1 && c2.id == 3));
    let over = store
        .preview_add_rules(s, &[new_rule(6, "d", None), new_rule(7, "e", None)], 4, 3)
        .unwrap_err();
    assert!(matches!(
        over,
        StoreError::RuleLimit {
            existing: 3,
            adding: 2,
            limit: 4
        }
    ));

    let (by_id, by_value) = store
        .preview_delete_rules(s, &[1, 1, 99, u64::MAX], &["b", "a", "zzz"])
        .unwrap();
    let ids = |found: &[Option<sluice_store::StoredRule>]| {
        found
            .iter()
            .map(|r| r.as_ref().map(|r| r.id))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&by_id), [Some(1), None, None, None]);
    assert_eq!(ids(&by_value), [Some(2), None, None], "'a' went by id");
    assert_eq!(
        store.rules(s).unwrap().len(),
        3,
        "the preview deleted nothing"
    );
}

#[test]
fn deleting_by_value_and_by_id() {
    let (store, s) = store_with_stream();
    store
        .add_rules(
            s,
            &[
                new_rule(1, "a", None),
                new_rule(2, "b", Some("t")),
                new_rule(3, "c", None),
            ],
            100,
            1,
        )
        .unwrap();
    let by_value = store.delete_rules_by_values(s, &["b", "zzz", "A"]).unwrap();
    assert_eq!(
        by_value
            .iter()
            .map(|r| r.as_ref().map(|r| r.id))
            .collect::<Vec<_>>(),
        [Some(2), None, None]
    );
    let by_id = store.delete_rules_by_ids(s, &[3, 3, 99, u64::MAX]).unwrap();
    assert_eq!(
        by_id.iter().map(Option::is_some).collect::<Vec<_>>(),
        [true, false, false, false]
    );
    assert_eq!(store.rules(s).unwrap().len(), 1);
    assert_eq!(store.rules_by_ids(s, &[1, 2]).unwrap().len(), 1);
}

#[test]
fn deleting_a_stream_deletes_its_rules_and_only_its_own() {
    let (store, s) = store_with_stream();
    let (deca, _) = store
        .put_stream(&stream(Product::Decahose, "prod"), LIMITS, 1)
        .unwrap();
    store
        .add_rules(s, &[new_rule(1, "a", None)], 100, 1)
        .unwrap();
    let gone = store
        .delete_streams("acme", "prod", Some(Product::PowerTrack))
        .unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(store.rule_count(s).unwrap(), 0);
    assert_eq!(store.streams("acme").unwrap()[0].id, deca.id);
    assert_eq!(store.delete_streams("acme", "prod", None).unwrap().len(), 1);
    assert!(store.streams("acme").unwrap().is_empty());
}

#[test]
fn tokens_are_found_by_hash() {
    let store = Store::open_in_memory().unwrap();
    store.put_account("acme", 1).unwrap();
    store.add_token("acme", &[1, 2, 3], "sl_abc", 1).unwrap();
    assert_eq!(
        store.token_account(&[1, 2, 3]).unwrap().as_deref(),
        Some("acme")
    );
    assert_eq!(store.token_account(&[1, 2, 4]).unwrap(), None);
    assert_eq!(store.token_prefixes("acme").unwrap(), ["sl_abc"]);
}

#[test]
fn everything_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db");
    let s = {
        let store = Store::open(&path).unwrap();
        store.put_account("acme", 1).unwrap();
        let (s, _) = store
            .put_stream(&stream(Product::PowerTrack, "prod"), LIMITS, 1)
            .unwrap();
        store
            .add_rules(s.id, &[new_rule(7, "kept", Some("t"))], 10, 1)
            .unwrap();
        store.set_setting("admin_token_hash", "x").unwrap();
        s.id
    };
    let store = Store::open(&path).unwrap();
    assert_eq!(store.rules(s).unwrap()[0].value, "kept");
    assert_eq!(
        store.setting("admin_token_hash").unwrap().as_deref(),
        Some("x")
    );
    assert_eq!(store.all_streams().unwrap().len(), 1);
}
