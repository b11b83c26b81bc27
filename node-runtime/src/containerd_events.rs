//! Generated `containerd.services.events.v1` types and client (from
//! `proto/containerd/services/events/v1/events.proto`), used by [`crate::RuntimeWatch`].
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("containerd.services.events.v1");
