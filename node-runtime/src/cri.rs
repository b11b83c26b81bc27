//! Generated `runtime.v1` types and gRPC stubs (from `proto/runtime/v1/api.proto`).
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("runtime.v1");
