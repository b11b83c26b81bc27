//! Placeholder, filled in by this work.

use axum::Router;

use crate::PodApi;

/// This module's routes over `api`.
pub fn router(api: PodApi) -> Router {
    let _ = api;
    Router::new()
}
