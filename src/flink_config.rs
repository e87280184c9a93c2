//! Knowledge about Flink configuration keys, shared by validation and the resource builders (pure).

use crate::crd::FlinkConfiguration;

/// Prefix of keys that configure the operator; they are never passed to Flink.
pub const OPERATOR_PREFIX: &str = "kubernetes.operator.";

/// Keys the operator sets itself from the resource; a user value would break the cluster.
pub const FORBIDDEN_KEYS: [&str; 3] = [
    "kubernetes.namespace",
    "kubernetes.cluster-id",
    "high-availability.cluster-id",
];

/// Checkpoint directory: 1.x name and its 2.x replacement (Flink accepts either as fallback keys).
pub const CHECKPOINT_DIR_KEYS: [&str; 2] = ["state.checkpoints.dir", "execution.checkpointing.dir"];
/// Savepoint directory: 1.x name and its 2.x replacement.
pub const SAVEPOINT_DIR_KEYS: [&str; 2] = ["state.savepoints.dir", "execution.checkpointing.savepoint-dir"];

pub const HA_KEYS: [&str; 2] = ["high-availability.type", "high-availability"];
pub const SCHEDULER_MODE: &str = "scheduler-mode";
pub const ROLLBACK_ENABLED: &str = "kubernetes.operator.deployment.rollback.enabled";
pub const PERIODIC_SAVEPOINT_INTERVAL: &str = "kubernetes.operator.periodic.savepoint.interval";
pub const NUMBER_OF_TASK_SLOTS: &str = "taskmanager.numberOfTaskSlots";

/// The configuration a resource runs with: operator defaults overlaid by the resource's own keys.
pub fn effective(defaults: &FlinkConfiguration, spec: Option<&FlinkConfiguration>) -> FlinkConfiguration {
    let mut conf = defaults.clone();
    if let Some(spec) = spec {
        conf.extend(spec.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    conf
}

/// The first non-blank value among `keys`.
pub fn first_set<'a>(conf: &'a FlinkConfiguration, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .filter_map(|k| conf.get(*k))
        .map(|v| v.trim())
        .find(|v| !v.is_empty())
}

/// High availability is on when a HA type other than NONE is configured.
pub fn ha_enabled(conf: &FlinkConfiguration) -> bool {
    first_set(conf, &HA_KEYS).is_some_and(|v| !v.eq_ignore_ascii_case("none"))
}

pub fn is_reactive(conf: &FlinkConfiguration) -> bool {
    conf.get(SCHEDULER_MODE)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("reactive"))
}

pub fn is_true(conf: &FlinkConfiguration, key: &str) -> bool {
    conf.get(key).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Parses a Flink duration (`6h`, `30 min`, `10s`, `500ms`, plain number = milliseconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (expected e.g. 30s, 10min, 6h)"))?;
    let millis_per_unit: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return Err(format!("'{text}' has an unknown time unit (use ms, s, min, h or d)")),
    };
    number
        .checked_mul(millis_per_unit)
        .map(std::time::Duration::from_millis)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// Parses a memory size in Flink's syntax (`1024m`, `2g`, `512 mb`, plain bytes) or as a
/// Kubernetes binary quantity (`2Gi`, `512Mi`). Flink's meaning wins where the two differ
/// (`m` is mebibytes, as in every Flink example).
pub fn parse_memory_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a memory size (expected e.g. 1024m, 2g or 2Gi)"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "ki" | "kib" | "kibibytes" => 1 << 10,
        "m" | "mb" | "mi" | "mib" | "mebibytes" => 1 << 20,
        "g" | "gb" | "gi" | "gib" | "gibibytes" => 1 << 30,
        "t" | "tb" | "ti" | "tib" | "tebibytes" => 1 << 40,
        _ => {
            return Err(format!(
                "'{text}' has an unknown unit (use b, k, m, g, t, or Ki, Mi, Gi, Ti)"
            ));
        }
    };
    match number.checked_mul(multiplier) {
        Some(0) => Err(format!("'{text}' is zero")),
        Some(bytes) => Ok(bytes),
        None => Err(format!("'{text}' is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_in_flink_and_kubernetes_syntax() {
        assert_eq!(parse_memory_size("1024m"), Ok(1024 << 20));
        assert_eq!(parse_memory_size("2g"), Ok(2 << 30));
        assert_eq!(parse_memory_size("2Gi"), Ok(2 << 30));
        assert_eq!(parse_memory_size("512 mb"), Ok(512 << 20));
        assert_eq!(parse_memory_size("4096"), Ok(4096));
        assert_eq!(parse_memory_size(" 1G "), Ok(1 << 30));
        for bad in ["lots", "", "1.5g", "-1g", "0m", "12 parsecs", "99999999999999t"] {
            assert!(parse_memory_size(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("6h").map(|d| d.as_secs()), Ok(21_600));
        assert_eq!(parse_duration("30 min").map(|d| d.as_secs()), Ok(1_800));
        assert_eq!(parse_duration("500").map(|d| d.as_millis()), Ok(500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 fortnights").is_err());
    }

    #[test]
    fn ha_detection_knows_both_keys_and_none() {
        let conf = |k: &str, v: &str| FlinkConfiguration::from([(k.to_string(), v.to_string())]);
        assert!(ha_enabled(&conf("high-availability.type", "kubernetes")));
        assert!(ha_enabled(&conf("high-availability", "zookeeper")));
        assert!(!ha_enabled(&conf("high-availability.type", "NONE")));
        assert!(!ha_enabled(&conf("high-availability.type", " ")));
        assert!(!ha_enabled(&FlinkConfiguration::new()));
    }

    #[test]
    fn spec_keys_override_defaults() {
        let defaults = FlinkConfiguration::from([("a".into(), "1".into()), ("b".into(), "1".into())]);
        let spec = FlinkConfiguration::from([("b".into(), "2".into())]);
        let conf = effective(&defaults, Some(&spec));
        assert_eq!(conf.get("a").map(String::as_str), Some("1"));
        assert_eq!(conf.get("b").map(String::as_str), Some("2"));
    }
}
