//! Authentication as the kubelet's union authenticator does it: x509 client certificate, then
//! bearer token through TokenReview, then anonymous.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::contract::UserInfo;
use http::request::Parts;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use node_config::KubeletAuthentication;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};

use crate::contract::PeerCertificates;
use crate::error::ServerError;

/// The group every authenticated (non-anonymous) user gets, as the kubelet's
/// `AuthenticatedGroupAdder` adds it.
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// The group of anonymous users.
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// How long one TokenReview or SubjectAccessReview call may take.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Cache entries kept at most (per cache); expired ones are purged first when it is full.
pub(crate) const CACHE_CAPACITY: usize = 10_000;

/// A small TTL cache shared by the TokenReview and SubjectAccessReview clients.
#[derive(Debug)]
pub(crate) struct TtlCache<V> {
    entries: Mutex<HashMap<[u8; 32], (Instant, V)>>,
}

impl<V: Clone> TtlCache<V> {
    pub(crate) fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], (Instant, V)>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<V> {
        let mut map = self.lock();
        match map.get(key) {
            Some((expires, v)) if *expires > Instant::now() => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn insert(&self, key: [u8; 32], value: V, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= CACHE_CAPACITY {
            map.retain(|_, (expires, _)| *expires > now);
            if map.len() >= CACHE_CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (now + ttl, value));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

pub(crate) fn hash(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Bearer tokens checked through the API server's TokenReview, with a result cache.
struct TokenReviewer {
    client: kube::Client,
    ttl: Duration,
    cache: TtlCache<Option<UserInfo>>,
}

impl TokenReviewer {
    /// `Ok(Some(user))`, `Ok(None)` for a token the API server rejected, `Err` when the review
    /// could not be made.
    async fn review(&self, token: &str) -> Result<Option<UserInfo>, String> {
        let key = hash(token.as_bytes());
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: None,
            },
            ..Default::default()
        };
        let api: kube::Api<TokenReview> = kube::Api::all(self.client.clone());
        let answer = tokio::time::timeout(
            WEBHOOK_TIMEOUT,
            api.create(&kube::api::PostParams::default(), &review),
        )
        .await
        .map_err(|_| format!("TokenReview timed out after {WEBHOOK_TIMEOUT:?}"))?
        .map_err(|e| format!("TokenReview failed: {e}"))?;
        let status = answer.status.unwrap_or_default();
        let user = if status.authenticated == Some(true) {
            let info = status.user.unwrap_or_default();
            Some(with_authenticated_group(UserInfo {
                name: info.username.unwrap_or_default(),
                groups: info.groups.unwrap_or_default(),
            }))
        } else {
            if let Some(err) = status.error.filter(|e| !e.is_empty()) {
                tracing::debug!(error = %err, "TokenReview: token not authenticated");
            }
            None
        };
        self.cache.insert(key, user.clone(), self.ttl);
        Ok(user)
    }
}

/// How long a verified client chain is remembered (bounded by the leaf's expiry), so a
/// keep-alive client does not pay a signature verification per request.
pub const X509_CACHE_TTL: Duration = Duration::from_secs(60);

/// Client certificates verified against `clientCAFile`.
struct X509 {
    path: PathBuf,
    verifier: Arc<dyn ClientCertVerifier>,
    cache: TtlCache<UserInfo>,
}

impl X509 {
    /// `Ok(Some(user))` for a chain that verifies and names a user, `Ok(None)` for a verified
    /// chain with an empty CN, `Err` for one that does not verify.
    fn authenticate(&self, chain: &[CertificateDer<'static>]) -> Result<Option<UserInfo>, String> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Ok(None);
        };
        let mut hasher = Sha256::new();
        for der in chain {
            hasher.update((der.len() as u64).to_be_bytes());
            hasher.update(der.as_ref());
        }
        let key: [u8; 32] = hasher.finalize().into();
        if let Some(user) = self.cache.get(&key) {
            return Ok(Some(user));
        }
        self.verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map_err(|e| {
                format!(
                    "client certificate not verified by {}: {e}",
                    self.path.display()
                )
            })?;
        let Some((user, not_after)) = user_from_cert_with_expiry(leaf.as_ref())? else {
            return Ok(None);
        };
        let user = with_authenticated_group(user);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let left = Duration::from_secs(u64::try_from(not_after).unwrap_or(0).saturating_sub(now));
        self.cache
            .insert(key, user.clone(), left.min(X509_CACHE_TTL));
        Ok(Some(user))
    }
}

/// The kubelet's request authenticator (x509, TokenReview webhook, anonymous).
pub struct Authenticator {
    x509: Option<X509>,
    token: Option<TokenReviewer>,
    anonymous: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("client_ca_file", &self.x509.as_ref().map(|x| &x.path))
            .field("token_webhook", &self.token.is_some())
            .field("anonymous", &self.anonymous)
            .finish()
    }
}

impl Authenticator {
    /// Builds the authenticator from the config's `authentication` section.
    ///
    /// `x509.clientCAFile` (when set) is read and parsed now; the TokenReview webhook is used
    /// when `webhook.enabled` and `token_reviewer` is given (results cached for
    /// `webhook.cacheTTL`); anonymous requests are allowed when `anonymous.enabled`.
    pub fn new(
        cfg: &KubeletAuthentication,
        token_reviewer: Option<kube::Client>,
    ) -> Result<Self, ServerError> {
        let x509 = if cfg.x509.client_ca_file.is_empty() {
            None
        } else {
            let path = PathBuf::from(&cfg.x509.client_ca_file);
            let verifier = crate::tls::client_verifier(&path, crate::cert::provider())?;
            Some(X509 {
                path,
                verifier,
                cache: TtlCache::new(),
            })
        };
        let token = match (cfg.webhook.enabled == Some(true), token_reviewer) {
            (true, Some(client)) => Some(TokenReviewer {
                client,
                ttl: cfg.webhook.cache_ttl.to_std(),
                cache: TtlCache::new(),
            }),
            (true, None) => {
                tracing::info!(
                    "authentication.webhook.enabled is set but there is no API server client: bearer tokens are not checked"
                );
                None
            }
            (false, _) => None,
        };
        Ok(Self {
            x509,
            token,
            anonymous: cfg.anonymous.enabled == Some(true),
        })
    }

    /// Who sent the request: `Ok(Some(user))`, `Ok(None)` when nobody authenticated it and
    /// anonymous requests are off, `Err` when a credential was presented and refused (a bad
    /// client certificate or a rejected bearer token: no fallback to anonymous) or could not
    /// be checked.
    pub async fn authenticate(&self, parts: &Parts) -> Result<Option<UserInfo>, String> {
        let mut errors: Vec<String> = Vec::new();
        if let Some(x509) = &self.x509
            && let Some(PeerCertificates(chain)) = parts.extensions.get::<PeerCertificates>()
        {
            match x509.authenticate(chain) {
                Ok(Some(user)) => return Ok(Some(user)),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        if let Some(reviewer) = &self.token
            && let Some(token) = bearer_token(parts)
        {
            match reviewer.review(token).await {
                Ok(Some(user)) => return Ok(Some(user)),
                Ok(None) => errors.push("invalid bearer token".to_owned()),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        if self.anonymous {
            return Ok(Some(UserInfo::anonymous()));
        }
        Ok(None)
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), as Go's
/// bearer-token authenticator reads it; `None` for no header, another scheme or an empty
/// token.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let mut it = value.splitn(3, ' ');
    let scheme = it.next()?;
    let token = it.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The user a verified client certificate names: subject CN as the name, subject O values as
/// the groups. `Ok(None)` when the CN is empty (not this authenticator's user).
pub fn user_from_cert(der: &[u8]) -> Result<Option<UserInfo>, String> {
    Ok(user_from_cert_with_expiry(der)?.map(|(user, _)| user))
}

/// [`user_from_cert`] plus the certificate's notAfter (Unix seconds).
fn user_from_cert_with_expiry(der: &[u8]) -> Result<Option<(UserInfo, i64)>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("client certificate does not parse: {e}"))?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    if name.is_empty() {
        return Ok(None);
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_owned)
        .collect();
    Ok(Some((
        UserInfo { name, groups },
        cert.validity().not_after.timestamp(),
    )))
}

/// Adds `system:authenticated` unless the user already has it or is unauthenticated.
fn with_authenticated_group(mut user: UserInfo) -> UserInfo {
    if !user
        .groups
        .iter()
        .any(|g| g == ALL_AUTHENTICATED || g == ALL_UNAUTHENTICATED)
    {
        user.groups.push(ALL_AUTHENTICATED.to_owned());
    }
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(auth: Option<&str>) -> Parts {
        let mut b = http::Request::builder().uri("/pods");
        if let Some(a) = auth {
            b = b.header("Authorization", a);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn bearer_token_parsing_follows_go() {
        assert_eq!(bearer_token(&parts(Some("Bearer abc"))), Some("abc"));
        assert_eq!(bearer_token(&parts(Some("  bearer abc  "))), Some("abc"));
        assert_eq!(bearer_token(&parts(Some("Bearer abc extra"))), Some("abc"));
        assert_eq!(bearer_token(&parts(Some("Basic abc"))), None);
        assert_eq!(bearer_token(&parts(Some("Bearer"))), None);
        assert_eq!(bearer_token(&parts(Some("Bearer  x"))), None);
        assert_eq!(bearer_token(&parts(None)), None);
    }

    #[test]
    fn authenticated_group_added_once() {
        let u = with_authenticated_group(UserInfo {
            name: "a".into(),
            groups: vec!["g".into()],
        });
        assert_eq!(u.groups, ["g", ALL_AUTHENTICATED]);
        let again = with_authenticated_group(u.clone());
        assert_eq!(again, u);
        let anon = with_authenticated_group(UserInfo::anonymous());
        assert_eq!(anon, UserInfo::anonymous());
    }

    #[test]
    fn ttl_cache_expires_and_skips_zero_ttl() {
        let c: TtlCache<u8> = TtlCache::new();
        c.insert([1; 32], 7, Duration::ZERO);
        assert_eq!(c.get(&[1; 32]), None);
        c.insert([1; 32], 7, Duration::from_secs(60));
        assert_eq!(c.get(&[1; 32]), Some(7));
        c.insert([2; 32], 8, Duration::from_nanos(1));
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(c.get(&[2; 32]), None);
        assert_eq!(c.len(), 1);
    }

    #[tokio::test]
    async fn anonymous_and_unauthenticated() {
        let mut cfg = KubeletAuthentication::default();
        let a = Authenticator::new(&cfg, None).unwrap();
        assert_eq!(a.authenticate(&parts(None)).await, Ok(None));
        cfg.anonymous.enabled = Some(true);
        let a = Authenticator::new(&cfg, None).unwrap();
        assert_eq!(
            a.authenticate(&parts(Some("Bearer t"))).await,
            Ok(Some(UserInfo::anonymous()))
        );
    }

    fn ca(cn: &str) -> (rcgen::Issuer<'static, rcgen::KeyPair>, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let pem = p.self_signed(&key).unwrap().pem();
        (rcgen::Issuer::new(p, key), pem)
    }

    fn client_cert(
        issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
        cn: &str,
    ) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "ops");
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        p.signed_by(&key, issuer).unwrap().der().clone()
    }

    #[tokio::test]
    async fn x509_verifies_against_its_own_ca_and_never_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let (good, good_pem) = ca("good-ca");
        let (evil, _) = ca("evil-ca");
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&ca_file, good_pem).unwrap();
        let mut cfg = KubeletAuthentication::default();
        cfg.x509.client_ca_file = ca_file.to_string_lossy().into_owned();
        cfg.anonymous.enabled = Some(true);
        let a = Authenticator::new(&cfg, None).unwrap();
        let with = |der: CertificateDer<'static>| {
            let mut p = parts(None);
            p.extensions.insert(PeerCertificates(vec![der]));
            p
        };
        let alice = with(client_cert(&good, "alice"));
        let want = UserInfo {
            name: "alice".into(),
            groups: vec!["ops".into(), ALL_AUTHENTICATED.into()],
        };
        assert_eq!(a.authenticate(&alice).await, Ok(Some(want.clone())));
        // Second time from the cache, same answer.
        assert_eq!(a.authenticate(&alice).await, Ok(Some(want)));
        // A chain this CA did not sign: an error, not anonymous; and never cached.
        let mallory = with(client_cert(&evil, "mallory"));
        for _ in 0..2 {
            let err = a.authenticate(&mallory).await.unwrap_err();
            assert!(err.contains("ca.crt"), "{err}");
        }
        // An empty CN names nobody: anonymous.
        let nobody = with(client_cert(&good, ""));
        assert_eq!(
            a.authenticate(&nobody).await,
            Ok(Some(UserInfo::anonymous()))
        );
    }

    #[test]
    fn missing_client_ca_file_is_named() {
        let mut cfg = KubeletAuthentication::default();
        cfg.x509.client_ca_file = "/nonexistent/ca.crt".into();
        let err = Authenticator::new(&cfg, None).unwrap_err();
        assert!(
            node_util::error_chain(&err).contains("/nonexistent/ca.crt"),
            "{err}"
        );
    }
}
