//! [`ApiObjects`]: the API objects pods reference (configMaps, secrets, services,
//! service-account tokens) from the API server, cached and refreshed the kubelet's way
//! (`pkg/kubelet/configmap`, `pkg/kubelet/secret`, `pkg/kubelet/util/manager`,
//! `pkg/kubelet/token/token_manager.go`).
//!
//! ConfigMaps and secrets follow `configMapAndSecretChangeDetectionStrategy`
//! ([`ChangeDetection`]):
//!
//! * `Get`: a GET on every call.
//! * `Cache`: a GET kept for a TTL (1 min by default). The kubelet reads the TTL from the node
//!   annotation `node.alpha.kubernetes.io/ttl`; this source does not read it (the TTL is the
//!   configured one). A refresh asks with `resourceVersion=0` (the API server's cache) and keeps
//!   the cached object when the answer is older; a failed refresh answers the cached object (or
//!   the cached absence) until the next call retries.
//! * `Watch` (the default): each referenced object gets its own list+watch
//!   (`fieldSelector=metadata.name=<name>` in its namespace; resume from the last
//!   resourceVersion, a new list after `410 Gone`, a jittered back-off after failures), started
//!   on first use; later calls answer from its cache without a request. The first call waits
//!   for the first list ([`ObjectOptions::sync_timeout`], then `failed to sync configmap cache:
//!   timed out waiting for the condition`). An object marked `immutable: true` stops being
//!   watched (its cached copy is kept). An object not asked for during 5 ×
//!   [`ObjectOptions::sync_frequency`] has its watch stopped and is dropped (the kubelet
//!   unregisters objects when their pods go and stops idle reflectors after the same time;
//!   [`node_runtime::objects::ObjectSource`] has no registration, so idleness alone decides).
//!
//! Services (for the service environment variables) use the same strategy: a namespace-wide
//! list (and watch) of the pod's namespace plus the master service `default/kubernetes` as one
//! object (the kubelet watches every service of the cluster with one informer).
//!
//! Tokens: `POST .../serviceaccounts/<sa>/token` bound to the pod, cached per request and
//! refreshed after 80 % of their lifetime or 24 h ([`token_needs_refresh`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::authentication::v1::TokenRequest as ApiTokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::{GetParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, Resource};
use node_runtime::objects::{ObjectFuture, ObjectSource, Token, TokenRequest};
use serde_json::json;
use tokio::task::AbortHandle;

use crate::backoff::Backoff;
use crate::error::{Error, Result};

/// The kubelet's default TTL of the `Cache` strategy (`node.alpha.kubernetes.io/ttl` unset).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);

/// The kubelet's default `syncFrequency`.
pub const DEFAULT_SYNC_FREQUENCY: Duration = Duration::from_secs(60);

/// The default [`ObjectOptions::sync_timeout`].
pub const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// A token is refreshed at the latest this long after it was issued (the kubelet's `maxTTL`).
pub const TOKEN_MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// The upper bound (exclusive) of the random jitter of a refresh decision (`maxJitter`).
pub const TOKEN_MAX_JITTER: Duration = Duration::from_secs(10);

/// A watch that ends sooner than this without an event counts as a failure for the back-off.
const SHORT_WATCH: Duration = Duration::from_secs(1);

/// How configMaps and secrets (and services) are kept fresh: the kubelet's
/// `configMapAndSecretChangeDetectionStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChangeDetection {
    /// A GET on every call.
    Get,
    /// A GET kept for `ttl`.
    Cache {
        /// How long a fetched object is answered without asking again.
        ttl: Duration,
    },
    /// A list+watch per referenced object; calls answer from its cache.
    #[default]
    Watch,
}

impl ChangeDetection {
    /// Parses the `configMapAndSecretChangeDetectionStrategy` value: `Get`, `Cache` (with
    /// [`DEFAULT_CACHE_TTL`]) or `Watch`; empty means the default, `Watch`.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming any other value.
    pub fn from_config(value: &str) -> Result<Self> {
        match value {
            "Get" => Ok(ChangeDetection::Get),
            "Cache" => Ok(ChangeDetection::Cache {
                ttl: DEFAULT_CACHE_TTL,
            }),
            "Watch" | "" => Ok(ChangeDetection::Watch),
            other => Err(Error::InvalidValue {
                field: "configMapAndSecretChangeDetectionStrategy",
                value: other.to_owned(),
                expected: "Get, Cache or Watch",
            }),
        }
    }
}

/// Options of [`ApiObjects`].
#[derive(Debug, Clone)]
pub struct ObjectOptions {
    /// The change detection strategy (default `Watch`).
    pub strategy: ChangeDetection,
    /// The kubelet's `syncFrequency` (default 1 min): objects not asked for during 5 × this are
    /// dropped (and their watches stopped).
    pub sync_frequency: Duration,
    /// How long the first call for an object waits for its watch's first list (default 60 s;
    /// the kubelet waits 1 s, but it registers a pod's objects before it asks for them).
    pub sync_timeout: Duration,
    /// `timeoutSeconds` of each watch request (default 290 s, below kube's read timeout).
    pub watch_timeout: u32,
    /// Retry delays of the watches.
    pub backoff: Backoff,
}

impl Default for ObjectOptions {
    fn default() -> Self {
        Self {
            strategy: ChangeDetection::Watch,
            sync_frequency: DEFAULT_SYNC_FREQUENCY,
            sync_timeout: DEFAULT_SYNC_TIMEOUT,
            watch_timeout: 290,
            backoff: Backoff::default(),
        }
    }
}

impl ObjectOptions {
    /// The defaults with `strategy`.
    #[must_use]
    pub fn new(strategy: ChangeDetection) -> Self {
        Self {
            strategy,
            ..Self::default()
        }
    }

    fn idle_limit(&self) -> Duration {
        self.sync_frequency.saturating_mul(5)
    }
}

/// Whether a cached token must be refreshed at `now` (the kubelet's `requiresRefresh`): with
/// `iat = expiration − expiration_seconds`, when `now > iat + 24 h − jitter` or
/// `now > expiration − 20 % × expiration_seconds − jitter`. `jitter` is random in
/// `[0, TOKEN_MAX_JITTER)` in production; tests pass it (and `now`) in.
#[must_use]
pub fn token_needs_refresh(
    now: SystemTime,
    expiration: SystemTime,
    expiration_seconds: i64,
    jitter: Duration,
) -> bool {
    let seconds = u64::try_from(expiration_seconds).unwrap_or(0);
    let lifetime = Duration::from_secs(seconds);
    let iat = expiration
        .checked_sub(lifetime)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let too_old = iat
        .checked_add(TOKEN_MAX_TTL)
        .map(|t| t.checked_sub(jitter).unwrap_or(SystemTime::UNIX_EPOCH));
    if too_old.is_some_and(|t| now > t) {
        return true;
    }
    let margin = Duration::from_secs(seconds.saturating_mul(20) / 100).saturating_add(jitter);
    let refresh_at = expiration
        .checked_sub(margin)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    now > refresh_at
}

/// Checks an `expirationSeconds` as the API server's TokenRequest validation does.
///
/// # Errors
/// The validation message (`spec.expirationSeconds: Invalid value: 599: may not specify a
/// duration less than 10 minutes`, `... larger than 2^32 seconds`).
pub fn validate_expiration_seconds(seconds: i64) -> std::result::Result<(), String> {
    let why = if seconds < 600 {
        "may not specify a duration less than 10 minutes"
    } else if seconds > 1 << 32 {
        "may not specify a duration larger than 2^32 seconds"
    } else {
        return Ok(());
    };
    Err(format!(
        "spec.expirationSeconds: Invalid value: {seconds}: {why}"
    ))
}

/// A kind of referenced object.
trait Referenced:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The kubelet's group resource in `failed to sync <resource> cache`.
    const RESOURCE: &'static str;
    /// The name in messages (`couldn't get configMap ...`).
    const DISPLAY: &'static str;
    /// `immutable: true`.
    fn immutable(&self) -> bool;
}

impl Referenced for ConfigMap {
    const RESOURCE: &'static str = "configmap";
    const DISPLAY: &'static str = "configMap";
    fn immutable(&self) -> bool {
        self.immutable == Some(true)
    }
}

impl Referenced for Secret {
    const RESOURCE: &'static str = "secret";
    const DISPLAY: &'static str = "secret";
    fn immutable(&self) -> bool {
        self.immutable == Some(true)
    }
}

impl Referenced for Service {
    const RESOURCE: &'static str = "service";
    const DISPLAY: &'static str = "service";
    fn immutable(&self) -> bool {
        false
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A DNS subdomain (what object names and namespaces are): anything else is refused before it
/// reaches a URL path.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name != "."
        && name != ".."
}

/// What is kept: one object (`name`) or every object of a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    name: Option<String>,
}

impl Key {
    fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("{}/{n}", self.namespace),
            None => format!("of namespace {}", self.namespace),
        }
    }
}

/// Objects by name: one or none for a named key, the namespace's for a namespace key.
type Found<K> = BTreeMap<String, K>;

/// Why a call failed.
enum Failure {
    /// The watch's first list did not complete (the kubelet's text after `failed to sync
    /// <resource> cache: `).
    Sync(String),
    /// The request failed.
    Api(kube::Error),
    /// The name cannot be an object's.
    InvalidName,
}

fn cause(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => node_util::error_chain(other),
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

fn message<K: Referenced>(key: &Key, failure: Failure) -> String {
    match failure {
        Failure::Sync(why) => format!("failed to sync {} cache: {why}", K::RESOURCE),
        Failure::Api(e) => format!(
            "couldn't get {} {}: {}",
            K::DISPLAY,
            key.describe(),
            cause(&e)
        ),
        Failure::InvalidName => format!(
            "couldn't get {} {}: invalid name",
            K::DISPLAY,
            key.describe()
        ),
    }
}

fn rv_of<K: Resource>(k: &K) -> Option<u64> {
    k.meta().resource_version.as_deref()?.parse().ok()
}

fn name_of<K: Resource>(k: &K) -> String {
    k.meta().name.clone().unwrap_or_default()
}

/// One GET (named key, `any_version`: `resourceVersion=0`) or list (namespace key).
async fn fetch<K: Referenced>(
    client: &kube::Client,
    key: &Key,
    any_version: bool,
) -> std::result::Result<Found<K>, kube::Error> {
    let api: Api<K> = Api::namespaced(client.clone(), &key.namespace);
    match &key.name {
        Some(name) => {
            let params = if any_version {
                GetParams::any()
            } else {
                GetParams::default()
            };
            match api.get_with(name, &params).await {
                Ok(o) => Ok(BTreeMap::from([(name.clone(), o)])),
                Err(e) if is_not_found(&e) => Ok(BTreeMap::new()),
                Err(e) => Err(e),
            }
        }
        None => {
            let list = api.list(&ListParams::default()).await?;
            Ok(list.items.into_iter().map(|o| (name_of(&o), o)).collect())
        }
    }
}

/// The `Cache` strategy's data of one key.
#[derive(Debug)]
struct Cached<K> {
    /// The last successful answer (`None` before the first).
    found: Option<Found<K>>,
    fetched: Option<Instant>,
}

/// The `Watch` strategy's data of one key, shared with its watch task.
#[derive(Debug)]
struct Watched<K> {
    store: Mutex<Found<K>>,
    synced: tokio::sync::watch::Sender<bool>,
}

enum State<K> {
    Cache(Arc<tokio::sync::Mutex<Cached<K>>>),
    Watch {
        shared: Arc<Watched<K>>,
        /// `None` once stopped (an immutable object).
        task: Option<AbortHandle>,
    },
}

struct Entry<K> {
    state: State<K>,
    last_used: Instant,
}

impl<K> Entry<K> {
    fn stop(&mut self) {
        if let State::Watch { task, .. } = &mut self.state
            && let Some(t) = task.take()
        {
            t.abort();
        }
    }
}

/// The kept objects of one kind.
struct Objects<K> {
    entries: Mutex<HashMap<Key, Entry<K>>>,
}

impl<K> Default for Objects<K> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

/// What the objects' calls need.
struct Ctx<'a> {
    client: &'a kube::Client,
    options: &'a ObjectOptions,
    stopped: &'a AtomicBool,
}

impl<K: Referenced> Objects<K> {
    /// Drops entries idle for longer than `limit`, stopping their watches.
    fn expire(&self, now: Instant, limit: Duration) {
        lock(&self.entries).retain(|key, e| {
            let keep = now.saturating_duration_since(e.last_used) <= limit;
            if !keep {
                tracing::debug!(kind = K::RESOURCE, key = %key.describe(), "dropping an unused object");
                e.stop();
            }
            keep
        });
    }

    fn stop_all(&self) {
        let mut entries = lock(&self.entries);
        for e in entries.values_mut() {
            e.stop();
        }
        entries.clear();
    }

    async fn get(&self, ctx: &Ctx<'_>, key: &Key) -> std::result::Result<Found<K>, Failure> {
        if !valid_name(&key.namespace) || key.name.as_deref().is_some_and(|n| !valid_name(n)) {
            return Err(Failure::InvalidName);
        }
        match ctx.options.strategy {
            ChangeDetection::Get => fetch(ctx.client, key, false).await.map_err(Failure::Api),
            ChangeDetection::Cache { ttl } => self.cached(ctx, key, ttl).await,
            ChangeDetection::Watch => self.watched(ctx, key).await,
        }
    }

    async fn cached(
        &self,
        ctx: &Ctx<'_>,
        key: &Key,
        ttl: Duration,
    ) -> std::result::Result<Found<K>, Failure> {
        let now = Instant::now();
        let cell = {
            let mut entries = lock(&self.entries);
            let entry = entries.entry(key.clone()).or_insert_with(|| Entry {
                state: State::Cache(Arc::new(tokio::sync::Mutex::new(Cached {
                    found: None,
                    fetched: None,
                }))),
                last_used: now,
            });
            entry.last_used = now;
            match &entry.state {
                State::Cache(c) => c.clone(),
                // The strategy does not change under a source; a watch entry answers from
                // its own cache.
                State::Watch { .. } => return Err(Failure::Sync("strategy mismatch".into())),
            }
        };
        let mut data = cell.lock().await;
        if let (Some(found), Some(at)) = (&data.found, data.fetched)
            && at.elapsed() < ttl
        {
            return Ok(found.clone());
        }
        let had_object = data.found.as_ref().is_some_and(|f| !f.is_empty());
        match fetch::<K>(ctx.client, key, had_object).await {
            Ok(new) => {
                // A refresh from the API server's cache may be older than what was cached.
                let older = key.name.is_some()
                    && match (
                        new.values().next().and_then(rv_of),
                        data.found
                            .as_ref()
                            .and_then(|f| f.values().next())
                            .and_then(rv_of),
                    ) {
                        (Some(n), Some(o)) => n < o,
                        _ => false,
                    };
                if !older {
                    data.found = Some(new);
                    data.fetched = Some(Instant::now());
                }
                Ok(data.found.clone().unwrap_or_default())
            }
            Err(e) => match &data.found {
                Some(found) => {
                    tracing::warn!(kind = K::RESOURCE, key = %key.describe(), error = %cause(&e), "refresh failed; answering the cached copy");
                    Ok(found.clone())
                }
                None => Err(Failure::Api(e)),
            },
        }
    }

    async fn watched(&self, ctx: &Ctx<'_>, key: &Key) -> std::result::Result<Found<K>, Failure> {
        let now = Instant::now();
        let shared = {
            let mut entries = lock(&self.entries);
            if ctx.stopped.load(Ordering::SeqCst) {
                return Err(Failure::Sync("the object source is stopped".into()));
            }
            let entry = entries.entry(key.clone()).or_insert_with(|| {
                let (synced, _) = tokio::sync::watch::channel(false);
                let shared = Arc::new(Watched {
                    store: Mutex::new(BTreeMap::new()),
                    synced,
                });
                let task = tokio::spawn(run_watch::<K>(
                    ctx.client.clone(),
                    key.clone(),
                    shared.clone(),
                    ctx.options.watch_timeout,
                    ctx.options.backoff.clone(),
                ))
                .abort_handle();
                Entry {
                    state: State::Watch {
                        shared,
                        task: Some(task),
                    },
                    last_used: now,
                }
            });
            entry.last_used = now;
            match &entry.state {
                State::Watch { shared, .. } => shared.clone(),
                State::Cache(_) => return Err(Failure::Sync("strategy mismatch".into())),
            }
        };
        let mut synced = shared.synced.subscribe();
        let waited = tokio::time::timeout(ctx.options.sync_timeout, synced.wait_for(|s| *s)).await;
        if !matches!(waited, Ok(Ok(_))) {
            return Err(Failure::Sync("timed out waiting for the condition".into()));
        }
        let found = lock(&shared.store).clone();
        if key.name.is_some() && found.values().any(K::immutable) {
            let mut entries = lock(&self.entries);
            if let Some(e) = entries.get_mut(key)
                && matches!(&e.state, State::Watch { shared: s, task: Some(_) } if Arc::ptr_eq(s, &shared))
            {
                tracing::debug!(kind = K::RESOURCE, key = %key.describe(), "immutable; watch stopped");
                e.stop();
            }
        }
        Ok(found)
    }
}

/// One key's list+watch, until aborted. Never returns otherwise, never panics.
async fn run_watch<K: Referenced>(
    client: kube::Client,
    key: Key,
    shared: Arc<Watched<K>>,
    watch_timeout: u32,
    mut backoff: Backoff,
) {
    let api: Api<K> = Api::namespaced(client, &key.namespace);
    let fields = key.name.as_ref().map(|n| format!("metadata.name={n}"));
    let mut resource_version: Option<String> = None;
    loop {
        let started = Instant::now();
        let outcome = match &resource_version {
            None => list_into(&api, fields.as_deref(), &shared).await.map(|rv| {
                resource_version = Some(rv);
                true
            }),
            Some(_) => {
                watch_once(
                    &api,
                    fields.as_deref(),
                    watch_timeout,
                    &shared,
                    &mut resource_version,
                )
                .await
            }
        };
        let failed = match outcome {
            Ok(true) => false,
            Ok(false) => started.elapsed() < SHORT_WATCH,
            Err(e) => {
                if e.status_code() == Some(410) || e.is_too_large_resource_version() {
                    resource_version = None;
                }
                tracing::warn!(kind = K::RESOURCE, key = %key.describe(), error = %node_util::error_chain(&e), "object watch");
                true
            }
        };
        if failed {
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}

async fn list_into<K: Referenced>(
    api: &Api<K>,
    fields: Option<&str>,
    shared: &Watched<K>,
) -> Result<String> {
    let action = || format!("listing {}s", K::RESOURCE);
    let mut params = ListParams::default();
    if let Some(f) = fields {
        params = params.fields(f);
    }
    let list = api
        .list(&params)
        .await
        .map_err(|e| Error::api(action(), e))?;
    let rv = list.metadata.resource_version.clone().unwrap_or_default();
    if rv.is_empty() {
        return Err(Error::Protocol {
            action: action(),
            reason: "the list has no resourceVersion".to_owned(),
        });
    }
    *lock(&shared.store) = list.items.into_iter().map(|o| (name_of(&o), o)).collect();
    shared.synced.send_replace(true);
    Ok(rv)
}

/// One watch from `resource_version` until it ends; `Ok(true)` when events arrived. A `410`
/// event clears the version (list again).
async fn watch_once<K: Referenced>(
    api: &Api<K>,
    fields: Option<&str>,
    watch_timeout: u32,
    shared: &Watched<K>,
    resource_version: &mut Option<String>,
) -> Result<bool> {
    let Some(from) = resource_version.clone() else {
        return Ok(false);
    };
    let action = || format!("watching {}s", K::RESOURCE);
    let mut params = WatchParams::default().timeout(watch_timeout);
    if let Some(f) = fields {
        params = params.fields(f);
    }
    let stream = api
        .watch(&params, &from)
        .await
        .map_err(|e| Error::api(action(), e))?;
    let mut stream = std::pin::pin!(stream.into_stream());
    let mut any = false;
    while let Some(item) = stream.next().await {
        let event = item.map_err(|e| Error::api(action(), e))?;
        any = true;
        let seen = |rv: &mut Option<String>, o: &K| {
            if let Some(v) = o.meta().resource_version.as_deref()
                && !v.is_empty()
            {
                *rv = Some(v.to_owned());
            }
        };
        match event {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                seen(resource_version, &o);
                lock(&shared.store).insert(name_of(&o), o);
            }
            WatchEvent::Deleted(o) => {
                seen(resource_version, &o);
                lock(&shared.store).remove(&name_of(&o));
            }
            WatchEvent::Bookmark(b) => {
                if !b.metadata.resource_version.is_empty() {
                    *resource_version = Some(b.metadata.resource_version);
                }
            }
            WatchEvent::Error(status)
                if status.code == 410 || crate::error::too_large_resource_version(&status) =>
            {
                tracing::info!(kind = K::RESOURCE, message = %status.message, "object watch expired; listing again");
                *resource_version = None;
                return Ok(true);
            }
            WatchEvent::Error(status) => {
                return Err(Error::Protocol {
                    action: action(),
                    reason: format!("{} ({}): {}", status.code, status.reason, status.message),
                });
            }
        }
    }
    Ok(any)
}

/// A token as kept: what the API server answered.
#[derive(Debug, Clone)]
struct CachedToken {
    token: Token,
    /// The answer's `spec.expirationSeconds` (the request's when absent).
    expiration_seconds: i64,
}

/// The kubelet's cache key text for messages.
fn token_key(r: &TokenRequest) -> String {
    format!(
        "{:?}/{:?}/{:?}/{}/{}({})",
        r.service_account, r.namespace, r.audiences, r.expiration_seconds, r.pod_name, r.pod_uid
    )
}

/// The API objects pods reference, from the API server (see the module doc). Watches stop when
/// it is dropped or [`ApiObjects::stop`] is called.
pub struct ApiObjects {
    client: kube::Client,
    options: ObjectOptions,
    config_maps: Objects<ConfigMap>,
    secrets: Objects<Secret>,
    services: Objects<Service>,
    tokens: Mutex<HashMap<TokenRequest, CachedToken>>,
    /// Whether the API server serves `serviceaccounts/token` (asked on the first 404).
    token_endpoint: Mutex<Option<bool>>,
    stopped: AtomicBool,
}

impl Debug for ApiObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiObjects")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Drop for ApiObjects {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ApiObjects {
    /// A source asking the API server through `client`.
    #[must_use]
    pub fn new(client: kube::Client, options: ObjectOptions) -> Self {
        Self {
            client,
            options,
            config_maps: Objects::default(),
            secrets: Objects::default(),
            services: Objects::default(),
            tokens: Mutex::new(HashMap::new()),
            token_endpoint: Mutex::new(None),
            stopped: AtomicBool::new(false),
        }
    }

    /// The options.
    #[must_use]
    pub fn options(&self) -> &ObjectOptions {
        &self.options
    }

    /// Stops every watch and drops what was kept; with the `Watch` strategy, later calls
    /// fail (`failed to sync ... cache: the object source is stopped`).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.config_maps.stop_all();
        self.secrets.stop_all();
        self.services.stop_all();
    }

    /// Running watch tasks (for tests and metrics).
    #[must_use]
    pub fn active_watches(&self) -> usize {
        fn count<K>(o: &Objects<K>) -> usize {
            lock(&o.entries)
                .values()
                .filter(|e| matches!(e.state, State::Watch { task: Some(_), .. }))
                .count()
        }
        count(&self.config_maps) + count(&self.secrets) + count(&self.services)
    }

    /// Tokens kept (for tests and metrics).
    #[must_use]
    pub fn cached_tokens(&self) -> usize {
        lock(&self.tokens).len()
    }

    /// Drops the objects of every kind not asked for during 5 × `sync_frequency` (run on
    /// every call, so nothing runs while idle).
    fn housekeep(&self) {
        let now = Instant::now();
        let limit = self.options.idle_limit();
        self.config_maps.expire(now, limit);
        self.secrets.expire(now, limit);
        self.services.expire(now, limit);
    }

    fn ctx(&self) -> Ctx<'_> {
        self.housekeep();
        Ctx {
            client: &self.client,
            options: &self.options,
            stopped: &self.stopped,
        }
    }

    async fn one<K: Referenced>(
        &self,
        objects: &Objects<K>,
        namespace: &str,
        name: &str,
    ) -> std::result::Result<Option<K>, String> {
        let key = Key {
            namespace: namespace.to_owned(),
            name: Some(name.to_owned()),
        };
        match objects.get(&self.ctx(), &key).await {
            Ok(mut found) => Ok(found.remove(name)),
            Err(f) => Err(message::<K>(&key, f)),
        }
    }

    async fn all_services(&self, namespace: &str) -> std::result::Result<Vec<Service>, String> {
        let key = Key {
            namespace: namespace.to_owned(),
            name: None,
        };
        let mut out: Vec<Service> = match self.services.get(&self.ctx(), &key).await {
            Ok(found) => found.into_values().collect(),
            Err(f) => return Err(message::<Service>(&key, f)),
        };
        if namespace != "default"
            && let Some(master) = self.one(&self.services, "default", "kubernetes").await?
        {
            out.push(master);
        }
        Ok(out)
    }

    /// Whether the API server serves `serviceaccounts/token` (the kubelet asks discovery
    /// once; a failed discovery is asked again next time, the kubelet keeps "no").
    async fn token_endpoint_supported(&self) -> bool {
        if let Some(known) = *lock(&self.token_endpoint) {
            return known;
        }
        match self.client.list_core_api_resources("v1").await {
            Ok(list) => {
                let supported = list
                    .resources
                    .iter()
                    .any(|r| r.name == "serviceaccounts/token");
                *lock(&self.token_endpoint) = Some(supported);
                supported
            }
            Err(_) => false,
        }
    }

    async fn request_token(&self, r: &TokenRequest) -> std::result::Result<CachedToken, String> {
        let mut spec = json!({
            "expirationSeconds": r.expiration_seconds,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": r.pod_name, "uid": r.pod_uid},
        });
        if !r.audiences.is_empty() {
            spec["audiences"] = json!(r.audiences);
        }
        let body = json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "metadata": {}, "spec": spec,
        });
        let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let request = kube::core::Request::new(ServiceAccount::url_path(&(), Some(&r.namespace)))
            .create_subresource("token", &r.service_account, &PostParams::default(), bytes)
            .map_err(|e| e.to_string())?;
        match self.client.request::<ApiTokenRequest>(request).await {
            Ok(answer) => {
                let Some(status) = answer.status else {
                    return Err("the TokenRequest answer has no status".to_owned());
                };
                Ok(CachedToken {
                    token: Token {
                        token: status.token,
                        expiration: SystemTime::from(status.expiration_timestamp.0),
                    },
                    expiration_seconds: answer
                        .spec
                        .expiration_seconds
                        .unwrap_or(r.expiration_seconds),
                })
            }
            Err(e) if is_not_found(&e) && !self.token_endpoint_supported().await => {
                Err("the API server does not have TokenRequest endpoints enabled".to_owned())
            }
            Err(e) => Err(cause(&e)),
        }
    }

    async fn token_for(&self, r: &TokenRequest) -> std::result::Result<Token, String> {
        validate_expiration_seconds(r.expiration_seconds)?;
        if !valid_name(&r.namespace) || !valid_name(&r.service_account) {
            return Err(format!(
                "failed to fetch token: invalid service account {}/{}",
                r.namespace, r.service_account
            ));
        }
        let now = SystemTime::now();
        let cached = {
            let mut tokens = lock(&self.tokens);
            // The kubelet's minutely garbage collection of expired tokens, done here (nothing
            // runs while idle); the asked-for one stays so that a failed refresh can say it
            // expired.
            tokens.retain(|k, t| k == r || now <= t.token.expiration);
            tokens.get(r).cloned()
        };
        if let Some(c) = &cached {
            let jitter = Duration::from_secs(rand::random_range(0..TOKEN_MAX_JITTER.as_secs()));
            if !token_needs_refresh(now, c.token.expiration, c.expiration_seconds, jitter) {
                return Ok(c.token.clone());
            }
        }
        match self.request_token(r).await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                lock(&self.tokens).insert(r.clone(), fresh);
                Ok(token)
            }
            Err(e) => match cached {
                None => Err(format!("failed to fetch token: {e}")),
                Some(c) if SystemTime::now() > c.token.expiration => Err(format!(
                    "token {} expired and refresh failed: {e}",
                    token_key(r)
                )),
                Some(c) => {
                    tracing::error!(key = %token_key(r), error = %e, "couldn't update token");
                    Ok(c.token)
                }
            },
        }
    }
}

impl ObjectSource for ApiObjects {
    fn config_map<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> ObjectFuture<'a, Option<ConfigMap>> {
        Box::pin(self.one(&self.config_maps, namespace, name))
    }

    fn secret<'a>(&'a self, namespace: &'a str, name: &'a str) -> ObjectFuture<'a, Option<Secret>> {
        Box::pin(self.one(&self.secrets, namespace, name))
    }

    fn services<'a>(&'a self, namespace: &'a str) -> ObjectFuture<'a, Vec<Service>> {
        Box::pin(self.all_services(namespace))
    }

    fn token<'a>(&'a self, request: &'a TokenRequest) -> ObjectFuture<'a, Token> {
        Box::pin(self.token_for(request))
    }

    fn forget_pod(&self, uid: &str) {
        lock(&self.tokens).retain(|r, _| r.pod_uid != uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn strategy_from_config() {
        assert_eq!(
            ChangeDetection::from_config("Get").unwrap(),
            ChangeDetection::Get
        );
        assert_eq!(
            ChangeDetection::from_config("Cache").unwrap(),
            ChangeDetection::Cache {
                ttl: DEFAULT_CACHE_TTL
            }
        );
        assert_eq!(
            ChangeDetection::from_config("Watch").unwrap(),
            ChangeDetection::Watch
        );
        assert_eq!(
            ChangeDetection::from_config("").unwrap(),
            ChangeDetection::Watch
        );
        let e = ChangeDetection::from_config("watch")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"watch\""), "{e}");
        assert!(
            e.contains("configMapAndSecretChangeDetectionStrategy"),
            "{e}"
        );
    }

    #[test]
    fn refresh_after_80_percent_of_the_lifetime() {
        // Issued at 1000 for 3600 s: expires at 4600; 80 % is at 3880.
        let exp = at(4600);
        let j0 = Duration::ZERO;
        assert!(!token_needs_refresh(at(1000), exp, 3600, j0));
        assert!(!token_needs_refresh(at(3880), exp, 3600, j0));
        assert!(token_needs_refresh(at(3881), exp, 3600, j0));
        // The jitter moves the mark earlier.
        let j9 = Duration::from_secs(9);
        assert!(!token_needs_refresh(at(3871), exp, 3600, j9));
        assert!(token_needs_refresh(at(3872), exp, 3600, j9));
        // Expired tokens need refreshing.
        assert!(token_needs_refresh(at(5000), exp, 3600, j0));
    }

    #[test]
    fn refresh_after_24_hours_for_long_tokens() {
        // A 7-day token issued at 0: 80 % is at day 5.6, 24 h comes first.
        let week = 7 * 24 * 3600;
        let exp = at(week);
        let day = 24 * 3600;
        assert!(!token_needs_refresh(
            at(day),
            exp,
            i64::try_from(week).unwrap(),
            Duration::ZERO
        ));
        assert!(token_needs_refresh(
            at(day + 1),
            exp,
            i64::try_from(week).unwrap(),
            Duration::ZERO
        ));
        assert!(token_needs_refresh(
            at(day - 5),
            exp,
            i64::try_from(week).unwrap(),
            Duration::from_secs(6)
        ));
    }

    #[test]
    fn a_token_shorter_than_asked_is_refreshed_at_once() {
        // Asked for 600 s but issued for 2 s: iat is 598 s in the past.
        let now = at(10_000);
        assert!(token_needs_refresh(now, at(10_002), 600, Duration::ZERO));
    }

    #[test]
    fn hostile_durations_do_not_panic() {
        let now = at(10_000);
        assert!(token_needs_refresh(now, at(0), i64::MAX, Duration::MAX));
        assert!(token_needs_refresh(now, at(5), -1, Duration::ZERO));
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 1000);
        let _ = token_needs_refresh(now, far, i64::MAX, Duration::ZERO);
    }

    #[test]
    fn expiration_limits() {
        assert_eq!(
            validate_expiration_seconds(599).unwrap_err(),
            "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"
        );
        assert!(validate_expiration_seconds(600).is_ok());
        assert!(validate_expiration_seconds(1 << 32).is_ok());
        assert!(
            validate_expiration_seconds((1 << 32) + 1)
                .unwrap_err()
                .ends_with("may not specify a duration larger than 2^32 seconds")
        );
    }

    #[test]
    fn names() {
        assert!(valid_name("app-config.v1"));
        for bad in ["", ".", "..", "a/b", "A", "a?b", "a%2f", &"x".repeat(254)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
