//! Operator defaults from `--config FILE`: a flat YAML map of configuration keys.
//!
//! `kubernetes.operator.*` keys configure the operator; all other keys are default Flink configuration
//! that every resource's `flinkConfiguration` overrides (as upstream's default configuration does).

use std::collections::BTreeMap;
use std::path::Path;

use crate::crd::FlinkConfiguration;
use crate::flink_config::OPERATOR_PREFIX;

/// Upstream's key for the number of reconciliations at once.
pub const RECONCILE_PARALLELISM: &str = "kubernetes.operator.reconcile.parallelism";

#[derive(Clone, Debug, Default)]
pub struct OperatorConfig {
    /// Every key from the file, values as strings.
    pub entries: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read operator configuration {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("operator configuration {path} is not a flat YAML map of keys to values: {source}")]
    Parse { path: String, source: serde_yaml::Error },
    #[error("operator configuration {path}: value of '{key}' must be a string, number or boolean")]
    NotScalar { path: String, key: String },
    #[error("operator configuration: {key}: {reason}")]
    Invalid { key: String, reason: String },
}

impl OperatorConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: display.clone(),
            source,
        })?;
        Self::parse(&text, &display)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw: Option<BTreeMap<String, serde_yaml::Value>> =
            serde_yaml::from_str(text).map_err(|source| ConfigError::Parse {
                path: origin.to_string(),
                source,
            })?;
        let mut entries = BTreeMap::new();
        for (key, value) in raw.unwrap_or_default() {
            let text = match value {
                serde_yaml::Value::String(s) => s,
                serde_yaml::Value::Number(n) => n.to_string(),
                serde_yaml::Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(ConfigError::NotScalar {
                        path: origin.to_string(),
                        key,
                    });
                }
            };
            entries.insert(key, text);
        }
        Ok(OperatorConfig { entries })
    }

    /// Default Flink configuration (every key that does not configure the operator).
    pub fn flink_defaults(&self) -> FlinkConfiguration {
        self.entries
            .iter()
            .filter(|(k, _)| !k.starts_with(OPERATOR_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A duration option, or `default` when absent.
    pub fn duration(&self, key: &str, default: std::time::Duration) -> Result<std::time::Duration, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(text) => crate::flink_config::parse_duration(text).map_err(|reason| ConfigError::Invalid {
                key: key.to_string(),
                reason,
            }),
        }
    }

    /// How many reconciliations may run at once (`kubernetes.operator.reconcile.parallelism`, upstream's key
    /// and default 200); -1, as upstream, or 0 mean no limit.
    pub fn reconcile_parallelism(&self) -> Result<u16, ConfigError> {
        let invalid = |reason: &str| ConfigError::Invalid {
            key: RECONCILE_PARALLELISM.to_string(),
            reason: reason.to_string(),
        };
        match self.get(RECONCILE_PARALLELISM).map(str::trim) {
            None => Ok(200),
            Some("-1") => Ok(0),
            Some(text) => text
                .parse::<u16>()
                .map_err(|_| invalid("must be a whole number from 0 to 65535, or -1 for no limit")),
        }
    }

    /// An operator option.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_parallelism_defaults_to_upstreams_and_minus_one_lifts_the_limit() {
        let parallelism = |text: &str| OperatorConfig::parse(text, "t").unwrap().reconcile_parallelism();
        assert_eq!(OperatorConfig::default().reconcile_parallelism().unwrap(), 200);
        assert_eq!(parallelism("kubernetes.operator.reconcile.parallelism: 8").unwrap(), 8);
        assert_eq!(parallelism("kubernetes.operator.reconcile.parallelism: -1").unwrap(), 0);
        let error = parallelism("kubernetes.operator.reconcile.parallelism: lots").unwrap_err();
        assert!(
            error.to_string().contains("kubernetes.operator.reconcile.parallelism"),
            "{error}"
        );
        assert!(parallelism("kubernetes.operator.reconcile.parallelism: 70000").is_err());
    }

    #[test]
    fn splits_operator_and_flink_keys() {
        let config = OperatorConfig::parse(
            "kubernetes.operator.reconcile.interval: 60 s\nstate.savepoints.dir: file:///s\ntaskmanager.numberOfTaskSlots: 2\n",
            "test",
        )
        .unwrap();
        assert_eq!(config.get("kubernetes.operator.reconcile.interval"), Some("60 s"));
        let flink = config.flink_defaults();
        assert_eq!(flink.len(), 2);
        assert_eq!(
            flink.get("taskmanager.numberOfTaskSlots").map(String::as_str),
            Some("2")
        );
    }

    #[test]
    fn durations_with_defaults() {
        let config = OperatorConfig::parse("kubernetes.operator.reconcile.interval: 60 s\nbad: soon\n", "t").unwrap();
        let default = std::time::Duration::from_secs(5);
        assert_eq!(
            config
                .duration("kubernetes.operator.reconcile.interval", default)
                .unwrap()
                .as_secs(),
            60
        );
        assert_eq!(config.duration("absent", default).unwrap(), default);
        assert!(config.duration("bad", default).is_err());
    }

    #[test]
    fn rejects_nested_values_and_accepts_empty() {
        assert!(OperatorConfig::parse("a: {b: c}", "t").is_err());
        assert!(OperatorConfig::parse("- a", "t").is_err());
        assert!(OperatorConfig::parse("", "t").unwrap().entries.is_empty());
    }
}
