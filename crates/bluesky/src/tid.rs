//! Record keys that are TIDs ("timestamp identifiers"), the keys of Bluesky posts.
//!
//! A TID is 13 characters of base32-sortable (`234567abcdefghijklmnopqrstuvwxyz`) encoding
//! a 64-bit integer: the top bit zero, then 53 bits of microseconds since the UNIX epoch,
//! then a 10-bit clock id. Written this way, TIDs sort as text in the order of their
//! times. Decoded here by hand: it is twelve lines, and no well-kept crate carries just it.

/// The base32-sortable alphabet, in value order.
const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// Bits of the clock id, below the timestamp.
const CLOCK_BITS: u32 = 10;

/// The timestamp's width.
const TIMESTAMP_MASK: u64 = (1 << 53) - 1;

/// A decoded TID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tid {
    /// Microseconds since the UNIX epoch (53 bits).
    pub micros: u64,
    /// The generating clock's id (10 bits).
    pub clock_id: u16,
}

impl Tid {
    /// Reads `key` as a TID: exactly 13 characters of the alphabet, the first one of its
    /// first 16 (so the value fits in 64 bits; the AT Protocol's own syntax check). `None`
    /// for anything else.
    pub fn parse(key: &str) -> Option<Tid> {
        let bytes = key.as_bytes();
        if bytes.len() != 13 {
            return None;
        }
        let mut value: u64 = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let digit = ALPHABET.iter().position(|&a| a == b)? as u64;
            if i == 0 && digit >= 16 {
                return None;
            }
            // 13 × 5 = 65 bits; the first digit's top bit is known zero, so this
            // cannot overflow.
            value = (value << 5) | digit;
        }
        Some(Tid {
            micros: (value >> CLOCK_BITS) & TIMESTAMP_MASK,
            clock_id: (value & ((1 << CLOCK_BITS) - 1)) as u16,
        })
    }

    /// The TID's text for `micros` and `clock_id` (tests and fixtures write keys so).
    pub fn format(micros: u64, clock_id: u16) -> String {
        let value = ((micros & TIMESTAMP_MASK) << CLOCK_BITS)
            | u64::from(clock_id & ((1 << CLOCK_BITS) - 1));
        (0..13)
            .rev()
            .map(|i| ALPHABET[((value >> (5 * i)) & 31) as usize] as char)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_decodes_to_its_time_and_clock() {
        // Worked out by hand from the alphabet: 2024-11-20 10:26:57.590112 UTC, clock 17.
        assert_eq!(
            Tid::parse("3lbeqfiezv22l"),
            Some(Tid {
                micros: 1_732_098_417_590_112,
                clock_id: 17
            })
        );
    }

    #[test]
    fn format_and_parse_round_trip_and_sort_by_time() {
        let keys: Vec<String> = [
            (0, 0),
            (1, 1023),
            (1_732_000_000_000_000, 7),
            (TIMESTAMP_MASK, 5),
        ]
        .iter()
        .map(|&(micros, clock)| Tid::format(micros, clock))
        .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys, "text order is time order");
        for (key, (micros, clock)) in keys.iter().zip([
            (0, 0),
            (1, 1023),
            (1_732_000_000_000_000, 7),
            (TIMESTAMP_MASK, 5),
        ]) {
            assert_eq!(key.len(), 13);
            assert_eq!(
                Tid::parse(key),
                Some(Tid {
                    micros,
                    clock_id: clock
                })
            );
        }
    }

    #[test]
    fn other_keys_are_not_tids() {
        for key in [
            "",
            "self",
            "3lbeqfiezv22",   // 12 characters
            "3lbeqfiezv22la", // 14
            "3lbeqfiezv221",  // '1' is not in the alphabet
            "3LBEQFIEZV22L",  // upper case
            "zlbeqfiezv22l",  // first character beyond 64 bits
            "3lbeqfiezv2é",
        ] {
            assert_eq!(Tid::parse(key), None, "{key:?}");
        }
    }
}
