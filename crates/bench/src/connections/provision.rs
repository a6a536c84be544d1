//! What the connections bench creates on the server, per API, through the admin and rules
//! APIs as an operator and a customer would:
//! - PowerTrack: streams `conns-1` … `conns-S` of at most [`PER_STREAM`] connections each
//!   (X allows 60 connects per minute per stream, so no connect of a cycle waits for a
//!   rate-limit window; a later cycle first waits for a new window), each with the
//!   connection cap its share needs and the one bench rule.
//! - Powerstream: the account's Powerstream rule set with its connection cap raised to
//!   all the connections (through the admin API), a bearer token, and the bench rule.

use anyhow::Context as _;
use serde_json::json;
use sluice_client::http::{Auth, HttpClient};
use sluice_wire::{AddResponse, v2};
use url::Url;

use super::posts::RULE;
use super::{Api, ConnectionsConfig};
use crate::benchmark::Encoding;
use crate::provision::{self, ACCOUNT};
use crate::target::Target;

/// PowerTrack connections per stream: under X's 60 connects per minute per stream.
pub const PER_STREAM: usize = 50;
/// The tag of the bench rule.
const TAG: &str = "bench-connections";
/// The label prefix of the PowerTrack streams.
const LABEL: &str = "conns";
/// The label of the account's Powerstream rule set.
const POWERSTREAM: &str = "powerstream";

/// The streams made for a run: connection `i` reads stream `i mod streams`.
pub struct Planned {
    urls: Vec<Url>,
    labels: Vec<String>,
    auth: Auth,
    gzip: bool,
}

/// One connection to open.
pub struct ConnectionPlan {
    /// The stream URL.
    pub url: Url,
    /// Its credentials.
    pub auth: Auth,
    /// Whether it asks for gzip.
    pub gzip: bool,
}

impl Planned {
    /// Connection number `i`.
    pub fn connection(&self, i: usize) -> ConnectionPlan {
        ConnectionPlan {
            url: self.urls[i % self.urls.len()].clone(),
            auth: self.auth.clone(),
            gzip: self.gzip,
        }
    }
}

/// Creates the run's streams and rules.
pub async fn provision(
    client: &HttpClient,
    target: &Target,
    config: &ConnectionsConfig,
) -> anyhow::Result<Planned> {
    let gzip = config.encoding == Encoding::Gzip;
    match config.api {
        Api::Powertrack => powertrack(client, target, config.connections, gzip).await,
        Api::Powerstream => powerstream(client, target, config.connections, gzip).await,
    }
}

async fn powertrack(
    client: &HttpClient,
    target: &Target,
    connections: usize,
    gzip: bool,
) -> anyhow::Result<Planned> {
    let auth = provision::account(client, target).await?;
    let streams = connections.div_ceil(PER_STREAM);
    let per_stream = connections.div_ceil(streams);
    crate::progress(&format!(
        "creating {streams} PowerTrack streams of {per_stream} connections, one rule each"
    ));
    let labels: Vec<String> = (1..=streams).map(|n| format!("{LABEL}-{n}")).collect();
    let mut urls = Vec::with_capacity(streams);
    for label in &labels {
        let spec = json!({"product": "powertrack", "max_connections": per_stream, "max_rules": 10});
        provision::fresh_stream(client, target, label, spec).await?;
        let path = format!("accounts/{ACCOUNT}/publishers/twitter/{label}.json");
        let rules_url = target.base.join(&format!("rules/powertrack/{path}"))?;
        let rule = [(RULE.to_owned(), TAG.to_owned())];
        let added: AddResponse = provision::add_batch(client, &rules_url, &auth, &rule).await?;
        anyhow::ensure!(
            added.summary.created == 1,
            "adding the bench rule to {label}"
        );
        urls.push(target.base.join(&format!("stream/powertrack/{path}"))?);
    }
    Ok(Planned {
        urls,
        labels,
        auth,
        gzip,
    })
}

async fn powerstream(
    client: &HttpClient,
    target: &Target,
    connections: usize,
    gzip: bool,
) -> anyhow::Result<Planned> {
    let account_path = provision::put_account(client, target).await?;
    crate::progress(&format!(
        "raising the account's Powerstream connection cap to {connections}"
    ));
    provision::delete_stream(client, target, POWERSTREAM, Some(POWERSTREAM), true).await?;
    let spec = json!({"product": POWERSTREAM, "max_connections": connections});
    provision::fresh_stream(client, target, POWERSTREAM, spec)
        .await
        .context(
            "setting the Powerstream connection cap through the admin API (a server older \
             than this bench refuses it)",
        )?;
    let token = provision::new_powerstream_token(client, target, &account_path).await?;
    let auth = Auth::Bearer(token);
    let rules_url = target.base.join("2/powerstream/rules")?;
    let rule = [(RULE.to_owned(), TAG.to_owned())];
    let added: v2::AddResponse = provision::add_batch(client, &rules_url, &auth, &rule).await?;
    anyhow::ensure!(
        added.meta.summary.created == 1,
        "adding the bench rule to the Powerstream"
    );
    Ok(Planned {
        urls: vec![target.base.join("2/powerstream")?],
        labels: vec![POWERSTREAM.to_owned()],
        auth,
        gzip,
    })
}

/// Deletes what the run created on a server the bench does not own (the account and a
/// Powerstream token stay).
pub async fn remove(
    client: &HttpClient,
    target: &Target,
    config: &ConnectionsConfig,
    planned: &Planned,
) -> anyhow::Result<()> {
    for label in &planned.labels {
        provision::delete_stream(client, target, label, Some(config.api.name()), true).await?;
    }
    Ok(())
}
