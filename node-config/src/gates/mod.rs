//! The feature-gate registry of a 1.35 kubelet: every gate it accepts, with its default and
//! stage, and the rules the kubelet applies when gates are set (unknown gates and changes to
//! locked gates are errors; `AllAlpha`/`AllBeta` switch every unset gate of that stage).

use std::collections::BTreeMap;
use std::fmt;

mod table;

/// Maturity of a feature gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Stage {
    /// Alpha: off by default, may change or vanish.
    Alpha,
    /// Beta: usually on by default.
    Beta,
    /// Generally available; often locked to its default.
    #[serde(rename = "GA")]
    Ga,
    /// Deprecated: will be removed.
    Deprecated,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Alpha => "ALPHA",
            Stage::Beta => "BETA",
            Stage::Ga => "GA",
            Stage::Deprecated => "DEPRECATED",
        })
    }
}

/// One known feature gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GateSpec {
    /// Gate name, e.g. `ContainerCheckpoint`.
    pub name: &'static str,
    /// Value when not set.
    pub default: bool,
    /// Maturity.
    pub stage: Stage,
    /// Whether the gate can only be set to its default.
    pub locked: bool,
}

/// Name of the gate that switches every alpha gate not set explicitly.
pub const ALL_ALPHA: &str = "AllAlpha";
/// Name of the gate that switches every beta gate not set explicitly.
pub const ALL_BETA: &str = "AllBeta";

/// Every gate a 1.35 kubelet accepts, sorted by name.
pub fn known_gates() -> &'static [GateSpec] {
    table::GATES
}

/// Looks a gate up by its exact (case-sensitive) name.
pub fn lookup(name: &str) -> Option<&'static GateSpec> {
    let gates = known_gates();
    gates
        .binary_search_by(|g| g.name.cmp(name))
        .ok()
        .map(|i| &gates[i])
}

/// A problem with one gate setting, worded like the kubelet's feature-gate errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// The name is not a gate this kubelet knows.
    #[error("unrecognized feature gate: {0}")]
    Unrecognized(String),
    /// The gate is locked to its default.
    #[error("cannot set feature gate {name} to {value}, feature is locked to {locked_to}")]
    Locked {
        /// Gate name.
        name: String,
        /// Requested value.
        value: bool,
        /// The only accepted value.
        locked_to: bool,
    },
    /// `--feature-gates` had an entry without `=` (the kubelet's `MapStringBool` wording).
    #[error(
        "invalid argument {0:?} for \"--feature-gates\" flag: malformed pair, expect string=bool"
    )]
    MissingValue(String),
    /// `--feature-gates` had a value that is not a Go boolean.
    #[error(
        "invalid argument \"{name}={value}\" for \"--feature-gates\" flag: invalid value of {name}: {value}, err: strconv.ParseBool: parsing {value:?}: invalid syntax"
    )]
    InvalidValue {
        /// Gate name.
        name: String,
        /// Text after `=`.
        value: String,
    },
}

/// Parses the `--feature-gates` flag syntax `Name=true,Other=false` into a map. Values are
/// Go `strconv.ParseBool` values (`1`, `t`, `T`, `TRUE`, `true`, `True` and the false forms).
pub fn parse_flag(text: &str) -> Result<BTreeMap<String, bool>, GateError> {
    let mut map = BTreeMap::new();
    for entry in text.split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let (name, value) = entry
            .split_once('=')
            .ok_or_else(|| GateError::MissingValue(entry.to_owned()))?;
        let name = name.trim();
        let value = value.trim();
        let parsed = parse_go_bool(value).ok_or_else(|| GateError::InvalidValue {
            name: name.to_owned(),
            value: value.to_owned(),
        })?;
        map.insert(name.to_owned(), parsed);
    }
    Ok(map)
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Feature gates in force: the known defaults plus explicit settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeatureGates {
    explicit: BTreeMap<String, bool>,
}

impl FeatureGates {
    /// Validates `settings` against the registry and returns the gates in force. Every bad
    /// entry is reported, not just the first.
    pub fn new(settings: &BTreeMap<String, bool>) -> Result<Self, Vec<GateError>> {
        let errors: Vec<GateError> = settings
            .iter()
            .filter_map(|(name, &value)| match lookup(name) {
                None => Some(GateError::Unrecognized(name.clone())),
                Some(spec) if spec.locked && value != spec.default => Some(GateError::Locked {
                    name: name.clone(),
                    value,
                    locked_to: spec.default,
                }),
                Some(_) => None,
            })
            .collect();
        if errors.is_empty() {
            Ok(Self {
                explicit: settings.clone(),
            })
        } else {
            Err(errors)
        }
    }

    /// Like [`FeatureGates::new`], but keeps only the valid entries and ignores the rest. Used
    /// where the kubelet itself has not validated yet (defaulting runs before validation).
    pub fn new_lossy(settings: &BTreeMap<String, bool>) -> Self {
        let explicit = settings
            .iter()
            .filter(|(name, value)| lookup(name).is_some_and(|s| !s.locked || **value == s.default))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        Self { explicit }
    }

    /// Whether `name` is enabled. Unknown names are disabled.
    pub fn enabled(&self, name: &str) -> bool {
        if let Some(&v) = self.explicit.get(name) {
            return v;
        }
        let Some(spec) = lookup(name) else {
            return false;
        };
        match spec.stage {
            Stage::Alpha if self.explicit.get(ALL_ALPHA) == Some(&true) && !spec.locked => true,
            Stage::Beta if self.explicit.contains_key(ALL_BETA) && !spec.locked => {
                self.explicit.get(ALL_BETA) == Some(&true)
            }
            _ => spec.default,
        }
    }

    /// The explicit settings.
    pub fn explicit(&self) -> &BTreeMap<String, bool> {
        &self.explicit
    }

    /// Warnings the kubelet logs for explicit settings of GA and deprecated gates.
    pub fn warnings(&self) -> Vec<String> {
        self.explicit
            .iter()
            .filter_map(|(name, value)| {
                let spec = lookup(name)?;
                match spec.stage {
                    Stage::Ga => Some(format!(
                        "Setting GA feature gate {name}={value}. It will be removed in a future release."
                    )),
                    Stage::Deprecated => Some(format!(
                        "Setting deprecated feature gate {name}={value}. It will be removed in a future release."
                    )),
                    _ => None,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        let gates = known_gates();
        assert!(gates.len() > 100, "only {} gates", gates.len());
        for pair in gates.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} !< {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn documented_gates() {
        let cc = lookup("ContainerCheckpoint").unwrap();
        assert_eq!((cc.stage, cc.default), (Stage::Beta, true));
        let ndf = lookup("NodeDeclaredFeatures").unwrap();
        assert_eq!((ndf.stage, ndf.default), (Stage::Alpha, false));
        let prg = lookup("KubeletPodResourcesGet").unwrap();
        assert_eq!((prg.stage, prg.default), (Stage::Beta, true));
        assert!(lookup(ALL_ALPHA).is_some());
        assert!(lookup(ALL_BETA).is_some());
    }

    #[test]
    fn unknown_and_locked_gates_are_errors() {
        let locked = known_gates().iter().find(|g| g.locked).unwrap();
        let settings = BTreeMap::from([
            ("NoSuchGate".to_owned(), true),
            (locked.name.to_owned(), !locked.default),
            ("ContainerCheckpoint".to_owned(), false),
        ]);
        let errors = FeatureGates::new(&settings).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors.contains(&GateError::Unrecognized("NoSuchGate".into())));
        assert_eq!(
            errors
                .iter()
                .find(|e| matches!(e, GateError::Locked { .. }))
                .unwrap()
                .to_string(),
            format!(
                "cannot set feature gate {} to {}, feature is locked to {}",
                locked.name, !locked.default, locked.default
            )
        );
    }

    #[test]
    fn all_alpha_and_all_beta() {
        let gates = FeatureGates::new(&BTreeMap::from([(ALL_ALPHA.to_owned(), true)])).unwrap();
        assert!(gates.enabled("NodeDeclaredFeatures"));
        let gates = FeatureGates::new(&BTreeMap::from([
            (ALL_BETA.to_owned(), false),
            ("KubeletPodResourcesGet".to_owned(), true),
        ]))
        .unwrap();
        assert!(!gates.enabled("ContainerCheckpoint"));
        assert!(
            gates.enabled("KubeletPodResourcesGet"),
            "explicit beats AllBeta"
        );
    }

    #[test]
    fn flag_syntax() {
        let map = parse_flag("A=true, B=false,C=1").unwrap();
        assert_eq!(map.len(), 3);
        assert!(!map["B"]);
        assert_eq!(
            parse_flag("A").unwrap_err(),
            GateError::MissingValue("A".into())
        );
        assert!(matches!(
            parse_flag("A=yes"),
            Err(GateError::InvalidValue { .. })
        ));
    }
}
