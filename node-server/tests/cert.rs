#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The serving certificate and the TLS configuration's error cases.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use node_config::KubeletConfiguration;
use node_server::{ServerError, serving_cert, tls_config};
use node_util::error_chain;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::extensions::GeneralName;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn chain(p: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(&std::fs::read(p).unwrap())
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn generated_cert_is_reused_and_regenerated_when_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let cert_dir = dir.path().join("pki");
    let cfg = KubeletConfiguration::default();
    let addrs = ["10.0.0.7".parse().unwrap(), "fd00::7".parse().unwrap()];
    let first = serving_cert(&cfg, &cert_dir, "node-1", &addrs).unwrap();
    assert!(first.generated);
    assert_eq!(first.cert_file, cert_dir.join("kubelet.crt"));
    assert_eq!(first.key_file, cert_dir.join("kubelet.key"));
    assert_eq!(mode(&cert_dir), 0o755);
    assert_eq!(mode(&first.cert_file), 0o644);
    assert_eq!(mode(&first.key_file), 0o600);

    let certs = chain(&first.cert_file);
    assert_eq!(certs.len(), 2);
    let (_, leaf) = x509_parser::parse_x509_certificate(certs[0].as_ref()).unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(certs[1].as_ref()).unwrap();
    let cn = |c: &x509_parser::certificate::X509Certificate<'_>| {
        c.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    };
    let leaf_cn = cn(&leaf);
    let stamp = leaf_cn.strip_prefix("node-1@").unwrap();
    assert!(stamp.parse::<i64>().unwrap() > 1_600_000_000);
    assert_eq!(cn(&ca), format!("node-1-ca@{stamp}"));
    assert_eq!(leaf.issuer(), ca.subject());
    assert!(ca.is_ca());
    let days =
        (leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp()) / 86_400;
    assert_eq!(days, 365, "one year, backdated an hour");
    let sans: Vec<String> = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => (*d).to_owned(),
            GeneralName::IPAddress(b) if b.len() == 4 => {
                IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()).to_string()
            }
            GeneralName::IPAddress(b) => {
                IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()).to_string()
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        sans,
        ["node-1", "localhost", "10.0.0.7", "fd00::7", "127.0.0.1"]
    );

    // Second call: reused, byte for byte.
    let before = std::fs::read(&first.cert_file).unwrap();
    let second = serving_cert(&cfg, &cert_dir, "node-1", &addrs).unwrap();
    assert!(!second.generated);
    assert_eq!(std::fs::read(&second.cert_file).unwrap(), before);

    // Corrupt certificate: regenerated.
    std::fs::write(&first.cert_file, "garbage").unwrap();
    let third = serving_cert(&cfg, &cert_dir, "node-1", &addrs).unwrap();
    assert!(third.generated);
    assert_eq!(chain(&third.cert_file).len(), 2);

    // A key that does not match the certificate: regenerated too.
    let other = tempfile::tempdir().unwrap();
    let foreign = serving_cert(&cfg, other.path(), "node-2", &[]).unwrap();
    std::fs::copy(&foreign.key_file, &third.key_file).unwrap();
    assert!(
        serving_cert(&cfg, &cert_dir, "node-1", &addrs)
            .unwrap()
            .generated
    );
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(&cert_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn configured_cert_files_are_used_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let gen_cfg = KubeletConfiguration::default();
    let generated = serving_cert(&gen_cfg, dir.path(), "node-1", &[]).unwrap();

    let cfg = KubeletConfiguration {
        tls_cert_file: generated.cert_file.to_string_lossy().into_owned(),
        tls_private_key_file: generated.key_file.to_string_lossy().into_owned(),
        ..Default::default()
    };
    let other_dir = tempfile::tempdir().unwrap();
    let used = serving_cert(&cfg, other_dir.path(), "ignored", &[]).unwrap();
    assert!(!used.generated);
    assert_eq!(used.cert_file, generated.cert_file);
    assert!(
        std::fs::read_dir(other_dir.path())
            .unwrap()
            .next()
            .is_none(),
        "nothing generated"
    );

    // Only one of the two set.
    let mut only_cert = cfg.clone();
    only_cert.tls_private_key_file.clear();
    let err = serving_cert(&only_cert, dir.path(), "n", &[]).unwrap_err();
    assert!(
        matches!(
            err,
            ServerError::Config {
                field: "tlsPrivateKeyFile",
                ..
            }
        ),
        "{err}"
    );
    let mut only_key = cfg.clone();
    only_key.tls_cert_file.clear();
    let err = serving_cert(&only_key, dir.path(), "n", &[]).unwrap_err();
    assert!(
        matches!(
            err,
            ServerError::Config {
                field: "tlsCertFile",
                ..
            }
        ),
        "{err}"
    );

    // Missing file: named.
    let mut missing = cfg.clone();
    missing.tls_cert_file = "/nonexistent/serving.crt".into();
    let err = error_chain(&serving_cert(&missing, dir.path(), "n", &[]).unwrap_err());
    assert!(err.contains("/nonexistent/serving.crt"), "{err}");

    // Not PEM: named.
    let junk = dir.path().join("junk.crt");
    std::fs::write(&junk, "not a certificate").unwrap();
    let mut bad = cfg.clone();
    bad.tls_cert_file = junk.to_string_lossy().into_owned();
    let err = error_chain(&serving_cert(&bad, dir.path(), "n", &[]).unwrap_err());
    assert!(
        err.contains("junk.crt") && err.contains("CERTIFICATE"),
        "{err}"
    );

    // A key file without a key.
    let mut bad_key = cfg.clone();
    bad_key.tls_private_key_file = cfg.tls_cert_file.clone();
    let err = error_chain(&serving_cert(&bad_key, dir.path(), "n", &[]).unwrap_err());
    assert!(
        err.contains("kubelet.crt") && err.contains("private key"),
        "{err}"
    );

    // Key of another pair: both files named.
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = serving_cert(&gen_cfg, foreign_dir.path(), "node-2", &[]).unwrap();
    let mut mismatch = cfg.clone();
    mismatch.tls_private_key_file = foreign.key_file.to_string_lossy().into_owned();
    let err = error_chain(&serving_cert(&mismatch, dir.path(), "n", &[]).unwrap_err());
    assert!(
        err.contains(&mismatch.tls_private_key_file) && err.contains(&cfg.tls_cert_file),
        "{err}"
    );
}

#[test]
fn tls_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cert = serving_cert(&KubeletConfiguration::default(), dir.path(), "n", &[]).unwrap();
    for ok in ["", "VersionTLS12", "VersionTLS13", "VersionTLS10"] {
        tls_config(&cert, None, ok, &[]).unwrap();
    }
    let err = tls_config(&cert, None, "VersionTLS14", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tlsMinVersion") && err.contains("VersionTLS14"),
        "{err}"
    );

    let suites = vec![
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".to_owned(),
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA".to_owned(),
    ];
    let config = tls_config(&cert, None, "", &suites).unwrap();
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    let err = tls_config(&cert, None, "", &["TLS_FANCY".to_owned()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tlsCipherSuites") && err.contains("TLS_FANCY"),
        "{err}"
    );

    // A client CA bundle that is not a bundle.
    let junk = dir.path().join("ca.pem");
    std::fs::write(&junk, "").unwrap();
    let err = error_chain(&tls_config(&cert, Some(&junk), "", &[]).unwrap_err());
    assert!(err.contains("ca.pem"), "{err}");
}
