//! Authorization: `AlwaysAllow`, or `Webhook` through SubjectAccessReview with the kubelet's
//! allowed/denied caches.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::contract::{Attributes, Decision};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use node_config::KubeletAuthorization;

use crate::authn::{TtlCache, WEBHOOK_TIMEOUT, hash};
use crate::error::ServerError;

/// SubjectAccessReview client with the kubelet's two caches.
pub struct WebhookAuthorizer {
    client: kube::Client,
    allowed_ttl: Duration,
    denied_ttl: Duration,
    cache: TtlCache<Decision>,
}

impl std::fmt::Debug for WebhookAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookAuthorizer")
            .field("allowed_ttl", &self.allowed_ttl)
            .field("denied_ttl", &self.denied_ttl)
            .finish_non_exhaustive()
    }
}

/// The kubelet's authorizer.
#[derive(Debug)]
pub enum Authorizer {
    /// Every authenticated request is allowed.
    AlwaysAllow,
    /// Each request is checked with a SubjectAccessReview.
    Webhook(WebhookAuthorizer),
}

/// The SubjectAccessReview spec the kubelet sends for `attrs`: user, groups and
/// `resourceAttributes {verb, version v1, resource nodes, subresource, name}`.
pub fn access_review_spec(attrs: &Attributes) -> SubjectAccessReviewSpec {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    SubjectAccessReviewSpec {
        user: opt(&attrs.user.name),
        groups: (!attrs.user.groups.is_empty()).then(|| attrs.user.groups.clone()),
        resource_attributes: Some(ResourceAttributes {
            verb: opt(attrs.verb),
            version: opt(attrs.api_version),
            resource: opt(attrs.resource),
            subresource: opt(attrs.subresource),
            name: opt(&attrs.name),
            ..Default::default()
        }),
        extra: None::<BTreeMap<String, Vec<String>>>,
        ..Default::default()
    }
}

impl Authorizer {
    /// Builds the authorizer from the config's `authorization` section. `Webhook` needs an API
    /// server client; any mode other than `AlwaysAllow` and `Webhook` is an error naming it.
    pub fn new(
        cfg: &KubeletAuthorization,
        client: Option<kube::Client>,
    ) -> Result<Self, ServerError> {
        match cfg.mode.as_str() {
            "AlwaysAllow" => Ok(Authorizer::AlwaysAllow),
            "Webhook" => {
                let Some(client) = client else {
                    return Err(ServerError::Config {
                        field: "authorization.mode",
                        reason: "authorization mode Webhook requires an API server client (--kubeconfig); use AlwaysAllow for a standalone node".to_owned(),
                    });
                };
                Ok(Authorizer::Webhook(WebhookAuthorizer {
                    client,
                    allowed_ttl: cfg.webhook.cache_authorized_ttl.to_std(),
                    denied_ttl: cfg.webhook.cache_unauthorized_ttl.to_std(),
                    cache: TtlCache::new(),
                }))
            }
            "" => Err(ServerError::Config {
                field: "authorization.mode",
                reason: "no authorization mode specified (expected AlwaysAllow or Webhook)"
                    .to_owned(),
            }),
            other => Err(ServerError::Config {
                field: "authorization.mode",
                reason: format!(
                    "unknown authorization mode {other:?} (expected AlwaysAllow or Webhook)"
                ),
            }),
        }
    }

    /// Whether the request `attrs` describes may go ahead; `Err` when the review could not be
    /// made (HTTP 500).
    pub async fn authorize(&self, attrs: &Attributes) -> Result<Decision, String> {
        match self {
            Authorizer::AlwaysAllow => Ok(Decision::Allow),
            Authorizer::Webhook(w) => w.authorize(attrs).await,
        }
    }
}

impl WebhookAuthorizer {
    async fn authorize(&self, attrs: &Attributes) -> Result<Decision, String> {
        let spec = access_review_spec(attrs);
        let key = hash(
            serde_json::to_string(&spec)
                .map_err(|e| format!("encoding SubjectAccessReview: {e}"))?
                .as_bytes(),
        );
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        let review = SubjectAccessReview {
            spec,
            ..Default::default()
        };
        let api: kube::Api<SubjectAccessReview> = kube::Api::all(self.client.clone());
        let answer = tokio::time::timeout(
            WEBHOOK_TIMEOUT,
            api.create(&kube::api::PostParams::default(), &review),
        )
        .await
        .map_err(|_| format!("SubjectAccessReview timed out after {WEBHOOK_TIMEOUT:?}"))?
        .map_err(|e| format!("SubjectAccessReview failed: {e}"))?;
        let status = answer.status.unwrap_or_default();
        let decision = if status.allowed {
            Decision::Allow
        } else {
            let mut reason = status.reason.unwrap_or_default();
            if let Some(e) = status.evaluation_error.filter(|e| !e.is_empty()) {
                if !reason.is_empty() {
                    reason.push_str("; ");
                }
                reason.push_str("evaluation error: ");
                reason.push_str(&e);
            }
            Decision::Deny(reason)
        };
        let ttl = match decision {
            Decision::Allow => self.allowed_ttl,
            Decision::Deny(_) => self.denied_ttl,
        };
        self.cache.insert(key, decision.clone(), ttl);
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::UserInfo;

    #[test]
    fn unknown_and_empty_modes_are_named() {
        let mut cfg = KubeletAuthorization {
            mode: "RBAC".into(),
            ..Default::default()
        };
        let err = Authorizer::new(&cfg, None).unwrap_err().to_string();
        assert!(
            err.contains("\"RBAC\"") && err.contains("authorization.mode"),
            "{err}"
        );
        cfg.mode = String::new();
        let err = Authorizer::new(&cfg, None).unwrap_err().to_string();
        assert!(err.contains("no authorization mode"), "{err}");
        cfg.mode = "Webhook".into();
        let err = Authorizer::new(&cfg, None).unwrap_err().to_string();
        assert!(err.contains("requires an API server client"), "{err}");
    }

    #[tokio::test]
    async fn always_allow_allows() {
        let cfg = KubeletAuthorization {
            mode: "AlwaysAllow".into(),
            ..Default::default()
        };
        let a = Authorizer::new(&cfg, None).unwrap();
        let attrs = Attributes {
            user: UserInfo::anonymous(),
            verb: "get",
            api_version: "v1",
            resource: "nodes",
            subresource: "proxy",
            name: "n".into(),
            path: "/pods".into(),
        };
        assert_eq!(a.authorize(&attrs).await, Ok(Decision::Allow));
    }

    #[test]
    fn review_spec_carries_the_attributes() {
        let attrs = Attributes {
            user: UserInfo {
                name: "alice".into(),
                groups: vec!["ops".into()],
            },
            verb: "get",
            api_version: "v1",
            resource: "nodes",
            subresource: "stats",
            name: "node-1".into(),
            path: "/stats/summary".into(),
        };
        let v = serde_json::to_value(access_review_spec(&attrs)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "user": "alice", "groups": ["ops"],
                "resourceAttributes": {"verb": "get", "version": "v1", "resource": "nodes",
                    "subresource": "stats", "name": "node-1"}
            })
        );
    }
}
