//! Status writes: a JSON merge patch of what changed, optionally conditional on the resource version the new
//! status was computed from.
//!
//! A reconciliation reads the resource from the watch's cache, which can lag this operator's own last status
//! write by a few milliseconds (a reconciliation woken by another object's event right after one that wrote
//! status). Its decisions would then repeat what was just done: a second stop-with-savepoint whose trigger
//! replaces the first one's, a second submission. The first write of a reconciliation is therefore made
//! conditional on the copy's resourceVersion; the API server refuses it (409) when the copy is behind, and
//! the reconciliation stops before acting and looks again once the watch has caught up.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::MANAGER;
use super::decide::merge_patch;

/// What a status write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusWrite {
    /// Nothing changed: no request was made.
    Unchanged,
    /// Written; the resource is now at this resourceVersion.
    Written(Option<String>),
    /// The status was computed from a copy older than the API server's: not written.
    Stale,
}

/// The body of the status patch: the changed status fields and, when given, the resourceVersion the new
/// status was computed from (a precondition: the API server answers 409 if the resource has moved on).
pub fn status_patch(old: &serde_json::Value, new: &serde_json::Value, based_on: Option<&str>) -> serde_json::Value {
    let mut patch = serde_json::json!({ "status": merge_patch(old, new) });
    if let Some(version) = based_on {
        patch["metadata"] = serde_json::json!({ "resourceVersion": version });
    }
    patch
}

/// Writes `status` over `previous` on resource `name` of `api`, conditional on `based_on` if given.
pub async fn write<K, S>(
    api: &Api<K>,
    name: &str,
    previous: &S,
    status: &S,
    based_on: Option<&str>,
) -> Result<StatusWrite, kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    S: Serialize + PartialEq,
{
    if previous == status {
        return Ok(StatusWrite::Unchanged);
    }
    let old = serde_json::to_value(previous).unwrap_or_default();
    let new = serde_json::to_value(status).unwrap_or_default();
    let params = PatchParams {
        field_manager: Some(MANAGER.to_string()),
        ..PatchParams::default()
    };
    // Only the new resourceVersion is read from the answer: the API server is asked for the metadata alone,
    // which spares it encoding, and the operator decoding, the whole resource on every status write.
    let patch = Patch::Merge(status_patch(&old, &new, based_on));
    let request = kube::core::Request::new(api.resource_url())
        .patch_subresource("status", name, &params, &patch)
        .map_err(kube::Error::BuildRequest)?;
    match super::slim::metadata_answer(api, request).await {
        Ok(written) => Ok(StatusWrite::Written(written.resource_version)),
        Err(kube::Error::Api(e)) if e.code == 409 && based_on.is_some() => Ok(StatusWrite::Stale),
        Err(e) => Err(e),
    }
}

/// Whether `copy` (the watch's) is the API server's current version of the resource: one metadata GET.
pub async fn is_current<K>(api: &Api<K>, copy: &K) -> Result<bool, kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
{
    let name = copy.meta().name.clone().unwrap_or_default();
    let live = api.get_metadata(&name).await?;
    Ok(live.metadata.resource_version == copy.meta().resource_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conditional_patch_carries_the_resource_version_it_was_computed_from() {
        let old = serde_json::json!({ "a": 1, "b": 2 });
        let new = serde_json::json!({ "a": 1, "b": 3 });
        assert_eq!(
            status_patch(&old, &new, Some("42")),
            serde_json::json!({ "status": { "b": 3 }, "metadata": { "resourceVersion": "42" } })
        );
        assert_eq!(
            status_patch(&old, &new, None),
            serde_json::json!({ "status": { "b": 3 } })
        );
    }
}
