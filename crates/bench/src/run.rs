//! The flow every benchmark follows, whatever the product ([`Benchmark`] says what
//! differs): start or reach the server, generate the workload while provisioning, open the
//! connections, add the rules, send the posts at the target rate while the readers count
//! and time every arrival, wait for what is still on its way, tidy up, and put the report
//! together.
//!
//! Cluster (`--cluster N`): everything is provisioned through node 1, and the bench waits
//! until every node shows it (users, streams, token, then the rule counts) before it
//! connects or ingests. Connection `i` reads from node `i mod N` and ingest request `k`
//! goes to node `k mod N`, so every post crosses JetStream to reach most of its readers and
//! every connection must still receive every post it should, whichever node it reads from.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, ensure};
use sluice_client::http::{HttpClient, Response};
use tokio::sync::watch;

use crate::benchmark::{Benchmark, LineFormat, Provisioned, RulePlan};
use crate::config::{Config, Pacing, ServerChoice};
use crate::cpu::Processes;
use crate::ingest::{self, IngestReport, Plan};
use crate::progress;
use crate::reader::{self, ReaderReport, Shared};
use crate::replication;
use crate::report::{self, Cpu, Machine, Measured, Nats, Report, Server};
use crate::target::Target;
use crate::workload::{Expect, Posts, Rules, Share};

/// Read timeout of every client connection: more than X's 30 s for streams (heartbeats
/// come every 10 s).
const READ_TIMEOUT: Duration = Duration::from_secs(35);
/// How often the drain checks whether everything arrived.
const DRAIN_POLL: Duration = Duration::from_millis(10);
/// The step that adds the rules, as errors and progress name it.
const ADDING_RULES: &str = "adding rules";

/// Runs `bench` as `config` says and reports what it measured.
pub(crate) async fn run<B: Benchmark>(bench: &B, config: &Config) -> anyhow::Result<Report> {
    let machine = Machine::detect();
    let post_count = config.pacing.posts();
    ensure!(post_count > 0, "--rate × --duration is less than one post");
    let target = start(&config.server)?;
    let server = describe(&target, &config.server);

    // Generating and matching the posts takes seconds: it runs while the stream is set up.
    let workload = generate(bench.rules(), config.pacing, post_count);
    let client = HttpClient::new(&config.tls, Some(READ_TIMEOUT))?;
    target.wait_healthy(&client).await?;
    let provisioned = bench.provision(&client, &target).await?;
    let (connections, rules, posts) = if bench.rules_before_connect() {
        let (rules, posts) = generated(workload, post_count).await?;
        wait_for(&client, &target, &provisioned.replicated, "provisioning").await?;
        add_rules(
            bench,
            &client,
            &target,
            &provisioned.rules_api,
            rules.as_ref(),
        )
        .await?;
        let connections = open(&client, &target, &provisioned).await?;
        (connections, rules, posts)
    } else {
        wait_for(&client, &target, &provisioned.replicated, "provisioning").await?;
        let connections = open(&client, &target, &provisioned).await?;
        let (rules, posts) = generated(workload, post_count).await?;
        add_rules(
            bench,
            &client,
            &target,
            &provisioned.rules_api,
            rules.as_ref(),
        )
        .await?;
        (connections, rules, posts)
    };

    let posts = Arc::new(posts);
    let (ingested, readers, cpu) = measure(&target, config, &posts, connections).await?;
    if !target.is_spawned() {
        bench
            .remove(&client, &target, &provisioned.rules_api)
            .await?;
    }
    drop(target);

    Ok(report::assemble(Measured {
        benchmark: bench.name(),
        goal: bench.goal(),
        setup: bench.setup(rules.as_ref().is_some_and(Rules::has_share_rule)),
        pacing: config.pacing,
        machine,
        server,
        posts: &posts,
        ingested: &ingested,
        readers: &readers,
        cpu,
    }))
}

/// Starts the server under test (or reaches a running one).
fn start(choice: &ServerChoice) -> anyhow::Result<Target> {
    match choice {
        ServerChoice::Running { base, admin_token } => {
            Ok(Target::external(base.clone(), admin_token.clone()))
        }
        ServerChoice::Cluster { serve, nodes } => {
            progress(&format!(
                "starting nats-server and a cluster of {nodes} sluice serve nodes"
            ));
            Target::spawn_cluster(serve, *nodes)
        }
        ServerChoice::Spawn(serve) => {
            progress("starting sluice serve");
            Target::spawn(serve)
        }
    }
}

/// How the report names the server under test (said on stderr at once, too).
fn describe(target: &Target, choice: &ServerChoice) -> Server {
    let description = target.describe();
    progress(&format!("server: {description}"));
    let nats = target.describe_nats().zip(target.nats_pid());
    if let Some((nats, _)) = &nats {
        progress(&format!("nats: {nats}"));
    }
    Server {
        description,
        pids: target.pids(),
        cluster: match choice {
            ServerChoice::Cluster { nodes, .. } => Some(*nodes),
            _ => None,
        },
        nats: nats.map(|(description, pid)| Nats { description, pid }),
    }
}

/// The run's rules (for a rules product) and posts, generated on a blocking thread.
type Generated = tokio::task::JoinHandle<anyhow::Result<(Option<Rules>, Posts)>>;

/// Starts generating the rules `plan` asks for and `count` posts, timed from now at the
/// pacing's rate, with which posts each stream must deliver.
fn generate(plan: Option<RulePlan>, pacing: Pacing, count: usize) -> Generated {
    let start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let (seed, rate) = (pacing.seed, pacing.rate);
    tokio::task::spawn_blocking(move || match plan {
        Some(plan) => {
            let mut rules = Rules::generate(seed, plan.count, plan.dialect, plan.streams)?;
            let expect = Expect::Matching(&mut rules);
            let posts = Posts::generate(seed, count, rate, start_ms, expect)?;
            Ok((Some(rules), posts))
        }
        None => Ok((
            None,
            Posts::generate(seed, count, rate, start_ms, Expect::Every)?,
        )),
    })
}

/// The generated rules and posts, once the generator is done.
async fn generated(
    workload: Generated,
    post_count: usize,
) -> anyhow::Result<(Option<Rules>, Posts)> {
    progress(&format!("generating {post_count} posts"));
    workload.await.context("the workload generator failed")?
}

/// Adds `rules` (for a rules product) through the product's rules API and, in a cluster,
/// waits until every node has them.
async fn add_rules<B: Benchmark>(
    bench: &B,
    client: &HttpClient,
    target: &Target,
    api: &B::RulesApi,
    rules: Option<&Rules>,
) -> anyhow::Result<()> {
    let Some(rules) = rules else {
        return Ok(());
    };
    bench.add_rules(client, api, rules).await?;
    wait_for(client, target, &bench.with_rules(api, rules), ADDING_RULES).await
}

/// In a cluster, waits until every node shows `expected`, the result of step `what`
/// (`provisioning` or `adding rules`).
async fn wait_for(
    client: &HttpClient,
    target: &Target,
    expected: &replication::Expected,
    what: &str,
) -> anyhow::Result<()> {
    if target.nodes.len() > 1 {
        let things = if what == ADDING_RULES {
            "the rules"
        } else {
            "the account and its streams"
        };
        progress(&format!(
            "waiting until the {} nodes have {things}",
            target.nodes.len()
        ));
        replication::wait(client, target, expected, what).await?;
    }
    Ok(())
}

/// Opens the connections, connection `i` on node `i mod N`.
async fn open<R>(
    client: &HttpClient,
    target: &Target,
    provisioned: &Provisioned<R>,
) -> anyhow::Result<Vec<Opened>> {
    let wanted = &provisioned.connections;
    progress(&format!("opening {} stream connections", wanted.len()));
    let mut opened = Vec::with_capacity(wanted.len());
    for (i, c) in wanted.iter().enumerate() {
        let url = target.on_node(&c.url, i)?;
        let open = opened.len();
        let response = reader::connect(client, &url, &c.auth, c.gzip, |wait| {
            progress(&format!(
                "{open} connections open; the connect rate limit allows more in {:.0} s",
                wait.as_secs_f64()
            ));
        })
        .await?;
        opened.push(Opened {
            response,
            share: c.share,
            lines: c.lines,
        });
    }
    Ok(opened)
}

/// An open connection, not read yet.
struct Opened {
    response: Response,
    share: Share,
    lines: LineFormat,
}

/// The timed part: the readers on `connections`, the paced ingest of `posts`, the drain,
/// and the CPU used meanwhile.
async fn measure(
    target: &Target,
    config: &Config,
    posts: &Arc<Posts>,
    connections: Vec<Opened>,
) -> anyhow::Result<(IngestReport, Vec<ReaderReport>, Cpu)> {
    let shared = Arc::new(Shared {
        posts: posts.clone(),
        epoch: Instant::now(),
        arrived: AtomicU64::new(0),
    });
    let all: u64 = connections
        .iter()
        .map(|c| posts.expected_on(c.share) as u64)
        .sum();
    let (stop, stopped) = watch::channel(false);
    let readers: Vec<_> = connections
        .into_iter()
        .map(|c| {
            let read = reader::read(
                c.response,
                c.share,
                c.lines,
                shared.clone(),
                stopped.clone(),
            );
            tokio::spawn(read)
        })
        .collect();

    let pacing = &config.pacing;
    progress(&format!(
        "sending {} posts at {} posts/s for {:.1} s",
        posts.len(),
        pacing.rate,
        pacing.duration.as_secs_f64()
    ));
    let processes = Processes::of(target);
    let cpu_before = processes.snapshot();
    let plan = Plan {
        urls: target
            .nodes
            .iter()
            .map(|node| node.join("ingest"))
            .collect::<Result<_, _>>()?,
        token: target.admin_token.clone(),
        rate: pacing.rate,
        interval: pacing.batch_interval,
        tls: config.tls.clone(),
    };
    let ingested = ingest::spawn(plan, posts.clone(), shared.epoch)?
        .await
        .context("the ingest thread stopped")??;

    // Wait for what is still on its way.
    let last_answer = Duration::from_micros(ingested.last_answer_us().unwrap_or(0));
    let deadline = shared.epoch + last_answer + pacing.drain;
    while shared.arrived.load(Ordering::Relaxed) < all
        && Instant::now() < deadline
        && !readers.iter().all(|r| r.is_finished())
    {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let window_end = shared.now_us();
    let cpu_after = processes.snapshot();
    let _ = stop.send(true);
    let mut reports = Vec::with_capacity(readers.len());
    for reader in readers {
        reports.push(reader.await.context("a stream reader panicked")?);
    }
    let window = Duration::from_micros(window_end.saturating_sub(ingested.started_us));
    Ok((
        ingested,
        reports,
        cpu_before.usage_until(&cpu_after, window),
    ))
}
