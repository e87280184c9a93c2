//! The Flink REST client against real Flink session clusters on loopback (1.20.5 and 2.3.0, from PyPI, started by
//! tests/env/flink.sh), plus its transport behaviour (timeouts, retries) against tiny local TCP servers whose
//! request counts are exact.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flink_operator::flink::{
    FlinkError, JarRunRequest, JobResult, JobState, OperationStatus, RestClient, RetryPolicy, SavepointRequest,
    StopRequest, is_job_running,
};
use support::flink::{ENTRY_CLASS, FlinkCluster, local_path, printed_counts, test_jar};
use support::{eventually, skip_e2e};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const UNKNOWN_JOB: &str = "00000000000000000000000000000000";

async fn savepoint_location(client: &RestClient, base: &str, job: &str, trigger: &str) -> String {
    eventually("the savepoint to complete", Duration::from_secs(90), || async {
        match client.savepoint_status(base, job, trigger).await.unwrap() {
            OperationStatus::InProgress => None,
            OperationStatus::Completed { location } => Some(location.expect("a savepoint location")),
            OperationStatus::Failed { cause } => panic!("savepoint failed: {cause}"),
        }
    })
    .await
}

async fn job_state(client: &RestClient, base: &str, job: &str) -> JobState {
    client.job_details(base, job).await.unwrap().state
}

async fn wait_running(client: &RestClient, base: &str, job: &str) {
    eventually(
        "the job and all its vertices RUNNING",
        Duration::from_secs(120),
        || async { is_job_running(&client.job_details(base, job).await.unwrap()).then_some(()) },
    )
    .await;
}

/// Everything the reconciler will do with a job, on one real session cluster of `version`.
async fn job_lifecycle(version: &str) {
    let started = Instant::now();
    let flink = FlinkCluster::session(version);
    let savepoint_dir = PathBuf::from(&flink.env["SAVEPOINT_DIR"]);
    let cluster_up = started.elapsed();
    let base = flink.rest_url.as_str();
    let client = RestClient::new(Duration::from_secs(10));

    // Cluster information.
    let info = client.cluster_info(base).await.unwrap();
    assert_eq!(info.get("flink-version").map(String::as_str), Some(version));
    assert!(info.contains_key("flink-revision"));
    // A TaskManager can be listed a moment before its slots are (seen under load): wait for both.
    let overview = support::eventually("the TaskManager and its 2 slots", Duration::from_secs(30), || async {
        let overview = client.overview(base).await.ok()?;
        ((overview.taskmanagers, overview.slots_total) == (1, 2)).then_some(overview)
    })
    .await;
    assert_eq!(overview.flink_version.as_deref(), Some(version));

    // Upload and run the test job (checkpoints every 500 ms).
    let jar_path = test_jar(version);
    let jar = Bytes::from(std::fs::read(&jar_path).unwrap());
    let jar_id = client.upload_jar(base, "flink-test-job.jar", jar).await.unwrap();
    assert!(client.list_jars(base).await.unwrap().iter().any(|j| j.id == jar_id));
    let run = |savepoint: Option<String>| JarRunRequest {
        entry_class: Some(ENTRY_CLASS.into()),
        parallelism: Some(2),
        program_args: ["--checkpoint-interval", "500", "--records-per-second", "20"]
            .map(String::from)
            .to_vec(),
        savepoint_path: savepoint,
        allow_non_restored_state: Some(false),
        job_id: None,
    };
    let job = client.run_jar(base, &jar_id, &run(None)).await.unwrap();
    let listed = client.jobs_overview(base).await.unwrap();
    assert!(
        listed.iter().any(|j| j.jid == job && j.name == "KeyedCounter"),
        "{listed:?}"
    );
    wait_running(&client, base, &job).await;
    let details = client.job_details(base, &job).await.unwrap();
    assert!(details.start_time > 0 && details.end_time == -1);
    assert_eq!(details.vertices.len(), 2, "{details:?}");
    assert_eq!(details.job_type.as_deref(), Some("STREAMING"));

    // A completed checkpoint shows up with a path that exists. (The job checkpoints often and Flink keeps only
    // the latest, so a path read a moment ago may already be subsumed: ask again until one is seen on disk.)
    let checkpoint = eventually("a completed checkpoint on disk", Duration::from_secs(60), || async {
        let latest = client.checkpoint_stats(base, &job).await.unwrap().latest.completed?;
        local_path(latest.external_path.as_deref()?).exists().then_some(latest)
    })
    .await;
    assert!(!checkpoint.is_savepoint);

    // Savepoint: trigger, poll, on disk; then dispose of it and see it gone.
    let target = savepoint_dir.join("manual");
    let request = SavepointRequest {
        target_directory: Some(target.to_str().unwrap().to_string()),
        cancel_job: false,
        format_type: None,
    };
    let trigger = client.trigger_savepoint(base, &job, &request).await.unwrap();
    let savepoint = savepoint_location(&client, base, &job, &trigger).await;
    let savepoint_path = local_path(&savepoint);
    assert!(savepoint_path.starts_with(&target), "{savepoint}");
    assert!(savepoint_path.join("_metadata").exists(), "{savepoint}");
    assert_eq!(
        job_state(&client, base, &job).await,
        JobState::Running,
        "cancel-job: false keeps it running"
    );
    let disposal = client.dispose_savepoint(base, &savepoint).await.unwrap();
    eventually("the savepoint disposal", Duration::from_secs(60), || async {
        match client.disposal_status(base, &disposal).await.unwrap() {
            OperationStatus::InProgress => None,
            OperationStatus::Completed { .. } => Some(()),
            OperationStatus::Failed { cause } => panic!("disposal failed: {cause}"),
        }
    })
    .await;
    assert!(
        !savepoint_path.exists(),
        "disposed savepoint still there: {savepoint_path:?}"
    );
    // Disposing of something that is not a savepoint fails with Flink's cause.
    let bad_disposal = client.dispose_savepoint(base, "/nonexistent/savepoint").await.unwrap();
    let cause = eventually("the failed disposal", Duration::from_secs(60), || async {
        match client.disposal_status(base, &bad_disposal).await.unwrap() {
            OperationStatus::Failed { cause } => Some(cause),
            OperationStatus::InProgress => None,
            other => panic!("disposing of a missing savepoint: {other:?}"),
        }
    })
    .await;
    assert!(cause.contains("Could not dispose savepoint"), "{cause}");

    // Stop with a savepoint: the job FINISHES; the counts printed so far are the state in the savepoint.
    let stop = StopRequest {
        target_directory: Some(savepoint_dir.join("stop").to_str().unwrap().to_string()),
        drain: false,
        format_type: None,
    };
    let trigger = client.stop_with_savepoint(base, &job, &stop).await.unwrap();
    let stop_savepoint = savepoint_location(&client, base, &job, &trigger).await;
    assert!(
        local_path(&stop_savepoint).join("_metadata").exists(),
        "{stop_savepoint}"
    );
    eventually("the stopped job FINISHED", Duration::from_secs(60), || async {
        (job_state(&client, base, &job).await == JobState::Finished).then_some(())
    })
    .await;
    match client.job_result(base, &job).await.unwrap() {
        JobResult::Completed {
            application_status,
            failure_cause,
            ..
        } => assert_eq!((application_status.as_str(), failure_cause), ("SUCCEEDED", None)),
        JobResult::InProgress => panic!("a FINISHED job has a result"),
    }
    // Cancelling it now (Flink answers 409: it reached another terminal state) is no error: nothing runs.
    client.cancel_job(base, &job).await.unwrap();
    assert_eq!(job_state(&client, base, &job).await, JobState::Finished);
    let log_before = std::fs::read_to_string(&flink.taskmanager_log).unwrap();
    let mut counts_at_stop = BTreeMap::new();
    for (key, count) in printed_counts(&log_before) {
        let max = counts_at_stop.entry(key).or_insert(0);
        *max = count.max(*max);
    }
    assert_eq!(counts_at_stop.len(), 4, "the job counts 4 keys: {counts_at_stop:?}");

    // Run again from that savepoint: checkpoint stats show the restore, and the keyed counts carry on.
    let restored_job = client
        .run_jar(base, &jar_id, &run(Some(stop_savepoint.clone())))
        .await
        .unwrap();
    assert_ne!(restored_job, job);
    wait_running(&client, base, &restored_job).await;
    let restored = eventually(
        "latest.restored in the checkpoint stats",
        Duration::from_secs(60),
        || async {
            let stats = client.checkpoint_stats(base, &restored_job).await.unwrap();
            stats.latest.restored.map(|r| (r, stats.counts.restored))
        },
    )
    .await;
    assert_eq!(
        restored.0.external_path.as_deref().map(local_path),
        Some(local_path(&stop_savepoint)),
        "{restored:?}"
    );
    assert!(restored.0.is_savepoint && restored.1 >= 1, "{restored:?}");
    let first_after_restore = eventually("counts printed after the restore", Duration::from_secs(60), || async {
        let log = std::fs::read_to_string(&flink.taskmanager_log).unwrap();
        let mut first = BTreeMap::new();
        for (key, count) in printed_counts(&log[log_before.len()..]) {
            first.entry(key).or_insert(count);
        }
        (first.len() == counts_at_stop.len()).then_some(first)
    })
    .await;
    for (key, count) in &first_after_restore {
        assert_eq!(
            *count,
            counts_at_stop[key] + 1,
            "key {key}: the count resumes from the savepoint ({counts_at_stop:?} -> {first_after_restore:?})"
        );
    }

    // Cancel.
    client.cancel_job(base, &restored_job).await.unwrap();
    eventually("the job CANCELED", Duration::from_secs(60), || async {
        (job_state(&client, base, &restored_job).await == JobState::Canceled).then_some(())
    })
    .await;
    assert!(matches!(
        client.job_result(base, &restored_job).await.unwrap(),
        JobResult::Completed { ref application_status, .. } if application_status == "CANCELED"
    ));

    // A job that cannot start (its savepoint does not exist): the run fails with Flink's root cause, and the
    // FAILED job's execution result carries the cause.
    let known: Vec<String> = client
        .jobs_overview(base)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.jid)
        .collect();
    let err = client
        .run_jar(base, &jar_id, &run(Some("/nonexistent/savepoint".into())))
        .await
        .unwrap_err();
    let message = match &err {
        FlinkError::Status { status, message, .. } => {
            assert!(*status >= 400, "{err}");
            message.clone()
        }
        other => panic!("expected a Status error, got {other}"),
    };
    assert!(message.contains("Cannot find checkpoint or savepoint"), "{message}");
    assert!(message.chars().count() <= flink_operator::flink::MAX_MESSAGE_CHARS);
    let failed = client
        .jobs_overview(base)
        .await
        .unwrap()
        .into_iter()
        .find(|j| !known.contains(&j.jid))
        .expect("the job that failed to start is listed");
    assert_eq!(failed.state, JobState::Failed);
    match client.job_result(base, &failed.jid).await.unwrap() {
        JobResult::Completed {
            application_status,
            failure_cause: Some(cause),
            ..
        } => {
            assert_eq!(application_status, "FAILED");
            assert!(cause.contains("Could not start the JobMaster"), "{cause}");
            assert!(cause.contains("Cannot find checkpoint or savepoint"), "{cause}");
        }
        other => panic!("a failed job's result: {other:?}"),
    }
    // An entry class that does not exist.
    let mut bad_class = run(None);
    bad_class.entry_class = Some("org.example.DoesNotExist".into());
    let err = client.run_jar(base, &jar_id, &bad_class).await.unwrap_err();
    assert!(err.to_string().contains("org.example.DoesNotExist"), "{err}");

    // Unknown ids answer 404 with Flink's message.
    let err = client.job_details(base, UNKNOWN_JOB).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string().contains(UNKNOWN_JOB) && err.to_string().contains("not found"),
        "{err}"
    );
    let err = client
        .savepoint_status(base, &restored_job, UNKNOWN_JOB)
        .await
        .unwrap_err();
    assert!(
        err.is_not_found() && err.to_string().contains("no savepoint operation"),
        "{err}"
    );

    // Jars: delete, gone from the list, a second delete fails.
    client.delete_jar(base, &jar_id).await.unwrap();
    assert!(!client.list_jars(base).await.unwrap().iter().any(|j| j.id == jar_id));
    let err = client.delete_jar(base, &jar_id).await.unwrap_err();
    assert!(
        err.status().is_some() && err.to_string().contains("does not exist"),
        "{err}"
    );

    eprintln!(
        "Flink {version}: cluster up in {:.1}s, lifecycle in {:.1}s",
        cluster_up.as_secs_f64(),
        (started.elapsed() - cluster_up).as_secs_f64()
    );
}

#[tokio::test]
async fn job_lifecycle_on_flink_1_20() {
    if skip_e2e() {
        return;
    }
    job_lifecycle("1.20.5").await;
}

#[tokio::test]
async fn job_lifecycle_on_flink_2_3() {
    if skip_e2e() {
        return;
    }
    job_lifecycle("2.3.0").await;
}

// ---------------------------------------------------------------------- transport, on local TCP servers

/// What the local server does with each connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answer with these statuses in turn (the last one repeats).
    Statuses(&'static [u16]),
    /// Close the connection without answering.
    Hangup,
    /// Accept and never answer.
    Silent,
}

/// A one-purpose HTTP server on 127.0.0.1 counting the requests (connections) it gets.
async fn local_server(behaviour: Behaviour) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let n = seen.fetch_add(1, Ordering::SeqCst);
            match behaviour {
                Behaviour::Silent => held.push(socket),
                Behaviour::Hangup => drop(socket),
                Behaviour::Statuses(statuses) => {
                    let status = statuses[n.min(statuses.len() - 1)];
                    tokio::spawn(async move {
                        read_request(&mut socket).await;
                        let body = if status == 200 {
                            r#"{"taskmanagers":1,"slots-total":2,"slots-available":2}"#
                        } else {
                            r#"{"errors":["busy"]}"#
                        };
                        let answer = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                             Connection: close\r\n\r\n{body}",
                            body.len()
                        );
                        socket.write_all(answer.as_bytes()).await.unwrap();
                        let _ = socket.shutdown().await;
                    });
                }
            }
        }
    });
    (base, count)
}

/// Reads one request: headers and a Content-Length body.
async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap();
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if data.len() >= end + 4 + length {
                return;
            }
        }
    }
}

fn fast_retries() -> RestClient {
    RestClient::new(Duration::from_secs(5)).with_retry(RetryPolicy {
        attempts: 3,
        first_backoff: Duration::from_millis(10),
    })
}

#[tokio::test]
async fn reads_are_retried_on_5xx_until_they_succeed() {
    let (base, count) = local_server(Behaviour::Statuses(&[503, 502, 200])).await;
    let overview = fast_retries().overview(&base).await.unwrap();
    assert_eq!(overview.taskmanagers, 1);
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn reads_give_up_after_three_attempts_with_the_last_status() {
    let (base, count) = local_server(Behaviour::Statuses(&[500])).await;
    let err = fast_retries().overview(&base).await.unwrap_err();
    assert!(
        matches!(err, FlinkError::Status { status: 500, ref message, .. } if message == "busy"),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("GET {base}/overview answered 500: busy")),
        "{err}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn reads_are_not_retried_on_4xx() {
    let (base, count) = local_server(Behaviour::Statuses(&[404])).await;
    let err = fast_retries().job_details(&base, UNKNOWN_JOB).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn writes_are_never_retried() {
    let (base, count) = local_server(Behaviour::Statuses(&[503])).await;
    let client = fast_retries();
    let err = client
        .trigger_savepoint(&base, UNKNOWN_JOB, &SavepointRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(client.cancel_job(&base, UNKNOWN_JOB).await.is_err());
    assert_eq!(count.load(Ordering::SeqCst), 2);
    let (base, count) = local_server(Behaviour::Hangup).await;
    let err = client
        .run_jar(&base, "x.jar", &JarRunRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(err, FlinkError::Request { .. }), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn reads_are_retried_when_the_connection_breaks() {
    let (base, count) = local_server(Behaviour::Hangup).await;
    let err = fast_retries().jobs_overview(&base).await.unwrap_err();
    assert!(matches!(err, FlinkError::Request { .. }), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn unreachable_port_is_a_request_error_quickly() {
    let port = support::free_port();
    let started = Instant::now();
    // Default retry policy: 3 attempts, 200 ms then 400 ms apart.
    let err = RestClient::new(Duration::from_secs(5))
        .cluster_info(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(matches!(err, FlinkError::Request { .. }), "{err}");
    assert!(err.to_string().contains("Connection refused"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_silent_server_times_out_within_the_bound() {
    let (base, count) = local_server(Behaviour::Silent).await;
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = RestClient::new(timeout).overview(&base).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, FlinkError::Timeout { .. }), "{err}");
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(500),
        "{took:?}"
    );
    // A timeout is not retried: the caller's time budget is spent.
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn malformed_urls_and_ids_are_rejected_before_sending() {
    let client = RestClient::new(Duration::from_secs(1));
    assert!(matches!(
        client.cluster_info("not a url").await,
        Err(FlinkError::InvalidUrl { .. })
    ));
    assert!(matches!(
        client.job_details("http://127.0.0.1:1", "../jars").await,
        Err(FlinkError::InvalidUrl { .. })
    ));
}
