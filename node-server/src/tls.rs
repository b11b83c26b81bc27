//! The rustls server configuration: serving certificate, optional client certificates,
//! `tlsMinVersion` and `tlsCipherSuites` with the kubelet's (Go's) names.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};

use crate::cert::{ServingCert, load_pair, provider, read_certs, read_key};
use crate::error::ServerError;

/// Go cipher-suite names that rustls implements, with the IANA suite each selects.
const SUPPORTED: &[(&str, rustls::CipherSuite)] = {
    use rustls::CipherSuite as C;
    &[
        (
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
            C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
            C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        // TLS 1.3 suites: Go accepts the names but does not let them be configured; they are
        // always on, here too.
        ("TLS_AES_128_GCM_SHA256", C::TLS13_AES_128_GCM_SHA256),
        ("TLS_AES_256_GCM_SHA384", C::TLS13_AES_256_GCM_SHA384),
        (
            "TLS_CHACHA20_POLY1305_SHA256",
            C::TLS13_CHACHA20_POLY1305_SHA256,
        ),
    ]
};

/// Go cipher-suite names the kubelet accepts but rustls does not implement (CBC, RC4, 3DES,
/// static RSA key exchange): skipped with a warning rather than refused, so an existing
/// configuration keeps working with the suites that remain.
const KNOWN_UNSUPPORTED: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

/// The protocol versions for a `tlsMinVersion` value.
///
/// `""` and `VersionTLS12` allow TLS 1.2 and 1.3, `VersionTLS13` only 1.3. `VersionTLS10` and
/// `VersionTLS11` are valid kubelet values but rustls has no TLS below 1.2: they are accepted and
/// behave like `VersionTLS12` (logged). Anything else is an error naming the value.
pub fn protocol_versions(
    min_version: &str,
) -> Result<&'static [&'static SupportedProtocolVersion], ServerError> {
    static BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
    static ONLY13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    match min_version {
        "" | "VersionTLS12" => Ok(BOTH),
        "VersionTLS13" => Ok(ONLY13),
        "VersionTLS10" | "VersionTLS11" => {
            tracing::warn!(
                tlsMinVersion = min_version,
                "TLS below 1.2 is not implemented; serving TLS 1.2 and 1.3"
            );
            Ok(BOTH)
        }
        other => Err(ServerError::Config {
            field: "tlsMinVersion",
            reason: format!(
                "unknown TLS version {other:?} (expected VersionTLS10, VersionTLS11, VersionTLS12 or VersionTLS13)"
            ),
        }),
    }
}

/// The cipher suites for a `tlsCipherSuites` list (Go names). Empty means the provider's
/// defaults. The list restricts TLS 1.2 suites; TLS 1.3 suites stay on, as in Go.
pub fn cipher_suites(names: &[String]) -> Result<Vec<SupportedCipherSuite>, ServerError> {
    let all = rustls::crypto::ring::default_provider().cipher_suites;
    if names.is_empty() {
        return Ok(all);
    }
    let mut wanted = Vec::new();
    for name in names {
        if let Some((_, suite)) = SUPPORTED.iter().find(|(n, _)| n == name) {
            wanted.push(*suite);
        } else if KNOWN_UNSUPPORTED.contains(&name.as_str()) {
            tracing::warn!(cipher = %name, "tlsCipherSuites: suite not implemented by rustls, skipped");
        } else {
            return Err(ServerError::Config {
                field: "tlsCipherSuites",
                reason: format!(
                    "unknown cipher suite {name:?} (expected a Go crypto/tls name such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
                ),
            });
        }
    }
    // Keep the order of preference of the provider; include every TLS 1.3 suite.
    Ok(all
        .into_iter()
        .filter(|s| s.tls13().is_some() || wanted.contains(&s.suite()))
        .collect())
}

/// Reads a PEM CA bundle into a root store; every certificate must be usable as a trust anchor.
pub(crate) fn root_store(path: &Path) -> Result<RootCertStore, ServerError> {
    let mut roots = RootCertStore::empty();
    for (i, der) in read_certs(path)?.into_iter().enumerate() {
        roots.add(der).map_err(|e| {
            ServerError::bad_pem(
                path,
                format!("certificate #{} is not a usable CA certificate: {e}", i + 1),
            )
        })?;
    }
    Ok(roots)
}

/// A client-certificate verifier that accepts clients without a certificate (the kubelet's
/// `VerifyClientCertIfGiven`) and verifies the ones that present one against `path`.
pub(crate) fn client_verifier(
    path: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, ServerError> {
    let roots = root_store(path)?;
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|source| ServerError::ClientVerifier {
            path: path.to_owned(),
            source,
        })
}

/// The server's rustls configuration.
///
/// Client certificates are requested when `client_ca_file` is given, verified against it when
/// presented, and never required (anonymous and bearer-token clients still connect). ALPN
/// offers `http/1.1`. `min_version` and `cipher_suites` take the kubelet's values
/// (`tlsMinVersion`, `tlsCipherSuites`).
pub fn tls_config(
    cert: &ServingCert,
    client_ca_file: Option<&Path>,
    min_version: &str,
    cipher_suites: &[String],
) -> Result<Arc<ServerConfig>, ServerError> {
    let versions = protocol_versions(min_version)?;
    let suites = self::cipher_suites(cipher_suites)?;
    let usable = suites
        .iter()
        .any(|s| versions.iter().any(|v| s.version() == *v));
    if !usable {
        return Err(ServerError::Config {
            field: "tlsCipherSuites",
            reason: format!(
                "no cipher suite in {cipher_suites:?} is usable with tlsMinVersion {min_version:?}"
            ),
        });
    }
    let provider = Arc::new(CryptoProvider {
        cipher_suites: suites,
        ..(*provider()).clone()
    });
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|source| ServerError::Tls {
            context: format!("protocol versions for tlsMinVersion {min_version:?}"),
            source,
        })?;
    let builder = match client_ca_file {
        Some(path) => builder.with_client_cert_verifier(client_verifier(path, provider)?),
        None => builder.with_no_client_auth(),
    };
    // Checks that the key matches the leaf, naming both files when it does not.
    load_pair(&cert.cert_file, &cert.key_file)?;
    let mut config = builder
        .with_single_cert(read_certs(&cert.cert_file)?, read_key(&cert.key_file)?)
        .map_err(|source| ServerError::Tls {
            context: format!(
                "serving certificate {} with key {}",
                cert.cert_file.display(),
                cert.key_file.display()
            ),
            source,
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
