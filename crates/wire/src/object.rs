//! Objects only: request bodies and their rule entries must be JSON objects.
//!
//! serde's derived `Deserialize` for a struct also accepts a JSON array, reading the fields
//! by position, so `[[15]]` would pass as `{"rule_ids":[15]}` and `{"rules":[["a","t"]]}`
//! as a rule `a` tagged `t`. X documents objects; an array there is a malformed body.
//! [`ObjectOnly`] reads a struct through `deserialize_map`, which refuses anything but an
//! object and still reports the position of the error.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

/// A `T` that was written as a JSON object.
pub(crate) struct ObjectOnly<T>(pub(crate) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = ObjectOnly<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(ObjectOnly)
    }
}

/// Parses a body that must be a JSON object, in UTF-8.
///
/// JSON text is UTF-8. serde_json checks the strings it reads, but skips the ones a type
/// ignores without looking at them, so invalid UTF-8 in an unknown member would pass; a
/// body that is not UTF-8 is refused as a whole, with the position of the bad bytes.
pub(crate) fn from_slice<'a, T: Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        // Reading every string (as a `Value`) fails at the bad bytes, naming their position.
        Err(_) => {
            return serde_json::from_slice::<serde_json::Value>(body)
                .and_then(|_| Err(serde::de::Error::custom("the body is not UTF-8")));
        }
    };
    serde_json::from_str::<ObjectOnly<T>>(text).map(|ObjectOnly(value)| value)
}

/// A `deserialize_with` reader for a list whose entries must be JSON objects.
pub(crate) fn objects<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let entries: Vec<ObjectOnly<T>> = Vec::deserialize(deserializer)?;
    Ok(entries.into_iter().map(|ObjectOnly(entry)| entry).collect())
}

/// [`objects`] for an optional list: `null` reads as absent, as serde reads an `Option`.
pub(crate) fn some_objects<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let entries: Option<Vec<ObjectOnly<T>>> = Option::deserialize(deserializer)?;
    Ok(entries.map(|entries| entries.into_iter().map(|ObjectOnly(entry)| entry).collect()))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Pair {
        a: u8,
        #[serde(default)]
        b: Option<u8>,
    }

    #[test]
    fn objects_read_as_before_and_arrays_are_refused_with_a_position() {
        assert_eq!(
            from_slice::<Pair>(br#" {"a":1,"x":[2]} "#).unwrap(),
            Pair { a: 1, b: None }
        );
        assert!(
            serde_json::from_slice::<Pair>(b"[1,2]").is_ok(),
            "serde's own reading"
        );
        let error = from_slice::<Pair>(b"\n [1,2]").unwrap_err().to_string();
        assert!(
            error.contains("expected a JSON object at line 2"),
            "{error}"
        );
        assert!(from_slice::<Pair>(b"null").is_err());
    }

    /// Found by the `rules_request` fuzz target: invalid UTF-8 in a member the type skips.
    #[test]
    fn a_body_that_is_not_utf8_is_refused_even_where_the_bad_bytes_would_be_skipped() {
        let body = b"{\"a\":1,\"x\":[\"i\xd0P\"]}";
        assert!(
            serde_json::from_slice::<Pair>(body).is_ok(),
            "serde's own reading"
        );
        let error = from_slice::<Pair>(body).unwrap_err().to_string();
        assert!(error.contains("column"), "{error}");
        assert!(from_slice::<Pair>(b"{\"a\":1,\"x\xff\":2}").is_err());
    }
}
