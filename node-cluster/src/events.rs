//! Events for what happens to pods, sent as the kubelet's event recorder sends them
//! (`client-go/tools/record`: `event.go`, `events_cache.go`): core/v1 `Event`s with the
//! kubelet as source, named `<pod>.<hex nanoseconds>`, on the pod (with the container's
//! `fieldPath`):
//!
//! * the same event again (same object, field, type, reason and message) within 10 min is
//!   not a new object: its `count` and `lastTimestamp` are patched;
//! * similar events (same object, field, type and reason, different messages) are aggregated:
//!   from the 10th different message within 10 min they go to one event whose message is
//!   `(combined from similar events): <latest message>` (client-go's `EventAggregator`);
//! * a spam filter per source and object (and type and reason) lets 25 through at once, then
//!   one every 5 min (client-go's defaults);
//! * the recorder's queue holds 1,000 batches; more are dropped, as client-go drops, so a slow
//!   API server never holds a pod sync pass up.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{Patch, PatchParams, PostParams};
use node_runtime::PodEvent;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::error::{Error, Result};

/// Batches the queue holds before new ones are dropped.
pub const QUEUE: usize = 1000;
/// How long an event can be counted again instead of created anew.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(600);
/// Different messages of similar events before they are combined into one event.
pub const AGGREGATE_AFTER: usize = 10;
/// The message prefix of a combined event (client-go's).
pub const COMBINED_PREFIX: &str = "(combined from similar events): ";

/// Events per object let through at once.
pub const SPAM_BURST: f64 = 25.0;
/// One more event per object every this long.
pub const SPAM_REFILL: Duration = Duration::from_secs(300);

/// Where pod sync passes hand their events ([`EventSink::record`]).
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: mpsc::Sender<Vec<PodEvent>>,
}

impl EventSink {
    /// Queues `events`; drops them when the queue is full. Never blocks.
    pub fn record(&self, events: &[PodEvent]) {
        if events.is_empty() {
            return;
        }
        if self.tx.try_send(events.to_vec()).is_err() {
            tracing::debug!(dropped = events.len(), "event queue full; events dropped");
        }
    }
}

/// The spam filter's state for one key: a token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The spam filter and the dedup cache, deciding what to send (pure: time is passed in).
#[derive(Debug, Default)]
pub struct EventCache {
    buckets: HashMap<String, Bucket>,
    /// Dedup key -> (event name, count, last seen).
    seen: HashMap<String, (String, u32, Instant)>,
    /// Aggregate key -> (the different messages seen, when the first of them came).
    similar: HashMap<String, (std::collections::HashSet<String>, Instant)>,
}

/// What to do with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Dropped by the spam filter.
    Drop,
    /// A new event object.
    Create,
    /// The existing event `name`: set its count to `count`.
    Count {
        /// The event object's name.
        name: String,
        /// The new count.
        count: u32,
    },
}

fn spam_key(node: &str, e: &PodEvent) -> String {
    format!(
        "kubelet/{node}/Pod/{}/{}/{}/{}/{}",
        e.namespace, e.name, e.uid, e.warning, e.reason
    )
}

fn aggregate_key(node: &str, e: &PodEvent) -> String {
    format!(
        "{}\u{0}{}",
        spam_key(node, e),
        e.field_path.as_deref().unwrap_or_default()
    )
}

fn dedup_key(node: &str, e: &PodEvent) -> String {
    // A combined event is one object whatever its latest message.
    match e.message.strip_prefix(COMBINED_PREFIX) {
        Some(_) => format!("{}\u{0}{COMBINED_PREFIX}", aggregate_key(node, e)),
        None => format!("{}\u{0}{}", aggregate_key(node, e), e.message),
    }
}

impl EventCache {
    /// `e` as it is to be sent: combined with similar events once they have had
    /// [`AGGREGATE_AFTER`] different messages within [`DEDUP_WINDOW`].
    pub fn aggregate(&mut self, node: &str, e: &PodEvent, now: Instant) -> PodEvent {
        let entry = self
            .similar
            .entry(aggregate_key(node, e))
            .or_insert_with(|| (std::collections::HashSet::new(), now));
        if now.saturating_duration_since(entry.1) >= DEDUP_WINDOW {
            *entry = (std::collections::HashSet::new(), now);
        }
        entry.0.insert(e.message.clone());
        if entry.0.len() < AGGREGATE_AFTER {
            return e.clone();
        }
        PodEvent {
            message: format!("{COMBINED_PREFIX}{}", e.message),
            ..e.clone()
        }
    }

    /// Decides for `e` at `now` and records the decision (call [`EventCache::created`] with
    /// the name once a [`Decision::Create`] was sent).
    pub fn decide(&mut self, node: &str, e: &PodEvent, now: Instant) -> Decision {
        let bucket = self.buckets.entry(spam_key(node, e)).or_insert(Bucket {
            tokens: SPAM_BURST,
            at: now,
        });
        let refill =
            now.saturating_duration_since(bucket.at).as_secs_f64() / SPAM_REFILL.as_secs_f64();
        bucket.tokens = (bucket.tokens + refill).min(SPAM_BURST);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return Decision::Drop;
        }
        bucket.tokens -= 1.0;
        match self.seen.get_mut(&dedup_key(node, e)) {
            Some((name, count, last)) if now.saturating_duration_since(*last) < DEDUP_WINDOW => {
                *count += 1;
                *last = now;
                Decision::Count {
                    name: name.clone(),
                    count: *count,
                }
            }
            _ => Decision::Create,
        }
    }

    /// Records that `e` was created as `name` at `now`.
    pub fn created(&mut self, node: &str, e: &PodEvent, name: String, now: Instant) {
        self.seen.insert(dedup_key(node, e), (name, 1, now));
    }

    /// Forgets what is older than the dedup window and buckets that are full again.
    pub fn prune(&mut self, now: Instant) {
        self.seen
            .retain(|_, (_, _, last)| now.saturating_duration_since(*last) < DEDUP_WINDOW);
        self.similar
            .retain(|_, (_, first)| now.saturating_duration_since(*first) < DEDUP_WINDOW);
        self.buckets.retain(|_, b| {
            now.saturating_duration_since(b.at).as_secs_f64() / SPAM_REFILL.as_secs_f64() + b.tokens
                < SPAM_BURST
        });
    }
}

/// The `Event` object for `e`, named `name`, from the kubelet on `node`.
#[must_use]
pub fn event_object(node: &str, e: &PodEvent, name: &str) -> Event {
    let now = k8s_openapi::jiff::Timestamp::now();
    Event {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(e.namespace.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(e.namespace.clone()),
            name: Some(e.name.clone()),
            uid: Some(e.uid.clone()),
            field_path: e.field_path.clone(),
            ..Default::default()
        },
        reason: Some(e.reason.clone()),
        message: Some(e.message.clone()),
        source: Some(EventSource {
            component: Some("kubelet".into()),
            host: Some(node.to_owned()),
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        type_: Some(if e.warning { "Warning" } else { "Normal" }.into()),
        event_time: None::<MicroTime>,
        reporting_component: Some("kubelet".into()),
        reporting_instance: Some(node.to_owned()),
        ..Default::default()
    }
}

/// Sends queued events to the API server.
pub struct EventRecorder {
    client: kube::Client,
    node_name: String,
    rx: mpsc::Receiver<Vec<PodEvent>>,
    cache: EventCache,
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder")
            .field("node_name", &self.node_name)
            .finish_non_exhaustive()
    }
}

/// A recorder for node `node_name` and the sink that feeds it.
#[must_use]
pub fn recorder(client: kube::Client, node_name: impl Into<String>) -> (EventSink, EventRecorder) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (
        EventSink { tx },
        EventRecorder {
            client,
            node_name: node_name.into(),
            rx,
            cache: EventCache::default(),
        },
    )
}

impl EventRecorder {
    async fn send(&mut self, e: &PodEvent) -> Result<()> {
        let now = Instant::now();
        let e = &self.cache.aggregate(&self.node_name, e, now);
        let api: kube::Api<Event> = kube::Api::namespaced(self.client.clone(), &e.namespace);
        match self.cache.decide(&self.node_name, e, now) {
            Decision::Drop => Ok(()),
            Decision::Create => {
                let nanos = k8s_openapi::jiff::Timestamp::now().as_nanosecond();
                let name = format!("{}.{nanos:x}", e.name);
                let object = event_object(&self.node_name, e, &name);
                api.create(&PostParams::default(), &object)
                    .await
                    .map_err(|err| {
                        Error::api(format!("creating event {}/{name}", e.namespace), err)
                    })?;
                self.cache.created(&self.node_name, e, name, now);
                Ok(())
            }
            Decision::Count { name, count } => {
                let patch = json!({
                    "count": count,
                    "message": e.message,
                    "lastTimestamp": k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                });
                api.patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                    .await
                    .map_err(|err| {
                        Error::api(format!("updating event {}/{name}", e.namespace), err)
                    })?;
                Ok(())
            }
        }
    }

    /// Sends events as they are queued until `stop` turns true (what is queued then is
    /// dropped).
    pub async fn run(mut self, stop: watch::Receiver<bool>) {
        let stopped = node_util::stopped(stop);
        tokio::pin!(stopped);
        loop {
            let batch = tokio::select! {
                () = &mut stopped => return,
                batch = self.rx.recv() => match batch {
                    Some(b) => b,
                    None => return,
                },
            };
            for e in &batch {
                if let Err(err) = self.send(e).await {
                    tracing::debug!(error = %node_util::error_chain(&err), "event not sent");
                }
            }
            self.cache.prune(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(reason: &str, message: &str) -> PodEvent {
        PodEvent {
            namespace: "default".into(),
            name: "web".into(),
            uid: "u1".into(),
            field_path: Some("spec.containers{app}".into()),
            warning: reason == "BackOff",
            reason: reason.into(),
            message: message.into(),
        }
    }

    #[test]
    fn repeats_are_counted_and_spam_is_dropped() {
        let mut c = EventCache::default();
        let t0 = Instant::now();
        let backoff = ev("BackOff", "Back-off restarting failed container app");
        assert_eq!(c.decide("n1", &backoff, t0), Decision::Create);
        c.created("n1", &backoff, "web.1".into(), t0);
        assert_eq!(
            c.decide("n1", &backoff, t0 + Duration::from_secs(1)),
            Decision::Count {
                name: "web.1".into(),
                count: 2
            }
        );
        // 25 in all at once, then nothing until the bucket refills (one per 5 min).
        for i in 2..25 {
            assert!(matches!(
                c.decide("n1", &backoff, t0 + Duration::from_secs(2)),
                Decision::Count { count, .. } if count == i + 1
            ));
        }
        assert_eq!(
            c.decide("n1", &backoff, t0 + Duration::from_secs(3)),
            Decision::Drop
        );
        assert!(matches!(
            c.decide("n1", &backoff, t0 + Duration::from_secs(3 + 300)),
            Decision::Count { count: 26, .. }
        ));
        // Another reason has its own bucket; after the window a repeat is a new event.
        let started = ev("Started", "Container started");
        assert_eq!(c.decide("n1", &started, t0), Decision::Create);
        c.created("n1", &started, "web.2".into(), t0);
        assert_eq!(
            c.decide("n1", &started, t0 + DEDUP_WINDOW + Duration::from_secs(1)),
            Decision::Create
        );
        c.prune(t0 + Duration::from_secs(3600));
        assert!(c.seen.is_empty());
    }

    #[test]
    fn similar_events_are_combined_from_the_tenth_message() {
        let mut c = EventCache::default();
        let t0 = Instant::now();
        let failed = |i: usize| ev("Failed", &format!("Error: attempt {i}"));
        for i in 0..9 {
            let e = c.aggregate("n1", &failed(i), t0);
            assert_eq!(e.message, format!("Error: attempt {i}"));
        }
        let tenth = c.aggregate("n1", &failed(9), t0);
        assert_eq!(
            tenth.message,
            "(combined from similar events): Error: attempt 9"
        );
        assert_eq!(c.decide("n1", &tenth, t0), Decision::Create);
        c.created("n1", &tenth, "web.c".into(), t0);
        // Later ones count on the same combined event, whatever their message.
        let eleventh = c.aggregate("n1", &failed(10), t0);
        assert_eq!(
            c.decide("n1", &eleventh, t0),
            Decision::Count {
                name: "web.c".into(),
                count: 2
            }
        );
        // Another reason is not combined; after the window neither is this one.
        assert_eq!(c.aggregate("n1", &ev("Started", "x"), t0).message, "x");
        let later = c.aggregate("n1", &failed(11), t0 + DEDUP_WINDOW);
        assert_eq!(later.message, "Error: attempt 11");
    }

    #[test]
    fn the_object_is_the_kubelets() {
        let e = event_object("n1", &ev("Started", "Container started"), "web.1a");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["involvedObject"]["kind"], "Pod");
        assert_eq!(v["involvedObject"]["uid"], "u1");
        assert_eq!(v["involvedObject"]["fieldPath"], "spec.containers{app}");
        assert_eq!(v["source"]["component"], "kubelet");
        assert_eq!(v["source"]["host"], "n1");
        assert_eq!(v["type"], "Normal");
        assert_eq!(v["count"], 1);
        assert_eq!(v["metadata"]["namespace"], "default");
    }
}
