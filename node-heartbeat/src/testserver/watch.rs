//! Watch streams: the event history (what a watch from a resourceVersion replays), the open
//! watchers, and the streaming response body (`{"type": ..., "object": ...}` per line).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior, Sleep};

use super::query::Selector;
use super::{State, lock};

/// How many events the history keeps; older ones are compacted away (the floor moves up), as
/// the API server's watch cache keeps a bounded window.
pub(crate) const HISTORY_CAPACITY: usize = 10_000;

/// The default period of the periodic BOOKMARK events (see
/// [`super::TestApiServer::set_bookmark_period`]).
pub const DEFAULT_BOOKMARK_PERIOD: Duration = Duration::from_secs(1);

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One write, as the history and the watchers see it.
#[derive(Debug)]
pub(crate) struct WatchEvent {
    /// The resourceVersion of the write.
    pub(crate) rv: u64,
    pub(crate) kind: EventType,
    /// The object after the write (for a delete: its last state, carrying `rv`).
    pub(crate) object: Value,
    /// The object before the write (modify and delete).
    pub(crate) prev: Option<Value>,
}

/// What a watcher's stream receives.
#[derive(Debug)]
pub(crate) enum WatchMsg {
    Event(Arc<WatchEvent>),
    /// A bookmark at this resourceVersion (if the watcher asked for bookmarks).
    Bookmark(u64),
}

/// The history and the open watchers of one resource (pods).
#[derive(Debug)]
pub(crate) struct WatchHub {
    history: VecDeque<Arc<WatchEvent>>,
    /// Watches from a resourceVersion below this get 410 Expired.
    pub(crate) floor: u64,
    watchers: Vec<mpsc::UnboundedSender<WatchMsg>>,
    pub(crate) bookmark_period: Option<Duration>,
}

impl Default for WatchHub {
    fn default() -> Self {
        WatchHub {
            history: VecDeque::new(),
            floor: 0,
            watchers: Vec::new(),
            bookmark_period: Some(DEFAULT_BOOKMARK_PERIOD),
        }
    }
}

impl WatchHub {
    /// Records a write and sends it to every open watcher.
    pub(crate) fn publish(&mut self, ev: WatchEvent) {
        let ev = Arc::new(ev);
        self.history.push_back(ev.clone());
        while self.history.len() > HISTORY_CAPACITY {
            if let Some(old) = self.history.pop_front() {
                self.floor = old.rv;
            }
        }
        self.watchers
            .retain(|w| w.send(WatchMsg::Event(ev.clone())).is_ok());
    }

    /// Events after `rv`, oldest first.
    pub(crate) fn since(&self, rv: u64) -> impl Iterator<Item = &Arc<WatchEvent>> {
        self.history.iter().filter(move |e| e.rv > rv)
    }

    /// Drops the history up to `rv`.
    pub(crate) fn compact(&mut self, rv: u64) {
        self.history.retain(|e| e.rv > rv);
        self.floor = self.floor.max(rv);
    }

    /// Registers a watcher; its stream gets every later event.
    pub(crate) fn subscribe(&mut self) -> mpsc::UnboundedReceiver<WatchMsg> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.watchers.push(tx);
        rx
    }

    /// Ends every open watch stream (after what was already sent to it).
    pub(crate) fn close_all(&mut self) {
        self.watchers.clear();
    }

    /// Sends a bookmark at `rv` to every open watcher.
    pub(crate) fn bookmark(&mut self, rv: u64) {
        self.watchers
            .retain(|w| w.send(WatchMsg::Bookmark(rv)).is_ok());
    }

    /// Open watch streams (whose client has not gone away).
    pub(crate) fn open(&mut self) -> usize {
        self.watchers.retain(|w| !w.is_closed());
        self.watchers.len()
    }
}

/// Which objects a watch (or list) sees: a namespace and the selectors.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    pub(crate) namespace: Option<String>,
    pub(crate) selector: Selector,
}

impl Filter {
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| obj.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns))
            && self.selector.matches(obj)
    }
}

/// One line of a watch stream.
pub(crate) fn line(kind: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// A BOOKMARK line at `rv` (`initial_end`: the `k8s.io/initial-events-end` annotation that ends
/// the initial events of a `sendInitialEvents=true` watch).
pub(crate) fn bookmark_line(kind: &str, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": kind, "apiVersion": "v1", "metadata": meta}),
    )
}

/// How a stored event looks to a watcher with `filter`, as the watch cache converts it
/// (`cacheWatcher.convertToWatchEvent`): an object that starts matching is ADDED, one that
/// stops matching is DELETED (its previous state with the event's resourceVersion).
pub(crate) fn convert(ev: &WatchEvent, filter: &Filter) -> Option<Bytes> {
    let cur = ev.kind != EventType::Deleted && filter.matches(&ev.object);
    let old = ev.prev.as_ref().is_some_and(|p| filter.matches(p));
    match (cur, old) {
        (true, false) => Some(line("ADDED", &ev.object)),
        (true, true) => Some(line("MODIFIED", &ev.object)),
        (false, true) => {
            if ev.kind == EventType::Deleted {
                Some(line("DELETED", &ev.object))
            } else {
                let mut prev = ev.prev.clone().unwrap_or(Value::Null);
                if let Some(m) = prev.get_mut("metadata") {
                    m["resourceVersion"] = Value::String(ev.rv.to_string());
                }
                Some(line("DELETED", &prev))
            }
        }
        (false, false) => None,
    }
}

/// The streaming body of one watch.
pub(crate) struct WatchBody {
    state: Arc<Mutex<State>>,
    rx: Option<mpsc::UnboundedReceiver<WatchMsg>>,
    filter: Filter,
    kind: &'static str,
    bookmarks: bool,
    pending: VecDeque<Bytes>,
    deadline: Option<Pin<Box<Sleep>>>,
    tick: Option<Interval>,
    finished: bool,
}

/// How a watch was asked for.
pub(crate) struct WatchSpec {
    pub(crate) filter: Filter,
    pub(crate) kind: &'static str,
    pub(crate) bookmarks: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) bookmark_period: Option<Duration>,
}

impl WatchBody {
    /// A live watch: `initial` lines first, then what `rx` brings.
    pub(crate) fn live(
        state: Arc<Mutex<State>>,
        rx: mpsc::UnboundedReceiver<WatchMsg>,
        initial: Vec<Bytes>,
        spec: WatchSpec,
    ) -> Self {
        let tick = match (spec.bookmarks, spec.bookmark_period) {
            (true, Some(p)) if !p.is_zero() => {
                let mut i = tokio::time::interval_at(tokio::time::Instant::now() + p, p);
                i.set_missed_tick_behavior(MissedTickBehavior::Delay);
                Some(i)
            }
            _ => None,
        };
        WatchBody {
            state,
            rx: Some(rx),
            filter: spec.filter,
            kind: spec.kind,
            bookmarks: spec.bookmarks,
            pending: initial.into(),
            deadline: spec.timeout.map(|t| Box::pin(tokio::time::sleep(t))),
            tick,
            finished: false,
        }
    }

    /// A stream that sends `lines` and ends (the 410 ERROR event).
    pub(crate) fn just(state: Arc<Mutex<State>>, lines: Vec<Bytes>, filter: Filter) -> Self {
        WatchBody {
            state,
            rx: None,
            filter,
            kind: "Pod",
            bookmarks: false,
            pending: lines.into(),
            deadline: None,
            tick: None,
            finished: true,
        }
    }

    fn process(&mut self, msg: WatchMsg) {
        match msg {
            WatchMsg::Event(ev) => {
                if let Some(l) = convert(&ev, &self.filter) {
                    self.pending.push_back(l);
                }
            }
            WatchMsg::Bookmark(rv) => {
                if self.bookmarks {
                    self.pending.push_back(bookmark_line(self.kind, rv, false));
                }
            }
        }
    }

    /// A periodic bookmark at the server's current resourceVersion: every event up to it is
    /// already in this stream's channel (writes publish under the state lock), so drain the
    /// channel first, under that lock.
    fn periodic_bookmark(&mut self) {
        let state = self.state.clone();
        let st = lock(&state);
        let mut drained = Vec::new();
        if let Some(rx) = &mut self.rx {
            while let Ok(m) = rx.try_recv() {
                drained.push(m);
            }
        }
        let rv = st.rv;
        drop(st);
        for m in drained {
            self.process(m);
        }
        self.pending.push_back(bookmark_line(self.kind, rv, false));
    }
}

impl Body for WatchBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        loop {
            if let Some(b) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            if let Some(rx) = &mut this.rx {
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(msg)) => {
                        this.process(msg);
                        continue;
                    }
                    Poll::Ready(None) => {
                        this.finished = true;
                        continue;
                    }
                    Poll::Pending => {}
                }
            } else {
                this.finished = true;
                continue;
            }
            if let Some(d) = &mut this.deadline
                && d.as_mut().poll(cx).is_ready()
            {
                this.finished = true;
                continue;
            }
            if let Some(t) = &mut this.tick
                && t.poll_tick(cx).is_ready()
            {
                this.periodic_bookmark();
                continue;
            }
            return Poll::Pending;
        }
    }
}
