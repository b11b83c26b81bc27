//! Runtime change notifications, so that a sync loop relists the runtime when something
//! changed instead of every second.
//!
//! The kubelet's generic PLEG relists every second; its evented PLEG follows the CRI's
//! `GetContainerEvents` stream and relists only rarely. containerd 1.6 (Debian 12's) has no
//! `GetContainerEvents`, but every containerd serves its own events API on the CRI socket:
//! [`RuntimeWatch`] subscribes to it (`containerd.services.events.v1.Events/Subscribe`, the CRI's
//! `k8s.io` namespace) and wakes its owner on every task, container or sandbox event. A runtime
//! without that API answers `Unimplemented` and the watch reports [`WatchState::Unsupported`]:
//! the owner keeps relisting every second, as the kubelet does.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::client::CriClient;
use crate::containerd_events::SubscribeRequest;
use crate::containerd_events::events_client::EventsClient;

/// The containerd namespace the CRI plugin keeps pods, containers and images in.
pub const CONTAINERD_CRI_NAMESPACE: &str = "k8s.io";

/// How long a subscription must stay unanswered before it counts as established.
///
/// containerd registers a subscriber as soon as the request arrives but sends no response
/// headers until the first event, and a runtime without the API refuses at once; a request
/// still open after this long has been registered.
pub const ESTABLISHED_AFTER: Duration = Duration::from_secs(2);

/// Pause before subscribing again after a refused or broken subscription.
pub const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// Event topics that may change what a relist shows (containerd's `/tasks/exit`,
/// `/containers/delete`, ...); image and content events do not.
const RELEVANT_TOPICS: [&str; 3] = ["/tasks/", "/containers/", "/sandboxes/"];

/// Whether change events are flowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchState {
    /// Subscribing, or subscribing again after the stream broke (the runtime restarted):
    /// changes may be missed, relist on a short period.
    Connecting,
    /// Subscribed: every change wakes [`RuntimeWatch::changed`].
    Live,
    /// The runtime has no events API: relist on a short period for good.
    Unsupported,
}

/// A subscription to the runtime's change events, kept alive by a background task that
/// subscribes again whenever the stream breaks. Dropping it ends the subscription.
#[derive(Debug)]
pub struct RuntimeWatch {
    state: watch::Receiver<WatchState>,
    changed: Arc<Notify>,
    task: JoinHandle<()>,
}

impl RuntimeWatch {
    /// Starts following `client`'s runtime (on a connection of its own). Must be called
    /// within a tokio runtime.
    pub fn start(client: &CriClient) -> Self {
        let (state_tx, state) = watch::channel(WatchState::Connecting);
        let changed = Arc::new(Notify::new());
        let task = tokio::spawn(follow(client.clone(), state_tx, Arc::clone(&changed)));
        Self {
            state,
            changed,
            task,
        }
    }

    /// The subscription's current state.
    pub fn state(&self) -> WatchState {
        *self.state.borrow()
    }

    /// Whether every change is being reported (so a long relist period is safe).
    pub fn is_live(&self) -> bool {
        self.state() == WatchState::Live
    }

    /// Resolves on the next relevant event, and when the subscription becomes live (changes
    /// made before it was established were not reported: relist then). Events that arrive
    /// while nobody waits are kept as one wake-up.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

impl Drop for RuntimeWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Subscribes, forwards events as wake-ups, and subscribes again when the stream ends; stops
/// for good when the runtime has no events API.
async fn follow(client: CriClient, state: watch::Sender<WatchState>, changed: Arc<Notify>) {
    let mut failures = 0u32;
    loop {
        let result = subscribe_and_forward(&client, &state, &changed).await;
        if *state.borrow() == WatchState::Live {
            failures = 0;
        }
        match result {
            Ok(()) => {}
            Err(Stop::Unsupported(message)) => {
                tracing::info!(
                    endpoint = client.endpoint(),
                    %message,
                    "container runtime has no containerd events API; relisting it every second"
                );
                state.send_replace(WatchState::Unsupported);
                return;
            }
            Err(Stop::Failed(reason)) => {
                // Log the first failure after a live stream; the runtime health check
                // reports a runtime that stays down.
                if failures == 0 {
                    tracing::warn!(endpoint = client.endpoint(), %reason, "runtime event stream");
                }
                failures = failures.saturating_add(1);
            }
        }
        state.send_replace(WatchState::Connecting);
        tokio::time::sleep(RESUBSCRIBE_AFTER).await;
    }
}

/// Why a subscription ended.
enum Stop {
    Unsupported(String),
    Failed(String),
}

/// One subscription: returns `Ok` when an established stream ends.
async fn subscribe_and_forward(
    client: &CriClient,
    state: &watch::Sender<WatchState>,
    changed: &Notify,
) -> Result<(), Stop> {
    let channel = client
        .stream_channel()
        .await
        .map_err(|e| Stop::Failed(e.to_string()))?;
    let mut events = EventsClient::new(channel);
    let request = SubscribeRequest {
        filters: vec![format!("namespace=={CONTAINERD_CRI_NAMESPACE}")],
    };
    let call = events.subscribe(request);
    tokio::pin!(call);
    let establish = |state: &watch::Sender<WatchState>| {
        if *state.borrow() != WatchState::Live {
            tracing::info!(
                endpoint = client.endpoint(),
                "following the container runtime's events"
            );
            state.send_replace(WatchState::Live);
            changed.notify_one();
        }
    };
    let response = tokio::select! {
        response = &mut call => response,
        () = tokio::time::sleep(ESTABLISHED_AFTER) => {
            establish(state);
            call.await
        }
    };
    let mut stream = match response {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == tonic::Code::Unimplemented => {
            return Err(Stop::Unsupported(status.message().to_owned()));
        }
        Err(status) => return Err(Stop::Failed(status.to_string())),
    };
    establish(state);
    loop {
        match stream.message().await {
            Ok(Some(envelope)) => {
                if RELEVANT_TOPICS
                    .iter()
                    .any(|t| envelope.topic.starts_with(t))
                {
                    changed.notify_one();
                }
            }
            Ok(None) => return Ok(()),
            Err(status) => return Err(Stop::Failed(status.to_string())),
        }
    }
}
