//! The in-band closing lines of streams, one implementation per error dialect of the
//! product table ([`ErrorDialect`]): what a stream writes before the server ends it.

use std::sync::Arc;

use bytes::Bytes;
use sluice_store::ErrorDialect;
use sluice_wire::ErrorBody;
use sluice_wire::error::{
    CREDENTIALS_REVOKED_MESSAGE, OPERATIONAL_DISCONNECT_MESSAGE, SLOW_CONSUMER_MESSAGE,
    too_many_connections_message,
};
use sluice_wire::v2::{DisconnectType, StreamErrors};

use crate::delivery::{CloseMessages, CloseReason};

/// The closing lines of a product whose errors are in `dialect`.
pub fn close_messages(dialect: ErrorDialect) -> Arc<dyn CloseMessages> {
    match dialect {
        ErrorDialect::Gnip => Arc::new(GnipCloseMessages),
        ErrorDialect::Problem => Arc::new(PowerstreamCloseMessages),
    }
}

/// The in-band messages of Gnip-style streams (docs/compatibility.md, wire rule 7): one
/// `{"error":{"message":…,"sent":…}}` line in the stream `sent` format.
pub struct GnipCloseMessages;

impl CloseMessages for GnipCloseMessages {
    fn close_line(&self, reason: &CloseReason) -> Option<Bytes> {
        let message = match reason {
            CloseReason::SlowConsumer => SLOW_CONSUMER_MESSAGE.to_owned(),
            CloseReason::TooManyConnections { allowed } => too_many_connections_message(*allowed),
            CloseReason::Operational => OPERATIONAL_DISCONNECT_MESSAGE.to_owned(),
            CloseReason::CredentialsRevoked => CREDENTIALS_REVOKED_MESSAGE.to_owned(),
            CloseReason::Completed(line) => return Some(line.clone()),
        };
        let body = ErrorBody::new(message, sluice_wire::sent::stream_sent_now());
        Some(Bytes::from(sluice_wire::to_vec(&body)))
    }
}

/// The in-band lines of `/2/` streams (docs/compatibility.md §7.2): one
/// `{"errors":[{"title":"operational-disconnect","disconnect_type":…,"detail":…,"type":…}]}`
/// line before the server ends the stream, with the texts of docs/compatibility.md ("Decisions") as `detail`.
pub struct PowerstreamCloseMessages;

impl CloseMessages for PowerstreamCloseMessages {
    fn close_line(&self, reason: &CloseReason) -> Option<Bytes> {
        let (kind, detail) = match reason {
            CloseReason::SlowConsumer => (DisconnectType::SlowReader, SLOW_CONSUMER_MESSAGE.into()),
            CloseReason::TooManyConnections { allowed } => (
                DisconnectType::ForceDisconnect,
                too_many_connections_message(*allowed),
            ),
            CloseReason::Operational => (
                DisconnectType::OperationalDisconnect,
                OPERATIONAL_DISCONNECT_MESSAGE.to_owned(),
            ),
            CloseReason::CredentialsRevoked => (
                DisconnectType::ForceDisconnect,
                CREDENTIALS_REVOKED_MESSAGE.to_owned(),
            ),
            CloseReason::Completed(line) => return Some(line.clone()),
        };
        let line = StreamErrors::disconnect(kind, detail);
        Some(Bytes::from(sluice_wire::to_vec(&line)))
    }
}
