//! Self-managed webhook certificates: the operator keeps a CA and a serving certificate in a Secret, serves
//! the certificate from files (reloaded by `tls::reload_on_change`) and writes the CA into the `caBundle` of
//! its two webhook configurations. Nothing else (cert-manager, an init job) is needed.
//!
//! The Secret is the source of truth for every replica: whoever finds it missing or due for renewal writes a
//! new one with an optimistic-concurrency create or replace; a replica that loses the race (409) re-reads
//! it and uses the winner's certificates. Renewing only the serving certificate keeps the CA, so the
//! `caBundle` the API server trusts does not change and no admission fails in between. When the CA itself is
//! renewed, the previous CA stays in the bundle until it expires.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::certs::{self, Ca};
use crate::webhook::tls::{CertPaths, certified_key};

/// Keys of the Secret.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
/// The CA before the last CA renewal, kept in the bundle until it expires.
pub const PREVIOUS_CA_CERT: &str = "ca-previous.crt";

/// How many times a create/replace race is retried before giving up until the next check.
const CONFLICT_RETRIES: usize = 5;

#[derive(Clone, Debug)]
pub struct Settings {
    pub secret_namespace: String,
    pub secret_name: String,
    /// DNS names the serving certificate must cover (the webhook Service's names); IP addresses are allowed.
    pub dns_names: Vec<String>,
    /// Name of both the Validating- and the MutatingWebhookConfiguration whose `caBundle` is kept current.
    pub webhook_configuration: String,
    /// Validity of a new serving certificate (a new CA gets twice as long).
    pub validity: Duration,
    /// Renew the serving certificate when it expires within this time.
    pub renew_before: Duration,
    /// How often the Secret and the webhook configurations are checked.
    pub check_interval: Duration,
    /// Where the webhook reads its serving certificate and key.
    pub paths: CertPaths,
}

#[derive(Debug, thiserror::Error)]
pub enum SelfManagedError {
    #[error("cannot read Secret {name}: {source}")]
    ReadSecret { name: String, source: kube::Error },
    #[error("cannot create Secret {name}: {source}")]
    CreateSecret { name: String, source: kube::Error },
    #[error("cannot replace Secret {name}: {source}")]
    ReplaceSecret { name: String, source: kube::Error },
    #[error("Secret {name} kept changing under us ({CONFLICT_RETRIES} conflicts in a row)")]
    Contended { name: String },
    #[error("cannot issue certificates: {0}")]
    Issue(#[from] certs::CertsError),
    #[error("cannot write the serving certificate: {0}")]
    WriteFiles(std::io::Error),
    #[error("cannot read {kind} {name}: {source}")]
    ReadWebhookConfiguration {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("cannot patch the caBundle of {kind} {name}: {source}")]
    PatchCaBundle {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
}

/// The certificates as stored in the Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Material {
    pub ca: Ca,
    pub cert_pem: String,
    pub key_pem: String,
    pub previous_ca_pem: Option<String>,
}

impl Material {
    fn from_secret(secret: &Secret) -> Option<Material> {
        let data = secret.data.as_ref()?;
        let text = |key: &str| {
            data.get(key)
                .and_then(|bytes| String::from_utf8(bytes.0.clone()).ok())
                .filter(|text| !text.trim().is_empty())
        };
        Some(Material {
            ca: Ca {
                cert_pem: text(CA_CERT)?,
                key_pem: text(CA_KEY)?,
            },
            cert_pem: text(TLS_CERT)?,
            key_pem: text(TLS_KEY)?,
            previous_ca_pem: text(PREVIOUS_CA_CERT),
        })
    }

    fn data(&self) -> BTreeMap<String, ByteString> {
        let mut data = BTreeMap::from([
            (CA_CERT.to_string(), ByteString(self.ca.cert_pem.clone().into_bytes())),
            (CA_KEY.to_string(), ByteString(self.ca.key_pem.clone().into_bytes())),
            (TLS_CERT.to_string(), ByteString(self.cert_pem.clone().into_bytes())),
            (TLS_KEY.to_string(), ByteString(self.key_pem.clone().into_bytes())),
        ]);
        if let Some(previous) = &self.previous_ca_pem {
            data.insert(PREVIOUS_CA_CERT.to_string(), ByteString(previous.clone().into_bytes()));
        }
        data
    }

    /// What the API server must trust: the current CA, plus the previous one while it is still valid.
    pub fn ca_bundle(&self, now: OffsetDateTime) -> String {
        let mut bundle = self.ca.cert_pem.clone();
        if let Some(previous) = &self.previous_ca_pem
            && certs::not_after(previous).is_ok_and(|end| end > now)
        {
            if !bundle.ends_with('\n') {
                bundle.push('\n');
            }
            bundle.push_str(previous);
        }
        bundle
    }
}

/// What to do with the certificates found in the Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// They are fine.
    Keep,
    /// Issue a new serving certificate with the same CA (the caBundle stays valid).
    NewServing { reason: String },
    /// Start over with a new CA.
    NewCa { reason: String },
}

/// Decides whether the certificates in the Secret can be used (pure: no I/O, `now` given).
///
/// A new CA when there is none, it does not parse, or it expires before a serving certificate issued now
/// would (a serving certificate must not outlive its CA); a new serving certificate when it is missing,
/// does not match its key, is not signed by the CA, does not cover every DNS name, or is not valid any more
/// at `now + renew_before`.
pub fn decide(
    material: Option<&Material>,
    dns_names: &[String],
    now: OffsetDateTime,
    validity: Duration,
    renew_before: Duration,
) -> Plan {
    let Some(material) = material else {
        return Plan::NewCa {
            reason: "the Secret does not exist or lacks a key".into(),
        };
    };
    let ca_end = match certs::not_after(&material.ca.cert_pem) {
        Ok(end) => end,
        Err(e) => {
            return Plan::NewCa {
                reason: format!("CA: {e}"),
            };
        }
    };
    if ca_end < now + validity {
        return Plan::NewCa {
            reason: format!("the CA expires at {ca_end}, before a new serving certificate would"),
        };
    }
    let paths = CertPaths {
        cert: TLS_CERT.into(),
        key: TLS_KEY.into(),
    };
    if let Err(e) = certified_key(&paths, material.cert_pem.as_bytes(), material.key_pem.as_bytes()) {
        return Plan::NewServing { reason: e.to_string() };
    }
    let at = now + renew_before;
    match verify_serving(&material.ca.cert_pem, &material.cert_pem, dns_names, at) {
        Ok(()) => Plan::Keep,
        Err(reason) => Plan::NewServing { reason },
    }
}

/// Checks, as a TLS client trusting only `ca_pem` would at time `at`, that `cert_pem` serves every name.
fn verify_serving(ca_pem: &str, cert_pem: &str, dns_names: &[String], at: OffsetDateTime) -> Result<(), String> {
    let pems = |text: &str| -> Result<Vec<CertificateDer<'static>>, String> {
        rustls_pemfile::certs(&mut text.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cannot parse PEM: {e}"))
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in pems(ca_pem)? {
        roots.add(ca).map_err(|e| format!("unusable CA: {e}"))?;
    }
    let chain = pems(cert_pem)?;
    let (leaf, intermediates) = chain.split_first().ok_or("no serving certificate")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("cannot build a verifier: {e}"))?;
    let seconds = u64::try_from(at.unix_timestamp()).map_err(|_| "time before 1970")?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(seconds));
    for dns in dns_names {
        let name = ServerName::try_from(dns.clone()).map_err(|e| format!("{dns}: {e}"))?;
        verifier
            .verify_server_cert(leaf, intermediates, &name, &[], time)
            .map_err(|e| format!("not valid for {dns} at {at}: {e}"))?;
    }
    Ok(())
}

fn days(duration: Duration) -> i64 {
    // Whole days, at least one (rcgen validity is set in days by `certs`).
    i64::try_from(duration.as_secs().div_ceil(86_400))
        .unwrap_or(i64::MAX)
        .max(1)
}

/// Carries out `plan` on what the Secret held.
pub fn issue(plan: &Plan, old: Option<&Material>, settings: &Settings) -> Result<Material, certs::CertsError> {
    let serving_days = days(settings.validity);
    let (ca, previous_ca_pem) = match plan {
        Plan::NewServing { .. } => match old {
            Some(old) => (old.ca.clone(), old.previous_ca_pem.clone()),
            None => (certs::new_ca(serving_days.saturating_mul(2))?, None),
        },
        _ => (
            certs::new_ca(serving_days.saturating_mul(2))?,
            old.map(|old| old.ca.cert_pem.clone()),
        ),
    };
    // A name that is an IP address (a webhook reached by URL, as in tests) becomes an IP SAN.
    let (ips, dns): (Vec<_>, Vec<_>) = settings
        .dns_names
        .iter()
        .partition(|name| name.parse::<std::net::IpAddr>().is_ok());
    let ips: Vec<std::net::IpAddr> = ips.iter().filter_map(|ip| ip.parse().ok()).collect();
    let dns: Vec<String> = dns.into_iter().cloned().collect();
    let (cert_pem, key_pem) = certs::issue_serving(&ca, &dns, &ips, serving_days)?;
    Ok(Material {
        ca,
        cert_pem,
        key_pem,
        previous_ca_pem,
    })
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 409)
}

/// Makes sure the Secret holds usable certificates and returns them.
pub async fn ensure_secret(client: &kube::Client, settings: &Settings) -> Result<Material, SelfManagedError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &settings.secret_namespace);
    let name = &settings.secret_name;
    for _ in 0..CONFLICT_RETRIES {
        let found = api.get_opt(name).await.map_err(|source| SelfManagedError::ReadSecret {
            name: name.clone(),
            source,
        })?;
        let old = found.as_ref().and_then(Material::from_secret);
        let plan = decide(
            old.as_ref(),
            &settings.dns_names,
            OffsetDateTime::now_utc(),
            settings.validity,
            settings.renew_before,
        );
        let reason = match &plan {
            Plan::Keep => return old.ok_or(SelfManagedError::Contended { name: name.clone() }),
            Plan::NewServing { reason } | Plan::NewCa { reason } => reason.clone(),
        };
        let fresh = issue(&plan, old.as_ref(), settings)?;
        let written = match found {
            None => {
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(settings.secret_namespace.clone()),
                        labels: Some(BTreeMap::from([(
                            "app.kubernetes.io/managed-by".to_string(),
                            "flink-operator".to_string(),
                        )])),
                        ..ObjectMeta::default()
                    },
                    type_: Some("Opaque".into()),
                    data: Some(fresh.data()),
                    ..Secret::default()
                };
                match api.create(&PostParams::default(), &secret).await {
                    Ok(_) => true,
                    Err(e) if is_conflict(&e) => false,
                    Err(source) => {
                        return Err(SelfManagedError::CreateSecret {
                            name: name.clone(),
                            source,
                        });
                    }
                }
            }
            Some(mut secret) => {
                // resourceVersion stays set: a concurrent writer makes this fail with 409.
                secret.data = Some(fresh.data());
                secret.string_data = None;
                match api.replace(name, &PostParams::default(), &secret).await {
                    Ok(_) => true,
                    Err(e) if is_conflict(&e) => false,
                    Err(source) => {
                        return Err(SelfManagedError::ReplaceSecret {
                            name: name.clone(),
                            source,
                        });
                    }
                }
            }
        };
        if written {
            info!(secret = %name, reason, "webhook certificates written");
            return Ok(fresh);
        }
        info!(secret = %name, "another replica wrote the webhook certificates first; reading them");
    }
    Err(SelfManagedError::Contended { name: name.clone() })
}

/// Writes the serving certificate and key where the webhook reads them, unless they are already there.
/// Returns whether anything changed. The key is written first: the reloader skips a pair that does not match.
pub fn write_files(material: &Material, paths: &CertPaths) -> Result<bool, SelfManagedError> {
    let current = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    if current(&paths.cert) == material.cert_pem && current(&paths.key) == material.key_pem {
        return Ok(false);
    }
    write_atomic(&paths.key, &material.key_pem, 0o600).map_err(SelfManagedError::WriteFiles)?;
    write_atomic(&paths.cert, &material.cert_pem, 0o644).map_err(SelfManagedError::WriteFiles)?;
    Ok(true)
}

fn write_atomic(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// JSON-patch operations that set `caBundle` on every webhook whose bundle differs; none when all match.
/// The `test` on resourceVersion makes a concurrent change fail the patch (retried at the next check).
fn ca_bundle_patch(
    resource_version: Option<&str>,
    bundles: &[Option<&ByteString>],
    bundle: &[u8],
) -> Option<json_patch::Patch> {
    use json_patch::{AddOperation, PatchOperation, TestOperation, jsonptr::PointerBuf};
    let mut ops: Vec<PatchOperation> = Vec::new();
    for (index, current) in bundles.iter().enumerate() {
        if current.is_some_and(|c| c.0 == bundle) {
            continue;
        }
        let value = serde_json::to_value(ByteString(bundle.to_vec())).ok()?;
        // `add` sets the member whether or not it exists (`replace` fails on a missing caBundle).
        ops.push(PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(["webhooks", &index.to_string(), "clientConfig", "caBundle"]),
            value,
        }));
    }
    if ops.is_empty() {
        return None;
    }
    if let Some(version) = resource_version {
        ops.insert(
            0,
            PatchOperation::Test(TestOperation {
                path: PointerBuf::from_tokens(["metadata", "resourceVersion"]),
                value: serde_json::Value::String(version.to_string()),
            }),
        );
    }
    Some(json_patch::Patch(ops))
}

/// Sets `caBundle` in both webhook configurations named `name`. Returns how many configurations changed.
pub async fn patch_ca_bundles(client: &kube::Client, name: &str, bundle: &[u8]) -> Result<usize, SelfManagedError> {
    let mut changed = 0;
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let kind = "ValidatingWebhookConfiguration";
    let found = validating
        .get(name)
        .await
        .map_err(|source| SelfManagedError::ReadWebhookConfiguration {
            kind,
            name: name.into(),
            source,
        })?;
    let bundles: Vec<_> = found
        .webhooks
        .iter()
        .flatten()
        .map(|w| w.client_config.ca_bundle.as_ref())
        .collect();
    if let Some(patch) = ca_bundle_patch(found.metadata.resource_version.as_deref(), &bundles, bundle) {
        validating
            .patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
            .map_err(|source| SelfManagedError::PatchCaBundle {
                kind,
                name: name.into(),
                source,
            })?;
        changed += 1;
    }
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let kind = "MutatingWebhookConfiguration";
    let found = mutating
        .get(name)
        .await
        .map_err(|source| SelfManagedError::ReadWebhookConfiguration {
            kind,
            name: name.into(),
            source,
        })?;
    let bundles: Vec<_> = found
        .webhooks
        .iter()
        .flatten()
        .map(|w| w.client_config.ca_bundle.as_ref())
        .collect();
    if let Some(patch) = ca_bundle_patch(found.metadata.resource_version.as_deref(), &bundles, bundle) {
        mutating
            .patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
            .map_err(|source| SelfManagedError::PatchCaBundle {
                kind,
                name: name.into(),
                source,
            })?;
        changed += 1;
    }
    Ok(changed)
}

/// One round: the Secret, the caBundles, the files. A failed caBundle patch is reported, not fatal: the
/// configurations may not exist yet (installed after the operator) and are retried at the next check.
///
/// A new CA goes into the caBundles first; the certificate it signed is served only from the next round on
/// (`check_interval` later), once the API server has had time to load the bundle, so no admission fails in
/// between. At start-up (`defer_serving == false`) the files are written at once: there is nothing to serve yet.
async fn reconcile_once(
    client: &kube::Client,
    settings: &Settings,
    defer_serving: bool,
) -> Result<(), SelfManagedError> {
    let material = ensure_secret(client, settings).await?;
    let bundle = material.ca_bundle(OffsetDateTime::now_utc());
    let bundles_changed = match patch_ca_bundles(client, &settings.webhook_configuration, bundle.as_bytes()).await {
        Ok(0) => false,
        Ok(changed) => {
            info!(
                configuration = %settings.webhook_configuration,
                changed, "caBundle written into the webhook configurations"
            );
            true
        }
        Err(e) => {
            warn!(error = %e, "caBundle not written yet; retrying at the next check");
            false
        }
    };
    if defer_serving && bundles_changed {
        info!("serving the new certificate from the next check on, once the API server trusts its CA");
        return Ok(());
    }
    if write_files(&material, &settings.paths)? {
        info!(cert = %settings.paths.cert.display(), "serving certificate files updated from the Secret");
    }
    Ok(())
}

/// Before the webhook serves: certificates in the Secret and on disk, caBundles patched.
pub async fn prepare(client: &kube::Client, settings: &Settings) -> Result<(), SelfManagedError> {
    reconcile_once(client, settings, false).await
}

/// Re-checks every `check_interval` until shutdown: renews before expiry, follows another replica's
/// renewal, and restores caBundles that someone reset (e.g. a `helm upgrade`). Errors are logged and retried.
pub async fn maintain(client: kube::Client, settings: Settings, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(settings.check_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(e) = reconcile_once(&client, &settings, true).await {
            warn!(error = %e, "webhook certificate check failed; retrying at the next check");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn names() -> Vec<String> {
        vec!["op-webhook.ops.svc".into(), "op-webhook.ops.svc.cluster.local".into()]
    }

    fn material(dns: &[String], serving_days: i64, ca_days: i64) -> Material {
        let ca = certs::new_ca(ca_days).unwrap();
        let (cert_pem, key_pem) = certs::issue_serving(&ca, dns, &[], serving_days).unwrap();
        Material {
            ca,
            cert_pem,
            key_pem,
            previous_ca_pem: None,
        }
    }

    fn plan(m: Option<&Material>) -> Plan {
        decide(m, &names(), OffsetDateTime::now_utc(), 365 * DAY, 30 * DAY)
    }

    fn settings() -> Settings {
        Settings {
            secret_namespace: "ops".into(),
            secret_name: "certs".into(),
            dns_names: names(),
            webhook_configuration: "op".into(),
            validity: 365 * DAY,
            renew_before: 30 * DAY,
            check_interval: 60 * DAY,
            paths: CertPaths {
                cert: "tls.crt".into(),
                key: "tls.key".into(),
            },
        }
    }

    #[test]
    fn good_certificates_are_kept() {
        assert_eq!(plan(Some(&material(&names(), 365, 730))), Plan::Keep);
    }

    #[test]
    fn missing_certificates_start_with_a_new_ca() {
        assert!(matches!(plan(None), Plan::NewCa { .. }));
    }

    #[test]
    fn expiring_serving_certificate_is_renewed_with_the_same_ca() {
        let old = material(&names(), 10, 730);
        let p = plan(Some(&old));
        assert!(
            matches!(&p, Plan::NewServing { reason } if reason.contains("not valid")),
            "{p:?}"
        );
        let fresh = issue(&p, Some(&old), &settings()).unwrap();
        assert_eq!(fresh.ca, old.ca);
        assert_ne!(fresh.cert_pem, old.cert_pem);
        assert_eq!(plan(Some(&fresh)), Plan::Keep);
    }

    #[test]
    fn wrong_names_get_a_new_serving_certificate() {
        let p = plan(Some(&material(&["other.ops.svc".into()], 365, 730)));
        assert!(
            matches!(&p, Plan::NewServing { reason } if reason.contains("op-webhook.ops.svc")),
            "{p:?}"
        );
        // One name missing is enough.
        let p = plan(Some(&material(&names()[..1], 365, 730)));
        assert!(matches!(p, Plan::NewServing { .. }), "{p:?}");
    }

    #[test]
    fn certificate_of_another_ca_or_key_is_replaced() {
        let mut m = material(&names(), 365, 730);
        m.ca = certs::new_ca(730).unwrap();
        assert!(matches!(plan(Some(&m)), Plan::NewServing { .. }));
        let mut m = material(&names(), 365, 730);
        m.key_pem = material(&names(), 365, 730).key_pem;
        assert!(matches!(plan(Some(&m)), Plan::NewServing { .. }));
    }

    #[test]
    fn expiring_or_broken_ca_starts_over_and_keeps_the_old_ca_in_the_bundle() {
        let old = material(&names(), 100, 200);
        let p = plan(Some(&old));
        assert!(matches!(p, Plan::NewCa { .. }), "{p:?}");
        let fresh = issue(&p, Some(&old), &settings()).unwrap();
        assert_ne!(fresh.ca, old.ca);
        assert_eq!(plan(Some(&fresh)), Plan::Keep);
        let bundle = fresh.ca_bundle(OffsetDateTime::now_utc());
        assert!(bundle.starts_with(&fresh.ca.cert_pem));
        assert!(bundle.contains(&old.ca.cert_pem));
        // Once the old CA has expired it leaves the bundle.
        let later = OffsetDateTime::now_utc() + Duration::from_secs(201 * 86_400);
        assert_eq!(fresh.ca_bundle(later), fresh.ca.cert_pem);

        let mut broken = material(&names(), 365, 730);
        broken.ca.cert_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into();
        assert!(matches!(plan(Some(&broken)), Plan::NewCa { .. }));
    }

    #[test]
    fn ip_addresses_become_ip_names() {
        let mut s = settings();
        s.dns_names = vec!["127.0.0.1".into(), "localhost".into()];
        let m = issue(&Plan::NewCa { reason: "test".into() }, None, &s).unwrap();
        let p = decide(Some(&m), &s.dns_names, OffsetDateTime::now_utc(), 365 * DAY, 30 * DAY);
        assert_eq!(p, Plan::Keep);
    }

    #[test]
    fn secret_round_trip_and_incomplete_secret() {
        let m = material(&names(), 365, 730);
        let secret = Secret {
            data: Some(m.data()),
            ..Secret::default()
        };
        assert_eq!(Material::from_secret(&secret), Some(m.clone()));
        let mut data = m.data();
        data.remove(CA_KEY);
        let secret = Secret {
            data: Some(data),
            ..Secret::default()
        };
        assert_eq!(Material::from_secret(&secret), None);
    }

    #[test]
    fn patch_only_what_differs() {
        let same = ByteString(b"CA".to_vec());
        assert!(ca_bundle_patch(Some("7"), &[Some(&same)], b"CA").is_none());
        let patch = ca_bundle_patch(Some("7"), &[Some(&same), None], b"CA").unwrap();
        let json = serde_json::to_value(&patch).unwrap();
        assert_eq!(json[0]["op"], "test");
        assert_eq!(json[0]["value"], "7");
        assert_eq!(json[1]["op"], "add");
        assert_eq!(json[1]["path"], "/webhooks/1/clientConfig/caBundle");
        assert_eq!(json[1]["value"], "Q0E=");
        assert_eq!(json.as_array().unwrap().len(), 2);
    }
}
