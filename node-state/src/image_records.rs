//! Image pull records under `<root>/image_manager/{pulling,pulled}`.
//!
//! * `pulling/` holds `ImagePullIntent` records keyed by the image string;
//! * `pulled/` holds `ImagePulledRecord` records keyed by the image ref (image ID).
//!
//! File names are `sha256-` + hex SHA-256 of the key. Records are kubelet config API objects
//! decoded strictly (exact field names, unknown and duplicate fields rejected), in
//! `kubelet.config.k8s.io/v1alpha1` or `v1beta1`; this crate writes `v1beta1`. A record whose
//! `image` / `imageRef` differs from the key it is looked up by is treated as absent, and
//! directory listings skip names without the `sha256-` prefix or with a `.tmp` suffix.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::gojson;
use crate::gotime::GoTime;
use crate::store::{FILE_MODE, StateFile, write_atomic};

/// Directory under the kubelet root.
pub const IMAGE_MANAGER_DIR: &str = "image_manager";
/// Subdirectory of pull intents.
pub const PULLING_DIR: &str = "pulling";
/// Subdirectory of pulled records.
pub const PULLED_DIR: &str = "pulled";
/// `apiVersion` written by this crate.
pub const API_VERSION_V1BETA1: &str = "kubelet.config.k8s.io/v1beta1";
/// The older `apiVersion`, still read.
pub const API_VERSION_V1ALPHA1: &str = "kubelet.config.k8s.io/v1alpha1";

const FILE_PREFIX: &str = "sha256-";
const TMP_SUFFIX: &str = ".tmp";
const DIR_MODE: u32 = 0o700;

/// The file name the kubelet uses for a record key: `sha256-<hex>`.
pub fn record_file_name(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut name = String::with_capacity(FILE_PREFIX.len() + 64);
    name.push_str(FILE_PREFIX);
    for b in digest {
        name.push_str(&format!("{b:02x}"));
    }
    name
}

/// True for names a listing considers (`sha256-` prefix, no `.tmp` suffix).
pub fn is_record_file_name(name: &str) -> bool {
    name.starts_with(FILE_PREFIX) && !name.ends_with(TMP_SUFFIX)
}

/// A record of the kubelet starting to pull an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImagePullIntent {
    /// The `apiVersion` the record was read with (written as v1beta1).
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// The container's `image` field.
    pub image: String,
}

/// Coordinates of a secret used for a pull.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePullSecret {
    /// Secret UID.
    pub uid: String,
    /// Secret namespace.
    pub namespace: String,
    /// Secret name.
    pub name: String,
    /// SHA-256 of the pull credentials the secret held.
    #[serde(rename = "credentialHash")]
    pub credential_hash: String,
}

/// Coordinates of a service account whose token was used for a pull.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePullServiceAccount {
    /// Service account UID.
    pub uid: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// The credentials an image was pulled with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImagePullCredentials {
    /// Secrets (`kubernetesSecretCoordinates` in v1alpha1 files).
    #[serde(rename = "kubernetesSecrets", skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_secrets: Vec<ImagePullSecret>,
    /// Service accounts.
    #[serde(
        rename = "kubernetesServiceAccounts",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub kubernetes_service_accounts: Vec<ImagePullServiceAccount>,
    /// Credentials every pod on the node can use (or an anonymous pull).
    #[serde(
        rename = "nodePodsAccessible",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub node_pods_accessible: bool,
}

/// A record of an image the kubelet pulled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImagePulledRecord {
    /// The `apiVersion` the record was read with (written as v1beta1).
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Last update.
    #[serde(rename = "lastUpdatedTime")]
    pub last_updated_time: GoTime,
    /// The image ref from the runtime.
    #[serde(rename = "imageRef")]
    pub image_ref: String,
    /// Image (without tag/digest) to the credentials it was pulled with.
    #[serde(rename = "credentialMapping")]
    pub credential_mapping: BTreeMap<String, ImagePullCredentials>,
}

// ---- strict wire formats -------------------------------------------------------------------

struct TypeMetaOnly {
    kind: String,
    api_version: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentWire {
    #[allow(dead_code)]
    kind: String,
    #[serde(rename = "apiVersion")]
    #[allow(dead_code)]
    api_version: String,
    #[serde(default)]
    image: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredsV1beta1 {
    #[serde(rename = "kubernetesSecrets", default)]
    secrets: Option<Vec<ImagePullSecret>>,
    #[serde(rename = "kubernetesServiceAccounts", default)]
    service_accounts: Option<Vec<ImagePullServiceAccount>>,
    #[serde(rename = "nodePodsAccessible", default)]
    node_pods_accessible: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredsV1alpha1 {
    #[serde(
        rename = "kubernetesSecretCoordinates",
        alias = "kubernetesSecrets",
        default
    )]
    secrets: Option<Vec<ImagePullSecret>>,
    #[serde(rename = "kubernetesServiceAccounts", default)]
    service_accounts: Option<Vec<ImagePullServiceAccount>>,
    #[serde(rename = "nodePodsAccessible", default)]
    node_pods_accessible: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "C: Deserialize<'de>"))]
struct PulledWire<C> {
    #[allow(dead_code)]
    kind: String,
    #[serde(rename = "apiVersion")]
    #[allow(dead_code)]
    api_version: String,
    #[serde(rename = "lastUpdatedTime", default)]
    last_updated_time: Option<String>,
    #[serde(rename = "imageRef", default)]
    image_ref: String,
    #[serde(rename = "credentialMapping", default)]
    credential_mapping: Option<BTreeMap<String, C>>,
}

fn strict_err(path: &Path, e: &serde_json::Error) -> Error {
    if e.is_syntax() || e.is_eof() {
        Error::Decode {
            path: path.to_path_buf(),
            field: "$".into(),
            message: format!("invalid JSON: {e}"),
        }
    } else {
        Error::Decode {
            path: path.to_path_buf(),
            field: "$".into(),
            message: e.to_string(),
        }
    }
}

fn type_meta(bytes: &[u8], path: &Path, want_kind: &str) -> Result<String> {
    // Only kind/apiVersion matter here; other fields are checked by the typed decode.
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| strict_err(path, &e))?;
    let obj = v.as_object().ok_or_else(|| Error::Decode {
        path: path.to_path_buf(),
        field: "$".into(),
        message: "expected an object".into(),
    })?;
    let s = |k: &str| {
        obj.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let tm = TypeMetaOnly {
        kind: s("kind"),
        api_version: s("apiVersion"),
    };
    if tm.kind != want_kind {
        return Err(Error::Decode {
            path: path.to_path_buf(),
            field: "kind".into(),
            message: format!("expected {want_kind:?}, found {:?}", tm.kind),
        });
    }
    if tm.api_version != API_VERSION_V1ALPHA1 && tm.api_version != API_VERSION_V1BETA1 {
        return Err(Error::Decode {
            path: path.to_path_buf(),
            field: "apiVersion".into(),
            message: format!(
                "expected {API_VERSION_V1ALPHA1:?} or {API_VERSION_V1BETA1:?}, found {:?}",
                tm.api_version
            ),
        });
    }
    Ok(tm.api_version)
}

fn creds(
    secrets: Option<Vec<ImagePullSecret>>,
    sas: Option<Vec<ImagePullServiceAccount>>,
    npa: Option<bool>,
) -> ImagePullCredentials {
    ImagePullCredentials {
        kubernetes_secrets: secrets.unwrap_or_default(),
        kubernetes_service_accounts: sas.unwrap_or_default(),
        node_pods_accessible: npa.unwrap_or(false),
    }
}

impl StateFile for ImagePullIntent {
    fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let api_version = type_meta(bytes, path, "ImagePullIntent")?;
        let w: IntentWire = serde_json::from_slice(bytes).map_err(|e| strict_err(path, &e))?;
        Ok(ImagePullIntent {
            api_version,
            image: w.image,
        })
    }

    fn encode(&self) -> Result<Vec<u8>> {
        #[derive(Serialize)]
        struct Wire<'a> {
            kind: &'static str,
            #[serde(rename = "apiVersion")]
            api_version: &'static str,
            image: &'a str,
        }
        let mut out = gojson::to_vec(
            &Wire {
                kind: "ImagePullIntent",
                api_version: API_VERSION_V1BETA1,
                image: &self.image,
            },
            "ImagePullIntent",
        )?;
        // The apimachinery JSON serializer ends every object with a newline.
        out.push(b'\n');
        Ok(out)
    }
}

impl StateFile for ImagePulledRecord {
    fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let api_version = type_meta(bytes, path, "ImagePulledRecord")?;
        let (time, image_ref, mapping) = if api_version == API_VERSION_V1BETA1 {
            let w: PulledWire<CredsV1beta1> =
                serde_json::from_slice(bytes).map_err(|e| strict_err(path, &e))?;
            let m = w
                .credential_mapping
                .unwrap_or_default()
                .into_iter()
                .map(|(k, c)| {
                    (
                        k,
                        creds(c.secrets, c.service_accounts, c.node_pods_accessible),
                    )
                })
                .collect();
            (w.last_updated_time, w.image_ref, m)
        } else {
            let w: PulledWire<CredsV1alpha1> =
                serde_json::from_slice(bytes).map_err(|e| strict_err(path, &e))?;
            let m = w
                .credential_mapping
                .unwrap_or_default()
                .into_iter()
                .map(|(k, c)| {
                    (
                        k,
                        creds(c.secrets, c.service_accounts, c.node_pods_accessible),
                    )
                })
                .collect();
            (w.last_updated_time, w.image_ref, m)
        };
        let last_updated_time = match time {
            None => GoTime::ZERO,
            Some(s) => GoTime::parse_rfc3339(&s).ok_or_else(|| Error::Decode {
                path: path.to_path_buf(),
                field: "lastUpdatedTime".into(),
                message: format!("{s:?} is not an RFC 3339 time"),
            })?,
        };
        Ok(ImagePulledRecord {
            api_version,
            last_updated_time,
            image_ref,
            credential_mapping: mapping,
        })
    }

    fn encode(&self) -> Result<Vec<u8>> {
        #[derive(Serialize)]
        struct Wire<'a> {
            kind: &'static str,
            #[serde(rename = "apiVersion")]
            api_version: &'static str,
            #[serde(rename = "lastUpdatedTime")]
            last_updated_time: Option<String>,
            #[serde(rename = "imageRef")]
            image_ref: &'a str,
            #[serde(
                rename = "credentialMapping",
                skip_serializing_if = "BTreeMap::is_empty"
            )]
            credential_mapping: &'a BTreeMap<String, ImagePullCredentials>,
        }
        let mut out = gojson::to_vec(
            &Wire {
                kind: "ImagePulledRecord",
                api_version: API_VERSION_V1BETA1,
                // metav1.Time: whole seconds in UTC, null for the zero time.
                last_updated_time: (!self.last_updated_time.is_zero())
                    .then(|| self.last_updated_time.to_rfc3339_utc_seconds()),
                image_ref: &self.image_ref,
                credential_mapping: &self.credential_mapping,
            },
            "ImagePulledRecord",
        )?;
        out.push(b'\n');
        Ok(out)
    }
}

/// The `image_manager` directory of a kubelet root.
#[derive(Debug, Clone)]
pub struct PullRecords {
    pulling: PathBuf,
    pulled: PathBuf,
}

impl PullRecords {
    /// Opens `<root>/image_manager`, creating `pulling/` and `pulled/` with mode 0700.
    pub fn open(kubelet_root: &Path) -> Result<Self> {
        let base = kubelet_root.join(IMAGE_MANAGER_DIR);
        let me = PullRecords {
            pulling: base.join(PULLING_DIR),
            pulled: base.join(PULLED_DIR),
        };
        for d in [&me.pulling, &me.pulled] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(d)
                .map_err(|e| Error::io(d, "creating directory", e))?;
        }
        Ok(me)
    }

    /// The path of an intent record.
    pub fn intent_path(&self, image: &str) -> PathBuf {
        self.pulling.join(record_file_name(image))
    }

    /// The path of a pulled record.
    pub fn pulled_path(&self, image_ref: &str) -> PathBuf {
        self.pulled.join(record_file_name(image_ref))
    }

    /// Records the intent to pull `image`.
    pub fn write_intent(&self, image: &str) -> Result<()> {
        let rec = ImagePullIntent {
            api_version: API_VERSION_V1BETA1.into(),
            image: image.into(),
        };
        write_atomic(
            &self.pulling,
            &record_file_name(image),
            &rec.encode()?,
            FILE_MODE,
        )
    }

    /// Whether an intent for `image` exists (a record for another image under its name does not count).
    pub fn intent_exists(&self, image: &str) -> Result<bool> {
        let path = self.intent_path(image);
        match read_optional(&path)? {
            None => Ok(false),
            Some(bytes) => Ok(ImagePullIntent::decode(&bytes, &path)?.image == image),
        }
    }

    /// Removes an intent; a missing one is fine.
    pub fn delete_intent(&self, image: &str) -> Result<()> {
        remove_optional(&self.intent_path(image))
    }

    /// Every intent record.
    pub fn list_intents(&self) -> Result<Vec<ImagePullIntent>> {
        list(&self.pulling)
    }

    /// Writes a pulled record (file named after its `image_ref`).
    pub fn write_pulled(&self, record: &ImagePulledRecord) -> Result<()> {
        write_atomic(
            &self.pulled,
            &record_file_name(&record.image_ref),
            &record.encode()?,
            FILE_MODE,
        )
    }

    /// The pulled record of `image_ref`; `None` when missing or when the file holds another ref.
    pub fn get_pulled(&self, image_ref: &str) -> Result<Option<ImagePulledRecord>> {
        let path = self.pulled_path(image_ref);
        match read_optional(&path)? {
            None => Ok(None),
            Some(bytes) => {
                let rec = ImagePulledRecord::decode(&bytes, &path)?;
                Ok((rec.image_ref == image_ref).then_some(rec))
            }
        }
    }

    /// Removes a pulled record; a missing one is fine.
    pub fn delete_pulled(&self, image_ref: &str) -> Result<()> {
        remove_optional(&self.pulled_path(image_ref))
    }

    /// Every pulled record.
    pub fn list_pulled(&self) -> Result<Vec<ImagePulledRecord>> {
        list(&self.pulled)
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match crate::store::read_state_file(path) {
        Ok(b) => Ok(Some(b)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn remove_optional(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, "removing", e)),
    }
}

fn list<T: StateFile>(dir: &Path) -> Result<Vec<T>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, "listing directory", e))? {
        let entry = entry.map_err(|e| Error::io(dir, "listing directory", e))?;
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if let (true, Some(name)) = (is_file, entry.file_name().to_str())
            && is_record_file_name(name)
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let path = dir.join(n);
            let bytes = crate::store::read_state_file(&path)?;
            T::decode(&bytes, &path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTENT: &str = r#"{"kind":"ImagePullIntent","apiVersion":"kubelet.config.k8s.io/v1alpha1","image":"repo.repo/test/test:v1"}"#;
    const PULLED_ALPHA: &str = r#"{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1alpha1","lastUpdatedTime":"2024-10-21T12:26:40Z","imageRef":"testimageref","credentialMapping":{"docker.io/testing/test":{"kubernetesSecretCoordinates":[{"uid":"testsecretuid","namespace":"default","name":"pull-secret","credentialHash":"testsecrethash"}]}}}"#;
    const PULLED_BETA: &str = r#"{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","lastUpdatedTime":"2024-10-21T12:26:40Z","imageRef":"testimage-anonpull","credentialMapping":{"docker.io/testing/test":{"nodePodsAccessible":true}}}"#;

    #[test]
    fn file_names_match_kubelet_testdata() {
        assert_eq!(
            record_file_name("repo.repo/test/test:v1"),
            "sha256-ee81caca15454863449fb55a1d942904d56d5ed9f9b20a7cb3453944ea2c7e11"
        );
        assert_eq!(
            record_file_name("testimageref"),
            "sha256-b3c0cc4278800b03a308ceb2611161430df571ca733122f0a40ac8b9792a9064"
        );
        assert_eq!(
            record_file_name("testimage-anonpull"),
            "sha256-a2eace2182b24cdbbb730798e47b10709b9ef5e0f0c1624a3bc06c8ca987727a"
        );
    }

    #[test]
    fn testdata_decodes() {
        let p = Path::new("x");
        assert_eq!(
            ImagePullIntent::decode(INTENT.as_bytes(), p).unwrap().image,
            "repo.repo/test/test:v1"
        );
        let a = ImagePulledRecord::decode(PULLED_ALPHA.as_bytes(), p).unwrap();
        assert_eq!(
            a.credential_mapping["docker.io/testing/test"].kubernetes_secrets[0].credential_hash,
            "testsecrethash"
        );
        let b = ImagePulledRecord::decode(PULLED_BETA.as_bytes(), p).unwrap();
        assert!(b.credential_mapping["docker.io/testing/test"].node_pods_accessible);
        // v1beta1 written: the beta testdata round-trips byte for byte (plus the newline).
        assert_eq!(b.encode().unwrap(), format!("{PULLED_BETA}\n").as_bytes());
        let a2 = ImagePulledRecord::decode(&a.encode().unwrap(), p).unwrap();
        assert_eq!(a2.credential_mapping, a.credential_mapping);
    }

    #[test]
    fn strict_decoding() {
        let p = Path::new("x");
        let unknown = INTENT.replace(r#""image""#, r#""imagex""#);
        assert!(ImagePullIntent::decode(unknown.as_bytes(), p).is_err());
        let wrong_case = INTENT.replace(r#""image""#, r#""Image""#);
        assert!(ImagePullIntent::decode(wrong_case.as_bytes(), p).is_err());
        let dup = INTENT.replace(r#""image":"#, r#""image":"a","image":"#);
        assert!(ImagePullIntent::decode(dup.as_bytes(), p).is_err());
        let alpha_field_in_beta = PULLED_ALPHA.replace("v1alpha1", "v1beta1");
        assert!(ImagePulledRecord::decode(alpha_field_in_beta.as_bytes(), p).is_err());
        let wrong_kind = INTENT.replace("ImagePullIntent", "ImagePulledRecord");
        assert!(ImagePullIntent::decode(wrong_kind.as_bytes(), p).is_err());
    }

    #[test]
    fn directory_semantics() {
        let root = tempfile::tempdir().unwrap();
        let recs = PullRecords::open(root.path()).unwrap();
        recs.write_intent("repo.repo/test/test:v1").unwrap();
        assert!(recs.intent_exists("repo.repo/test/test:v1").unwrap());
        assert!(!recs.intent_exists("other").unwrap());
        // A record stored under the wrong key counts as absent.
        fs::copy(
            recs.pulled
                .join("..")
                .join(PULLING_DIR)
                .join(record_file_name("repo.repo/test/test:v1")),
            recs.intent_path("impostor"),
        )
        .unwrap();
        assert!(!recs.intent_exists("impostor").unwrap());
        let beta = ImagePulledRecord::decode(PULLED_BETA.as_bytes(), Path::new("x")).unwrap();
        recs.write_pulled(&beta).unwrap();
        assert_eq!(recs.get_pulled("testimage-anonpull").unwrap(), Some(beta));
        fs::copy(
            recs.pulled_path("testimage-anonpull"),
            recs.pulled_path("elsewhere"),
        )
        .unwrap();
        assert_eq!(recs.get_pulled("elsewhere").unwrap(), None);
        // Listing skips .tmp files and foreign names.
        fs::write(recs.pulled.join("sha256-abc.tmp"), b"garbage").unwrap();
        fs::write(recs.pulled.join("README"), b"garbage").unwrap();
        assert_eq!(recs.list_pulled().unwrap().len(), 2);
        assert_eq!(recs.list_intents().unwrap().len(), 2);
        recs.delete_pulled("elsewhere").unwrap();
        recs.delete_pulled("elsewhere").unwrap();
        assert_eq!(recs.list_pulled().unwrap().len(), 1);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&recs.pulled).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
