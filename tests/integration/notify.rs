//! Exactly-once notifications: a local receiver counts requests per idempotency key through
//! commits, reruns, crashes between commit and delivery, failing receivers and racing writers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::Value;

use crate::scenarios::csv;
use crate::support::{Lake, Notification, Report, Run, Status, serve_http};

/// A webhook receiver on a loopback port that records every request and can refuse some.
struct Receiver {
    url: String,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Every request: its Idempotency-Key and body, accepted or not.
    requests: Vec<(String, Value)>,
    /// Answer 503 to this many requests still.
    refuse: usize,
}

impl Receiver {
    async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let addr = serve_http(move |request| receive(request, shared.clone())).await;
        Self {
            url: format!("http://{addr}/hooks/commits?token=secret-token"),
            state,
        }
    }

    fn refuse(&self, requests: usize) {
        self.state.lock().unwrap().refuse = requests;
    }

    fn requests(&self) -> Vec<(String, Value)> {
        self.state.lock().unwrap().requests.clone()
    }

    /// What a receiver that honours the key acts on: one event per key. Asserts that every
    /// request with the same key carried the same event.
    fn acted_on(&self) -> BTreeMap<String, Value> {
        let mut events = BTreeMap::new();
        for (key, body) in self.requests() {
            let first = events.entry(key.clone()).or_insert_with(|| body.clone());
            assert_eq!(*first, body, "two different events under key {key}");
        }
        events
    }
}

async fn receive(
    request: Request<hyper::body::Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let key = request
        .headers()
        .get("Idempotency-Key")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = request.into_body().collect().await?.to_bytes();
    let mut state = state.lock().unwrap();
    state
        .requests
        .push((key, serde_json::from_slice(&body).unwrap_or(Value::Null)));
    let status = if state.refuse > 0 {
        state.refuse -= 1;
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok(Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .unwrap())
}

fn day_rows(quantity: u32) -> String {
    let rows: Vec<String> = (1..=3)
        .map(|id| format!("{id},c,s,{quantity},1.0,2024-01-01T00:00:00Z,2024-01-01"))
        .collect();
    csv(&rows.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `lakewriter write` of `input` for 2024-01-01 in `mode`, announcing to `receiver`, with
/// `env` set.
fn write_in(
    mode: &str,
    lake: &Lake,
    input: &str,
    receiver: &Receiver,
    env: &[(&str, &str)],
) -> Run {
    let args = [
        "--input",
        input,
        "--date",
        "2024-01-01",
        "--key",
        "order_id",
        "--run-id",
        "daily",
        "--mode",
        mode,
    ];
    let mut command = lake.json_command("write", &args);
    // Debug logging, so that every delivery, failed or not, would show a leaked URL.
    command
        .env("LAKEWRITER_NOTIFY_URL", &receiver.url)
        .env("RUST_LOG", "debug");
    for (name, value) in env {
        command.env(name, value);
    }
    let run = Run::of(command.output().unwrap());
    for (what, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.contains("secret-token"),
            "the webhook URL's token leaked into {what}: {text}"
        );
    }
    run
}

fn write(lake: &Lake, input: &str, receiver: &Receiver, env: &[(&str, &str)]) -> Run {
    write_in("replace", lake, input, receiver, env)
}

// On S3 the delivery markers live in the bucket, next to the table.
crate::support::on_backends!([local: Local, s3: S3], [announced_once_and_not_again]);

/// Each commit is announced once, and a rerun sends nothing.
async fn announced_once_and_not_again(lake: &Lake) {
    let receiver = Receiver::start().await;
    let input = lake.input("day.csv", &day_rows(1));
    let first = write(lake, &input, &receiver, &[]);
    let report = first.expect(Status::Committed);
    assert_eq!(report.notification, Some(Notification::Delivered));
    let acted = receiver.acted_on();
    assert_eq!(acted.len(), 1);
    let event = acted.values().next().unwrap();
    assert_eq!(event["version"], 0);
    assert_eq!(event["run_id"], "daily");
    assert_eq!(event["rows"], serde_json::json!({"2024-01-01": 3}));
    assert_eq!(event["fingerprint"], report.fingerprint);

    let again = write(lake, &input, &receiver, &[]);
    assert_eq!(
        again.expect(Status::Skipped).notification,
        Some(Notification::AlreadyDelivered)
    );
    assert_eq!(
        receiver.requests().len(),
        1,
        "a skipped rerun sends nothing"
    );

    let corrected = lake.input("day.csv", &day_rows(2));
    write(lake, &corrected, &receiver, &[]).expect(Status::Committed);
    let versions: Vec<Value> = receiver
        .acted_on()
        .values()
        .map(|event| event["version"].clone())
        .collect();
    assert_eq!(versions.len(), 2, "one event per commit");
    assert!(versions.contains(&Value::from(1)), "{versions:?}");
    assert_eq!(receiver.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_commit_and_delivery_is_announced_by_the_rerun() {
    crashed_before_delivery_then_rerun("replace").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_crashed_before_delivery_is_announced_by_its_rerun() {
    // A merge rerun is skipped by its txn record and finds its commit in the commit metadata.
    crashed_before_delivery_then_rerun("merge").await;
}

async fn crashed_before_delivery_then_rerun(mode: &str) {
    let receiver = Receiver::start().await;
    let lake = Lake::local();
    let input = lake.input("day.csv", &day_rows(1));
    let crash = [("LAKEWRITER_FAIL_AT", "after-commit")];
    let crashed = write_in(mode, &lake, &input, &receiver, &crash);
    crashed.assert_aborted_at("after-commit");
    let versions = lake.versions().await;
    assert!(!versions.is_empty(), "the commit landed");
    assert!(
        receiver.requests().is_empty(),
        "nothing was sent before the crash"
    );

    let rerun = write_in(mode, &lake, &input, &receiver, &[]);
    assert_eq!(
        rerun.expect(Status::Skipped).notification,
        Some(Notification::Delivered)
    );
    let acted = receiver.acted_on();
    assert_eq!(acted.len(), 1);
    let event = acted.values().next().unwrap();
    assert_eq!(event["version"], *versions.last().unwrap());
    assert_eq!(event["rows"], serde_json::json!({"2024-01-01": 3}));

    let once_more = write_in(mode, &lake, &input, &receiver, &[]);
    assert_eq!(
        once_more.expect(Status::Skipped).notification,
        Some(Notification::AlreadyDelivered)
    );
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_leaves_the_commit_standing_and_the_notification_pending() {
    let receiver = Receiver::start().await;
    receiver.refuse(usize::MAX);
    let lake = Lake::local();
    let input = lake.input("day.csv", &day_rows(1));
    let first = write(&lake, &input, &receiver, &[]);
    assert_eq!(first.code, 6, "pending: {}", first.stderr);
    let report = first.report().expect("a committed run reports");
    assert_eq!(report.status, Status::Committed);
    assert_eq!(report.notification, Some(Notification::Pending));
    assert_eq!(lake.versions().await, vec![0], "the commit stands");
    let tries = receiver.requests();
    assert_eq!(tries.len(), 5, "5 tries, as documented: {tries:?}");
    assert_eq!(
        receiver.acted_on().len(),
        1,
        "every retry carries the same key"
    );

    receiver.refuse(0);
    let rerun = write(&lake, &input, &receiver, &[]);
    assert_eq!(
        rerun.expect(Status::Skipped).notification,
        Some(Notification::Delivered)
    );
    assert_eq!(receiver.acted_on().len(), 1);
    assert_eq!(receiver.requests().len(), tries.len() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_identical_writers_announce_one_commit() {
    let receiver = Receiver::start().await;
    let lake = Lake::local();
    let input = lake.input("day.csv", &day_rows(1));
    let args = [
        "--input",
        &input,
        "--date",
        "2024-01-01",
        "--key",
        "order_id",
        "--notify-url",
        &receiver.url,
    ]
    .map(str::to_string)
    .to_vec();
    let runs = lake.race_writes(&vec![args; 4]);
    let committed: Vec<Report> = runs
        .iter()
        .map(Run::parse::<Report>)
        .filter(|r| r.status == Status::Committed)
        .collect();
    assert_eq!(committed.len(), 1, "{runs:?}");
    let acted = receiver.acted_on();
    assert_eq!(acted.len(), 1, "one commit, one event acted on: {acted:?}");
    assert_eq!(
        acted.values().next().unwrap()["version"].as_u64(),
        committed[0].version
    );
}

#[tokio::test]
async fn a_notify_command_gets_the_event_and_its_key() {
    let lake = Lake::local();
    let input = lake.input("day.csv", &day_rows(1));
    let inbox = tempfile::tempdir().unwrap();
    let command = format!(
        "cat > '{}'/\"$LAKEWRITER_IDEMPOTENCY_KEY\".json",
        inbox.path().display()
    );
    let args = [
        "--input",
        &input,
        "--date",
        "2024-01-01",
        "--notify-command",
        &command,
    ];
    assert_eq!(
        lake.write(&args).expect(Status::Committed).notification,
        Some(Notification::Delivered)
    );
    assert_eq!(
        lake.write(&args).expect(Status::Skipped).notification,
        Some(Notification::AlreadyDelivered)
    );
    let received: Vec<_> = std::fs::read_dir(inbox.path()).unwrap().collect();
    assert_eq!(received.len(), 1);
    let path = received[0].as_ref().unwrap().path();
    let event: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        path.file_stem().unwrap().to_str().unwrap(),
        event["idempotency_key"].as_str().unwrap()
    );
    assert_eq!(event["version"], 0);
}
