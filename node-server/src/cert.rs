//! The serving certificate: the configured `tlsCertFile`/`tlsPrivateKeyFile`, or the kubelet's
//! self-signed `<cert-dir>/kubelet.crt` + `kubelet.key`, generated when missing or unusable.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use node_config::KubeletConfiguration;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ServerError;

/// File name of the self-generated serving certificate chain in the cert dir.
pub const GENERATED_CERT_FILE: &str = "kubelet.crt";
/// File name of the self-generated serving key in the cert dir.
pub const GENERATED_KEY_FILE: &str = "kubelet.key";
/// Validity of a generated certificate (Go: `time.Hour * 24 * 365`).
const VALIDITY: time::Duration = time::Duration::days(365);
/// A generated certificate is valid from one hour in the past, against clock skew, as the
/// kubelet's generator does.
const BACKDATE: time::Duration = time::Duration::hours(1);

/// The serving certificate the HTTPS server uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingCert {
    /// PEM certificate chain (leaf first).
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// Whether this call generated a new self-signed pair.
    pub generated: bool,
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every `CERTIFICATE` block of a PEM file; at least one is required.
pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let pem = fs::read(path).map_err(|e| ServerError::io("reading", path, e))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::bad_pem(path, format!("invalid PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(ServerError::bad_pem(
            path,
            "no PEM CERTIFICATE block found (expected a PEM certificate or bundle)",
        ));
    }
    for (i, der) in certs.iter().enumerate() {
        x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| {
            ServerError::bad_pem(path, format!("certificate #{} does not parse: {e}", i + 1))
        })?;
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ServerError> {
    let pem = fs::read(path).map_err(|e| ServerError::io("reading", path, e))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        ServerError::bad_pem(
            path,
            format!(
                "expected a PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY): {e}"
            ),
        )
    })
}

/// Loads the pair and checks that the key belongs to the leaf certificate.
pub(crate) fn load_pair(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, ServerError> {
    let chain = read_certs(cert_file)?;
    let key = read_key(key_file)?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|source| ServerError::Tls {
        context: format!(
            "key {} with certificate {}",
            key_file.display(),
            cert_file.display()
        ),
        source,
    })
}

/// Whether the leaf of `cert_file` is outside its validity period now.
fn expired(cert_file: &Path) -> bool {
    let Ok(chain) = read_certs(cert_file) else {
        return true;
    };
    let Some(leaf) = chain.first() else {
        return true;
    };
    match x509_parser::parse_x509_certificate(leaf.as_ref()) {
        Ok((_, cert)) => !cert.validity().is_valid(),
        Err(_) => true,
    }
}

/// The serving certificate, as the kubelet chooses it.
///
/// With `tlsCertFile` and `tlsPrivateKeyFile` both set, those files are used (both must exist,
/// parse and match; setting only one is an error). Otherwise `<cert_dir>/kubelet.crt` and
/// `<cert_dir>/kubelet.key` are reused when they load, and generated when they do not (or when the
/// certificate has expired): a self-signed CA `<hostname>-ca@<unix seconds>` and a serving
/// certificate `<hostname>@<unix seconds>` signed by it, valid for a year, with SANs `hostname`,
/// `addresses`, `localhost` and `127.0.0.1`. The chain (leaf, then CA) is written to
/// `kubelet.crt` (0644) and the key to `kubelet.key` (0600), each atomically; `cert_dir` is
/// created (0755) when missing.
pub fn serving_cert(
    cfg: &KubeletConfiguration,
    cert_dir: &Path,
    hostname: &str,
    addresses: &[IpAddr],
) -> Result<ServingCert, ServerError> {
    match (
        cfg.tls_cert_file.is_empty(),
        cfg.tls_private_key_file.is_empty(),
    ) {
        (false, false) => {
            let cert = ServingCert {
                cert_file: PathBuf::from(&cfg.tls_cert_file),
                key_file: PathBuf::from(&cfg.tls_private_key_file),
                generated: false,
            };
            load_pair(&cert.cert_file, &cert.key_file)?;
            return Ok(cert);
        }
        (false, true) => {
            return Err(ServerError::Config {
                field: "tlsPrivateKeyFile",
                reason: format!(
                    "tlsCertFile is set ({}) but tlsPrivateKeyFile is empty: set both or neither",
                    cfg.tls_cert_file
                ),
            });
        }
        (true, false) => {
            return Err(ServerError::Config {
                field: "tlsCertFile",
                reason: format!(
                    "tlsPrivateKeyFile is set ({}) but tlsCertFile is empty: set both or neither",
                    cfg.tls_private_key_file
                ),
            });
        }
        (true, true) => {}
    }
    let cert_file = cert_dir.join(GENERATED_CERT_FILE);
    let key_file = cert_dir.join(GENERATED_KEY_FILE);
    if cert_file.exists() && key_file.exists() {
        match load_pair(&cert_file, &key_file) {
            Ok(_) if !expired(&cert_file) => {
                return Ok(ServingCert {
                    cert_file,
                    key_file,
                    generated: false,
                });
            }
            Ok(_) => tracing::warn!(
                cert = %cert_file.display(),
                "self-signed serving certificate expired, generating a new one"
            ),
            Err(err) => tracing::warn!(
                error = %node_util::error_chain(&err),
                "self-signed serving certificate unusable, generating a new one"
            ),
        }
    }
    let (chain_pem, key_pem) = generate(hostname, addresses)?;
    if !cert_dir.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(cert_dir)
            .map_err(|e| ServerError::io("creating directory", cert_dir, e))?;
    }
    // Key first: a crash between the two writes leaves a pair that does not match, which the
    // next start regenerates.
    write_atomic(&key_file, key_pem.as_bytes(), 0o600)?;
    write_atomic(&cert_file, chain_pem.as_bytes(), 0o644)?;
    tracing::info!(cert = %cert_file.display(), key = %key_file.display(), %hostname,
        "generated self-signed serving certificate");
    Ok(ServingCert {
        cert_file,
        key_file,
        generated: true,
    })
}

fn generate(hostname: &str, addresses: &[IpAddr]) -> Result<(String, String), ServerError> {
    let err = |source| ServerError::Generate {
        hostname: hostname.to_owned(),
        source,
    };
    let now = time::OffsetDateTime::now_utc();
    let stamp = now.unix_timestamp();
    let not_before = now - BACKDATE;
    let not_after = now + VALIDITY;

    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = name(&format!("{hostname}-ca@{stamp}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = name(&format!("{hostname}@{stamp}"));
    leaf.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DigitalSignature,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    leaf.subject_alt_names = sans(hostname, addresses).map_err(err)?;
    let issuer = Issuer::new(ca, ca_key);
    let leaf_cert = leaf.signed_by(&key, &issuer).map_err(err)?;
    Ok((
        format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
        key.serialize_pem(),
    ))
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// Hostname (an IP SAN if it is an address, else DNS), the addresses, then `localhost` and
/// `127.0.0.1`, without duplicates.
fn sans(hostname: &str, addresses: &[IpAddr]) -> Result<Vec<SanType>, rcgen::Error> {
    let mut ips: Vec<IpAddr> = Vec::new();
    let mut dns: Vec<String> = Vec::new();
    match hostname.parse::<IpAddr>() {
        Ok(ip) => ips.push(ip),
        Err(_) if !hostname.is_empty() => dns.push(hostname.to_owned()),
        Err(_) => {}
    }
    for ip in addresses
        .iter()
        .copied()
        .chain([IpAddr::V4(Ipv4Addr::LOCALHOST)])
    {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    if !dns.iter().any(|d| d == "localhost") {
        dns.push("localhost".to_owned());
    }
    let mut out = Vec::with_capacity(ips.len() + dns.len());
    for d in dns {
        out.push(SanType::DnsName(d.try_into()?));
    }
    out.extend(ips.into_iter().map(SanType::IpAddress));
    Ok(out)
}

/// Writes `data` to `path` with exactly `mode`, durably and atomically
/// ([`node_state::store::write_atomic`]).
fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), ServerError> {
    let fail = |source| ServerError::Write {
        path: path.to_path_buf(),
        source,
    };
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Err(ServerError::io(
            "writing",
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
        ));
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    node_state::store::write_atomic(dir, name, data, mode).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_include_host_addresses_and_localhost_once() {
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let sans = sans("node-a", &[ip, IpAddr::V4(Ipv4Addr::LOCALHOST)]).unwrap();
        let names: Vec<String> = sans
            .iter()
            .map(|s| match s {
                SanType::DnsName(d) => d.as_str().to_owned(),
                SanType::IpAddress(ip) => ip.to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(names, ["node-a", "localhost", "10.0.0.5", "127.0.0.1"]);
    }

    #[test]
    fn ip_hostname_becomes_an_ip_san() {
        let sans = sans("192.168.1.9", &[]).unwrap();
        assert!(sans.contains(&SanType::IpAddress("192.168.1.9".parse().unwrap())));
        assert!(
            !sans
                .iter()
                .any(|s| matches!(s, SanType::DnsName(d) if d.as_str() == "192.168.1.9"))
        );
    }
}
