//! Placeholder, filled in by this work.

use axum::Router;

use crate::PodApi;

/// This module's routes over `api`.
pub fn router(api: PodApi) -> Router {
    let _ = api;
    Router::new()
}

/// Where the summary comes from.
pub struct StatsSource {}

impl StatsSource {
    /// A source for the node `node_name`.
    pub fn new(node_name: &str) -> Self {
        let _ = node_name;
        Self {}
    }
}
