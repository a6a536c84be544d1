//! The node as a cluster backend sees it: [`ClusterNode`] implemented over [`AppState`],
//! so that `sluice-cluster` drives the node through that interface only.

use bytes::Bytes;
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use sluice_store::StoreError;

use crate::changes;
use crate::cluster::{Change, ClusterNode, NodeStopped, Whereabouts};
use crate::post::IngestedPost;
use crate::state::AppState;

impl ClusterNode for AppState {
    fn deliver_posts(
        &self,
        posts: Vec<IngestedPost>,
        next_seq: u64,
    ) -> BoxFuture<'_, Result<(), NodeStopped>> {
        async move {
            self.bus
                .enqueue(posts, Some(next_seq))
                .await
                .map_err(|_| NodeStopped)
        }
        .boxed()
    }

    fn receive_compliance(&self, lines: Vec<Bytes>) {
        self.compliance.receive(lines.iter().map(Bytes::as_ref));
    }

    fn apply(&self, change: Change) -> BoxFuture<'_, Result<(), StoreError>> {
        changes::apply(self, change)
            .map(|applied| applied.map(drop))
            .boxed()
    }

    fn set_loaded(&self) {
        self.readiness.set_loaded();
    }

    fn set_problem(&self, problem: Option<String>) {
        self.readiness.set_problem(problem);
    }

    fn whereabouts(&self) -> Whereabouts {
        Whereabouts {
            datacenter: self.settings.datacenter.clone(),
            public_url: self.settings.public_url.clone(),
        }
    }

    fn stopped(&self) -> BoxFuture<'static, ()> {
        self.shutdown.token().cancelled_owned().boxed()
    }
}
