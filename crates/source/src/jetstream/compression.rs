//! Jetstream's compressed frames: with `compress=true` every event arrives as a binary
//! WebSocket message holding one zstd frame made with Jetstream's dictionary (a
//! dictionary trained on the firehose's JSON; see `NOTICE.md` beside this file for its
//! origin and licence). The dictionary is parsed once per [`Decompressor`].

use std::io::{self, Read as _};

use zstd::dict::DecoderDictionary;

/// Jetstream's zstd dictionary (dictionary id 1612007021).
pub const DICTIONARY: &[u8] = include_bytes!("zstd_dictionary");

/// The largest event accepted after decompression: far above any real event, a bound
/// against a frame that would expand without end.
pub const MAX_EVENT_BYTES: u64 = 16 << 20;

/// Decompresses frames with the dictionary, prepared once.
pub struct Decompressor {
    dictionary: DecoderDictionary<'static>,
}

impl Decompressor {
    /// Prepares the dictionary.
    pub fn new() -> Self {
        Self {
            dictionary: DecoderDictionary::copy(DICTIONARY),
        }
    }

    /// The event in `frame`.
    pub fn decompress(&self, frame: &[u8]) -> io::Result<Vec<u8>> {
        let decoder = zstd::stream::read::Decoder::with_prepared_dictionary(
            io::BufReader::new(frame),
            &self.dictionary,
        )?;
        let mut event = Vec::with_capacity(frame.len() * 4);
        decoder.take(MAX_EVENT_BYTES + 1).read_to_end(&mut event)?;
        if event.len() as u64 > MAX_EVENT_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a compressed event expands past {MAX_EVENT_BYTES} bytes"),
            ));
        }
        Ok(event)
    }
}

impl Default for Decompressor {
    fn default() -> Self {
        Self::new()
    }
}

/// `event` as Jetstream sends it to a client that asked for compression. sluice only
/// reads such frames; this exists for test servers standing in for Jetstream.
pub fn compress(event: &[u8]) -> io::Result<Vec<u8>> {
    zstd::bulk::Compressor::with_dictionary(3, DICTIONARY)?.compress(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_made_with_the_dictionary_decompresses_to_the_event() {
        let event = br#"{"did":"did:plc:abc","time_us":1725911162329308,"kind":"commit","commit":{"rev":"3l3qo2vutsw2b","operation":"create","collection":"app.bsky.feed.post","rkey":"3l3qo2vuowo2b","record":{"$type":"app.bsky.feed.post","createdAt":"2024-09-09T19:46:02.102Z","langs":["en"],"text":"hello"},"cid":"bafyrei"}}"#;
        let frame = compress(event).unwrap();
        assert!(frame.len() < event.len(), "the dictionary makes it small");
        assert_eq!(Decompressor::new().decompress(&frame).unwrap(), event);
    }

    #[test]
    fn the_dictionary_is_jetstreams() {
        // A structured zstd dictionary: magic, then its id.
        assert_eq!(&DICTIONARY[..4], &0xEC30_A437_u32.to_le_bytes());
        assert_eq!(
            u32::from_le_bytes(DICTIONARY[4..8].try_into().unwrap()),
            1_612_007_021
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Decompressor::new().decompress(b"not zstd at all").is_err());
        // A frame made without the dictionary cannot be read as one made with it, or at
        // least does not panic.
        let plain = zstd::bulk::compress(b"{}", 3).unwrap();
        let _ = Decompressor::new().decompress(&plain);
    }
}
