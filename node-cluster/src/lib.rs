//! `node-cluster`: the node's cluster side, for an agent registered with an API server.
//!
//! * [`PodWatcher`] lists and watches the pods the scheduler bound to this node
//!   (`fieldSelector=spec.nodeName=<node>`) into a [`node_runtime::ApiPods`] store, resuming
//!   from the last resource version after a dropped watch and listing again after `410 Gone`;
//!   [`node_runtime::PodManager::with_api_pods`] runs those pods beside the static pods.
//! * [`StatusManager`] sends each API pod's status (phase, conditions, container statuses,
//!   `hostIP`s, `startTime`, `qosClass`) with a strategic-merge `PATCH` of `pods/status` when it
//!   changes, and finishes a deletion the agent carried out: the terminal status, then the
//!   `DELETE` with grace period 0. A static pod's status goes to its mirror pod.
//! * [`EventRecorder`] sends the pod sync passes' events ([`node_runtime::PodEvent`]: `Pulling`,
//!   `Pulled`, `Created`, `Started`, `Killing`, `BackOff`, `Failed`) as core/v1 Events, counted
//!   and spam-filtered as client-go's recorder does.
//! * [`ApiObjects`] answers the configMaps, secrets, services and service-account tokens pods
//!   reference ([`node_runtime::objects::ObjectSource`]), kept fresh with the kubelet's
//!   `Get`, `Cache` or `Watch` change detection ([`ChangeDetection`]) and its token refresh
//!   rules ([`token_needs_refresh`]).
//! * [`MirrorPods`] keeps a mirror pod on the API server for each static pod (created, replaced
//!   when stale, deleted when its static pod is gone).
//!
//! Decisions are pure functions ([`apply_event`], [`pod_status_patch`], [`terminal_status`],
//! [`mirror_actions`], [`token_needs_refresh`], [`Backoff`]); the loops only send.
//!
//! ```no_run
//! # async fn run(client: kube::Client, manager: node_runtime::PodManager) {
//! let (stop_tx, stop) = tokio::sync::watch::channel(false);
//! let pods = node_runtime::ApiPods::new("node-1");
//! let manager = manager.with_api_pods(pods.clone());
//! tokio::spawn(node_cluster::PodWatcher::new(client.clone(), "node-1", pods.clone()).run(stop.clone()));
//! let status = node_cluster::StatusManager::new(
//!     client, "node-1", manager.registry(), pods, vec!["10.0.0.5".into()],
//! );
//! tokio::spawn(status.run(stop));
//! // ... run `manager` (node_runtime::sync_loop::run); on shutdown:
//! let _ = stop_tx.send(true);
//! # }
//! ```
#![deny(missing_docs)]

mod backoff;
mod error;
pub mod events;
pub mod mirror;
pub mod objects;
pub mod status;
pub mod watcher;

pub use backoff::Backoff;
pub use error::{Error, Result, too_large_resource_version};
pub use events::{EventRecorder, EventSink, recorder};
pub use mirror::{MirrorAction, MirrorPods, StaticPodRef, mirror_actions, mirror_of};
pub use objects::{
    ApiObjects, ChangeDetection, ObjectOptions, token_needs_refresh, validate_expiration_seconds,
};
pub use status::{StatusManager, desired_status, node_host_ips, pod_status_patch, terminal_status};
pub use watcher::{PodWatcher, Step, WatchOptions, apply_event};
