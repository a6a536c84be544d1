//! Compliance events at a node's start. Events travel in the posts stream like posts
//! (on [`compliance_subject`](crate::names::compliance_subject)), and a running node takes
//! them in as its pipeline delivers them. A node that starts later has not seen the
//! earlier ones: before it consumes anything, it reads the events the stream holds up to
//! its starting point, alone (a filtered consumer), and hands them to the node, so what
//! they take away from replays is in force on every node alike (docs/compliance.md).

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, ReplayPolicy, push};
use async_nats::jetstream::stream;
use futures_util::StreamExt;
use sluice_server::cluster::ClusterNode;

use crate::names::COMPLIANCE_SUBJECTS;
use crate::posts::Position;

/// Events handed to the node at a time.
const BATCH: usize = 1_024;
/// The longest the catch-up may take before the node goes on without the rest.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// Hands `node` every compliance event stored before `start` (where its consumer
/// begins); returns how many.
pub async fn catch_up(
    posts: &stream::Stream,
    client: &async_nats::Client,
    node: &dyn ClusterNode,
    start: Position,
) -> anyhow::Result<usize> {
    let consumer = posts
        .create_consumer(push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            description: Some("sluice compliance catch-up".to_owned()),
            filter_subject: COMPLIANCE_SUBJECTS.to_owned(),
            replay_policy: ReplayPolicy::Instant,
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(0);
    }
    let mut messages = consumer.messages().await?;
    let mut total = 0;
    let mut lines = Vec::new();
    let read = async {
        while let Some(message) = messages.next().await {
            let message = message?;
            let info = message.info().map_err(|e| anyhow::anyhow!("{e}"))?;
            let (sequence, pending) = (info.stream_sequence, info.pending);
            if sequence >= start.next() {
                break;
            }
            lines.push(message.payload.clone());
            if lines.len() == BATCH {
                total += lines.len();
                node.receive_compliance(std::mem::take(&mut lines));
            }
            if pending == 0 {
                break;
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(CATCH_UP_TIMEOUT, read)
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))??;
    total += lines.len();
    node.receive_compliance(lines);
    Ok(total)
}
