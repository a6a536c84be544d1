//! The content encoding of a stream body: chosen per connection, read by the outbox, the
//! body and the fan-out; a leaf so that none of them imports another for it.

/// How a stream body is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `Content-Encoding: gzip`.
    Gzip,
    /// No content encoding (Powerstream without `Accept-Encoding: gzip`).
    Identity,
}
