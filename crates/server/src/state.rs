//! Everything a request handler needs, built once at start.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use sluice_model::snowflake::SnowflakeGenerator;
use sluice_postlog::PostLog;
use sluice_store::{Product, RateWindow, Store};
use tokio::sync::Semaphore;

use crate::auth::AdminToken;
use crate::auth::basic::Passwords;
use crate::auth::throttle::AuthThrottle;
use crate::clock::now_ms;
use crate::cluster::{Cluster, Readiness};
use crate::compliance::Compliance;
use crate::delivery_mark::DeliveryMark;
use crate::pipeline::{self, PostBus};
use crate::post_log;
use crate::private_files;
use crate::ratelimit::RateLimiter;
use crate::registry::StreamRegistry;
use crate::sessions::Sessions;
use crate::settings::Settings;
use crate::token_use::TokenUse;
use crate::usage;

/// Store calls running off the async workers at once ([`AppState::blocking`]). The store is
/// one SQLite connection behind a mutex, so only one of them is in it at a time; the
/// second turn lets the next call be handed to its thread meanwhile. With one turn, 10,000
/// connections took 5 to 9 % longer to open, each call waiting for the hand-over of the
/// one before (docs/performance.md, "Store calls take turns").
const STORE_TURNS: usize = 2;

/// Usage API requests allowed per account per [`USAGE_API_WINDOW`] (X's documented limit).
pub const USAGE_API_LIMIT: u32 = 2;
/// The window of [`USAGE_API_LIMIT`].
pub const USAGE_API_WINDOW: Duration = Duration::from_secs(60);

/// Shared state of a running server; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The contents of [`AppState`].
pub struct Shared {
    /// The durable store.
    pub store: Arc<Store>,
    /// Live streams with their rules and connections.
    pub registry: Arc<StreamRegistry>,
    /// Where accepted posts go.
    pub bus: PostBus,
    /// The cluster backend in cluster mode (`--nats`); `None` on a single node.
    pub cluster: Option<Arc<dyn Cluster>>,
    /// Whether the node may report ready (`/healthz`).
    pub readiness: Readiness,
    /// Every accepted post for the retention window, appended by the pipeline before it
    /// delivers them (in cluster mode: the backend's log, filled before the pipeline gets
    /// a post): backfill and recovery read it.
    pub post_log: Arc<dyn PostLog>,
    /// How far live delivery has got in `post_log`: where backfill switches to live.
    pub delivery_mark: Arc<DeliveryMark>,
    /// What the compliance events received take away from backfill, recovery and replay.
    pub compliance: Arc<Compliance>,
    /// Rule ids.
    pub ids: SnowflakeGenerator,
    /// The admin and ingest API credential.
    pub admin_token: AdminToken,
    /// Basic-auth password checks: cached, shared by concurrent requests, bounded.
    pub passwords: Passwords,
    /// Budgets of unverified authentication attempts per user and per client address.
    pub auth_throttle: Arc<AuthThrottle>,
    /// The open streams of each basic-auth user and Powerstream token, closed when the
    /// password changes or the user or token goes.
    pub sessions: Sessions,
    /// When each Powerstream token was last used (the operator's token list).
    pub token_use: TokenUse,
    /// The console's signed-in browsers.
    pub(crate) console: crate::console::session::ConsoleSessions,
    /// How the server behaves.
    pub settings: Settings,
    /// Begun (its flag, then its token) when the server shuts down: streams send the
    /// operational message and end.
    pub shutdown: crate::shutdown::Shutdown,
    /// X's rate limits.
    pub limits: Limits,
    /// The Usage API's limit per account (X: 2 requests per minute).
    pub usage_limit: RateLimiter,
    /// Held while a change to accounts, users, streams or tokens is recorded and applied
    /// (see [`crate::changes`]): a change recorded by this node is applied here before any
    /// later one the backend delivers. Rule changes hold their stream's rules gate instead.
    pub(crate) changes_gate: tokio::sync::Mutex<()>,
    /// The turns of store calls to run off the async workers ([`STORE_TURNS`]).
    store_turns: Arc<Semaphore>,
    pipeline: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// The rate limits X documents: per product, a connect limiter and a rules API limiter,
/// built from the product's row of the table ([`Product::spec`]). Each handler chooses its
/// key (a stream, a stream's partition, an account).
pub struct Limits {
    per_product: HashMap<Product, ProductLimiters>,
}

/// The limiters of one product.
struct ProductLimiters {
    connects: Option<RateLimiter>,
    rules: Option<RateLimiter>,
    /// Rules reads, when they are limited apart from changes.
    rule_reads: Option<RateLimiter>,
}

impl Default for Limits {
    fn default() -> Self {
        let limiter = |rate: RateWindow| RateLimiter::new(rate.limit, rate.window);
        let per_product = Product::ALL
            .into_iter()
            .map(|product| {
                let spec = product.spec();
                let limiters = ProductLimiters {
                    connects: spec.connect_rate.map(limiter),
                    rules: spec.rules.map(|rules| limiter(rules.rate)),
                    rule_reads: spec.rules.and_then(|rules| rules.reads).map(limiter),
                };
                (product, limiters)
            })
            .collect();
        Self { per_product }
    }
}

impl Limits {
    /// The stream connect limiter of `product`; `None` when its connects are not limited.
    pub fn connects(&self, product: Product) -> Option<&RateLimiter> {
        self.per_product.get(&product)?.connects.as_ref()
    }

    /// The rules API limiter of `product`, a product with a rules API (panics otherwise:
    /// only rules handlers ask).
    pub fn rules(&self, product: Product) -> &RateLimiter {
        self.per_product
            .get(&product)
            .and_then(|l| l.rules.as_ref())
            .expect("only products with a rules API have rules handlers")
    }

    /// The limiter of rules reads of `product`: its own when the product limits reads
    /// apart (v2), else the rules API limiter.
    pub fn rule_reads(&self, product: Product) -> &RateLimiter {
        self.per_product
            .get(&product)
            .and_then(|l| l.rule_reads.as_ref())
            .unwrap_or_else(|| self.rules(product))
    }
}

/// How a node takes part in a cluster; [`Clustering::default`] is a single node.
#[derive(Default)]
pub struct Clustering {
    /// The backend accepted posts and state changes go to.
    pub cluster: Option<Arc<dyn Cluster>>,
    /// The post log to use instead of the node's own: the backend's (see [`BackendLog`]).
    /// The node then opens no post log of its own.
    pub post_log: Option<BackendLog>,
    /// The Snowflake worker id of this node's rule ids (distinct per node in a cluster).
    pub worker_id: u16,
}

/// A cluster backend's post log, which holds every post before the backend delivers it to
/// this node ([`crate::pipeline::PostBus::enqueue`]), so the pipeline does not append to
/// it, and the backend enforces its retention.
pub struct BackendLog {
    /// The log.
    pub log: Arc<dyn PostLog>,
    /// The sequence number in it from which the backend delivers posts to this node
    /// (everything before is only in the log): where the [`DeliveryMark`] starts.
    pub delivery_start: u64,
}

/// Where the state lives.
pub enum StoreLocation<'a> {
    /// `DATA_DIR/sluice.db` and the post log in `DATA_DIR/postlog/`, created if missing.
    DataDir(&'a Path),
    /// A private in-memory database and post log (tests).
    Memory,
}

impl AppState {
    /// Opens the store and the post log, loads every stream and its rules, and starts the
    /// pipeline and the post log's retention trim.
    pub fn open(
        location: StoreLocation<'_>,
        settings: Settings,
        admin_token: AdminToken,
    ) -> anyhow::Result<AppState> {
        Self::open_with(location, settings, admin_token, Clustering::default())
    }

    /// Like [`AppState::open`], as a member of a cluster: the store is this node's cache of
    /// the shared state, and the node reports ready only once the backend has loaded it
    /// ([`Readiness::set_loaded`]).
    ///
    /// Long on purpose: start-up in the order its parts depend on one another (store, post
    /// log, registry and its rules, pipeline, rule ids, readiness), each step's failure named
    /// in context.
    pub fn open_with(
        location: StoreLocation<'_>,
        settings: Settings,
        admin_token: AdminToken,
        clustering: Clustering,
    ) -> anyhow::Result<AppState> {
        let (store, log_dir) = match location {
            StoreLocation::DataDir(dir) => {
                private_files::create_dir_all(dir)
                    .with_context(|| format!("creating data dir {}", dir.display()))?;
                let path = dir.join("sluice.db");
                let store =
                    Store::open(&path).with_context(|| format!("opening {}", path.display()))?;
                (store, Some(dir))
            }
            StoreLocation::Memory => (Store::open_in_memory()?, None),
        };
        // The pipeline appends to the node's own log; a cluster's log is filled upstream.
        let (post_log, appended_log, delivery_start) = match clustering.post_log {
            Some(backend) => (backend.log, None, backend.delivery_start),
            None => {
                let own = post_log::open(log_dir, settings.post_log_max_bytes)?;
                post_log::start_trimmer(&own, &settings);
                // Nothing in it was delivered to a connection of this process.
                let next = own.next_seq();
                (own.clone(), Some(own), next)
            }
        };
        let store = Arc::new(store);
        let registry = Arc::new(StreamRegistry::default());
        let mut last_rule_id = 0;
        let mut rules_loaded = 0usize;
        for stored in store.all_streams()? {
            let stream = registry.upsert(&stored);
            let rules = store.rules(stored.id)?;
            let mut compiled = Vec::with_capacity(rules.len());
            for rule in rules {
                last_rule_id = last_rule_id.max(rule.id);
                match sluice_rules::parse(&rule.value) {
                    Ok(tree) => compiled.push((rule.id, tree, rule.tag)),
                    Err(e) => tracing::warn!(rule = rule.id, "stored rule no longer parses: {e}"),
                }
            }
            rules_loaded += compiled.len();
            stream.rules.apply(&compiled, &[]);
        }
        tracing::info!(
            streams = registry.all().len(),
            rules = rules_loaded,
            "loaded state"
        );
        // A cluster node receives every event from the backend; a single node keeps them.
        let compliance = if clustering.cluster.is_some() {
            Compliance::in_memory()
        } else {
            let retention = i64::try_from(settings.post_log_retention.as_millis()).unwrap_or(0);
            Compliance::kept_in(store.clone(), now_ms() - retention)
                .context("loading the compliance events")?
        };
        let (bus, delivery_mark, pipeline) = pipeline::start(
            registry.clone(),
            compliance.clone(),
            appended_log,
            settings.datacenter.as_str().into(),
            clustering.cluster.clone(),
            delivery_start,
            settings.match_threads,
        );
        usage::flush::start_flusher(&registry, &store, settings.usage_flush_interval);
        let ids = SnowflakeGenerator::resume(clustering.worker_id, last_rule_id)
            .context("rule id generator")?;
        let readiness = if clustering.cluster.is_some() {
            Readiness::loading()
        } else {
            Readiness::ready()
        };
        let auth_throttle = Arc::new(AuthThrottle::new(
            settings.auth.attempts_per_user,
            settings.auth.attempts_per_client,
            settings.auth.attempt_window,
        ));
        Ok(AppState(Arc::new(Shared {
            store,
            registry,
            bus,
            cluster: clustering.cluster,
            readiness,
            post_log,
            delivery_mark,
            compliance,
            ids,
            admin_token,
            passwords: Passwords::new(&settings.auth, auth_throttle.clone()),
            auth_throttle,
            sessions: Sessions::default(),
            token_use: TokenUse::default(),
            console: Default::default(),
            settings,
            shutdown: crate::shutdown::Shutdown::new(),
            limits: Limits::default(),
            usage_limit: RateLimiter::new(USAGE_API_LIMIT, USAGE_API_WINDOW),
            changes_gate: tokio::sync::Mutex::new(()),
            store_turns: Arc::new(Semaphore::new(STORE_TURNS)),
            pipeline: std::sync::Mutex::new(Some(pipeline)),
        })))
    }

    /// Runs a blocking store operation off the async workers, at most `STORE_TURNS` (two) at
    /// once.
    ///
    /// The store is one SQLite connection behind a mutex, so more calls running at once
    /// would only wait for it. Calls therefore wait for a turn here, without a thread, and
    /// only then ask tokio for a blocking thread. Without the turns, a burst of calls
    /// (thousands of stream connections opening at once, each looking up its credential)
    /// had tokio start a thread for each call waiting on the mutex: 44 to 62 more threads
    /// in a run of `sluice bench connections`, whose stacks and allocator caches stayed in
    /// the server's memory after the burst (docs/performance.md, "Store calls take
    /// turns").
    pub async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> R + Send + 'static,
    ) -> R {
        self.blocking_then(f, |done| done).await
    }

    /// [`AppState::blocking`], then `then` on the same thread after the call's turn is
    /// given back. For work that must follow a store change even when the caller goes away
    /// meanwhile, but must not hold up other store calls: publishing rules to the matcher,
    /// which waits for matching in progress.
    pub async fn blocking_then<R: Send + 'static, T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> R + Send + 'static,
        then: impl FnOnce(R) -> T + Send + 'static,
    ) -> T {
        // The turn goes with the work: a caller that stops waiting does not end the call,
        // so the call keeps the turn until it is done.
        let turn = self
            .store_turns
            .clone()
            .acquire_owned()
            .await
            .expect("the store's turns are never closed");
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let done = f(&store);
            drop(turn);
            then(done)
        })
        .await
        .expect("store calls and what follows them do not panic")
    }

    /// Stops the pipeline at shutdown and waits up to `timeout` for it to log and deliver
    /// every post accepted before; `false` if it did not finish in time.
    pub async fn stop_pipeline(&self, timeout: Duration) -> bool {
        self.bus.stop().await;
        let handle = self
            .pipeline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(handle) = handle else {
            return true;
        };
        let compliance = self.compliance.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let joined = handle.join();
            // The pipeline has handed over its last events: keep them, then stop.
            compliance.close();
            joined
        });
        matches!(tokio::time::timeout(timeout, joined).await, Ok(Ok(Ok(()))))
    }

    /// Stores the usage counts not stored yet (at shutdown, once the pipeline is done).
    pub async fn flush_usage(&self) {
        let registry = self.registry.clone();
        if let Err(e) = self
            .blocking(move |s| usage::flush::flush(&registry, s))
            .await
        {
            tracing::error!("storing usage counts failed: {e}");
        }
    }

    /// Whether a pipeline thread handle is still held (it is taken at shutdown).
    pub fn pipeline_running(&self) -> bool {
        self.pipeline
            .lock()
            .map(|p| p.as_ref().is_some_and(|h| !h.is_finished()))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    use super::*;

    fn state() -> AppState {
        AppState::open(
            StoreLocation::Memory,
            Settings::default(),
            AdminToken::new("test-admin-token"),
        )
        .unwrap()
    }

    /// Counts the calls running at once, and the most there were.
    #[derive(Default)]
    struct Overlap {
        running: AtomicUsize,
        most: AtomicUsize,
    }

    impl Overlap {
        fn during<R>(&self, work: impl FnOnce() -> R) -> R {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            let done = work();
            self.running.fetch_sub(1, Ordering::SeqCst);
            done
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_store_calls_runs_no_more_calls_at_once_than_there_are_turns() {
        let state = state();
        let overlap = Arc::new(Overlap::default());
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..32 {
            let (state, overlap) = (state.clone(), overlap.clone());
            calls.spawn(async move {
                state
                    .blocking(move |s| {
                        overlap.during(|| {
                            std::thread::sleep(Duration::from_millis(2));
                            s.account_exists("nobody").unwrap()
                        })
                    })
                    .await
            });
        }
        while let Some(exists) = calls.join_next().await {
            assert!(!exists.unwrap());
        }
        let most = overlap.most.load(Ordering::SeqCst);
        assert!((1..=STORE_TURNS).contains(&most), "{most} calls at once");
    }

    /// Starts a call per turn, each held until `finish` is dropped, and waits until all
    /// run; with `in_then`, each holds in what follows its store call instead.
    async fn hold_every_turn(
        state: &AppState,
        in_then: bool,
    ) -> (Vec<tokio::task::JoinHandle<()>>, mpsc::Sender<()>) {
        let (started, has_started) = mpsc::channel();
        let (finish, may_finish) = mpsc::channel::<()>();
        let may_finish = Arc::new(std::sync::Mutex::new(may_finish));
        let mut held = Vec::new();
        for _ in 0..STORE_TURNS {
            let (state, started, may_finish) = (state.clone(), started.clone(), may_finish.clone());
            let hold = move || {
                started.send(()).unwrap();
                // Ends when `finish` is dropped.
                let _ = may_finish.lock().unwrap().recv();
            };
            held.push(tokio::spawn(async move {
                if in_then {
                    state.blocking_then(|_| (), move |()| hold()).await
                } else {
                    state.blocking(move |_| hold()).await
                }
            }));
        }
        tokio::task::spawn_blocking(move || {
            for _ in 0..STORE_TURNS {
                let started = has_started.recv_timeout(Duration::from_secs(10));
                started.expect("a call per turn runs at once");
            }
        })
        .await
        .unwrap();
        (held, finish)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_keeps_its_turn_after_its_caller_stops_waiting() {
        let state = state();
        let (held, finish) = hold_every_turn(&state, false).await;
        for caller in held {
            caller.abort();
            assert!(caller.await.unwrap_err().is_cancelled());
        }
        let next = tokio::spawn({
            let state = state.clone();
            async move { state.blocking(|_| ()).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!next.is_finished(), "a call ran beside every turn's");
        drop(finish);
        next.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_follows_a_store_call_runs_after_its_turn_is_given_back() {
        let state = state();
        let (held, finish) = hold_every_turn(&state, true).await;
        // Every turn's call is still in what follows it: a store call gets a turn meanwhile.
        let next = state.blocking(|s| s.account_exists("nobody").unwrap());
        let next = tokio::time::timeout(Duration::from_secs(10), next).await;
        assert_eq!(next, Ok(false));
        drop(finish);
        for caller in held {
            caller.await.unwrap();
        }
    }
}
