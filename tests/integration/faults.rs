//! Storage faults between lakewriter and S3 (LocalStack): a small proxy in front of LocalStack
//! that answers 500/503 SlowDown, drops connections, delays requests, or forwards a request and
//! then loses the response, on a seeded choice of requests. lakewriter retries where that is safe; when it
//! gives up it exits non-zero with the table unchanged, and a rerun converges. A commit whose
//! response is lost is recognised as landed, never committed twice.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::scenarios::day_input;
use crate::support::{Backend, Lake, Run, Status, env_number, s3_endpoint, serve_http};

/// What the proxy does to one request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Pass,
    /// Answer with this status and an S3 error body, without forwarding.
    Status(u16),
    /// Close the connection without forwarding or answering.
    Drop,
    /// Forward the request (it takes effect), then close the connection unanswered.
    LoseResponse,
    /// Forward the request after a pause.
    Delay,
}

/// Which requests get which fault.
#[derive(Default)]
struct Plan {
    /// Seeded fraction (per mille) of all requests that get a fault: 500, 503, a dropped
    /// connection or a delay, a quarter each.
    rate: u64,
    rng: u64,
    /// Lose the response of the next commit (PUT of a `_delta_log/<version>.json`).
    lose_next_commit_response: bool,
    /// Requests seen, with the fault each got.
    log: Vec<(String, Fault)>,
}

impl Plan {
    fn decide(&mut self, method: &str, path: &str) -> Fault {
        let is_commit = method == "PUT" && path.contains("/_delta_log/") && path.ends_with(".json");
        let fault = if is_commit && self.lose_next_commit_response {
            self.lose_next_commit_response = false;
            Fault::LoseResponse
        } else if self.rate > 0 {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            match self.rng % 1000 {
                n if n < self.rate / 4 => Fault::Status(500),
                n if n < self.rate / 2 => Fault::Status(503),
                n if n < 3 * self.rate / 4 => Fault::Drop,
                n if n < self.rate => Fault::Delay,
                _ => Fault::Pass,
            }
        } else {
            Fault::Pass
        };
        self.log.push((format!("{method} {path}"), fault));
        fault
    }
}

/// A fault-injecting HTTP proxy in front of LocalStack, on a loopback port of its own.
struct FaultProxy {
    url: String,
    plan: Arc<Mutex<Plan>>,
}

impl FaultProxy {
    async fn start() -> Self {
        let plan = Arc::new(Mutex::new(Plan::default()));
        let upstream = s3_endpoint();
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let shared = plan.clone();
        // A dropped connection ends in serve_http with an error: that is the point.
        let addr = serve_http(move |request| {
            handle(request, shared.clone(), client.clone(), upstream.clone())
        })
        .await;
        Self {
            url: format!("http://{addr}"),
            plan,
        }
    }

    fn set(&self, change: impl FnOnce(&mut Plan)) {
        change(&mut self.plan.lock().unwrap());
    }

    fn faults(&self) -> Vec<(String, Fault)> {
        self.plan
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|(_, f)| *f != Fault::Pass)
            .cloned()
            .collect()
    }
}

#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}
impl std::error::Error for Dropped {}

async fn handle(
    request: Request<Incoming>,
    plan: Arc<Mutex<Plan>>,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: String,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let fault = plan
        .lock()
        .unwrap()
        .decide(request.method().as_str(), request.uri().path());
    match fault {
        Fault::Drop => return Err(Dropped),
        Fault::Status(code) => {
            let s3_code = if code == 503 {
                "SlowDown"
            } else {
                "InternalError"
            };
            let body = format!("<Error><Code>{s3_code}</Code><Message>injected</Message></Error>");
            return Ok(Response::builder()
                .status(StatusCode::from_u16(code).unwrap())
                .header("content-type", "application/xml")
                .body(Full::new(Bytes::from(body)))
                .unwrap());
        }
        Fault::Delay => tokio::time::sleep(std::time::Duration::from_millis(300)).await,
        Fault::Pass | Fault::LoseResponse => {}
    }
    let (mut parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    parts.uri = format!("{upstream}{path}").parse().unwrap();
    let response = client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|_| Dropped)?;
    if fault == Fault::LoseResponse {
        return Err(Dropped);
    }
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// Writes day `day` of July 2024 through the proxy.
fn write_through(lake: &Lake, proxy: &FaultProxy, day: u32, variant: u32) -> Run {
    write_day_through(lake, proxy, &format!("2024-07-{day:02}"), day * 10, variant)
}

/// Writes `date`'s input (see `day_input`) through the proxy.
fn write_day_through(
    lake: &Lake,
    proxy: &FaultProxy,
    date: &str,
    first_id: u32,
    variant: u32,
) -> Run {
    let input = day_input(lake, date, first_id, variant);
    let output = lake
        .json_command(
            "write",
            &[
                "--input",
                &input,
                "--date",
                date,
                "--key",
                "order_id",
                // Short retries, so that a run gives up within seconds when faults persist.
                "--storage-option",
                "max_retries=3",
                "--storage-option",
                "retry_timeout=10s",
                "--storage-option",
                "backoff_config.init_backoff=50ms",
            ],
        )
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .output()
        .unwrap();
    Run::of(output)
}

fn quantities(rows: &crate::support::Rows, date: &str) -> Vec<i64> {
    rows.filter("date", date)
        .iter()
        .map(|r| r["quantity"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_response_is_lost_is_not_committed_twice() {
    let proxy = FaultProxy::start().await;
    let lake = Lake::new(Backend::S3);
    write_through(&lake, &proxy, 1, 0).expect(Status::Committed);

    proxy.set(|plan| plan.lose_next_commit_response = true);
    let run = write_through(&lake, &proxy, 1, 1);
    assert!(
        proxy
            .faults()
            .iter()
            .any(|(_, f)| *f == Fault::LoseResponse),
        "the proxy lost a commit's response: {:?}",
        proxy.faults()
    );
    assert_eq!(
        run.code, 0,
        "lakewriter reads the log back and finds its commit: {}",
        run.stderr
    );
    assert_eq!(run.expect(Status::Committed).version, Some(1));
    // Not a retried PUT that simply went through: lakewriter read the log back and found it.
    assert!(
        run.stderr
            .contains("the commit landed although its response was lost"),
        "{}",
        run.stderr
    );
    assert_eq!(lake.versions().await, vec![0, 1], "exactly one commit");
    assert_eq!(quantities(&lake.rows().await, "2024-07-01"), vec![1, 1, 1]);

    // The rerun recognises its own commit.
    write_through(&lake, &proxy, 1, 1).expect(Status::Skipped);
    assert_eq!(lake.versions().await, vec![0, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_random_faults_runs_commit_or_fail_cleanly_and_reruns_converge() {
    let proxy = FaultProxy::start().await;
    let lake = Lake::new(Backend::S3);
    let seed: u64 = env_number("LAKEWRITER_FAULT_SEED", 0xFA17);
    let runs: u32 = env_number("LAKEWRITER_FAULT_RUNS", 12);
    let mut expected: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    let (mut failed, mut commits) = (0, 0);
    for i in 0..runs {
        let context = format!("seed {seed} (LAKEWRITER_FAULT_SEED), run {i}");
        let (day, variant) = (1 + i % 4, 1 + i / 4);
        let date = format!("2024-07-{day:02}");
        // Heavy faults: a quarter of all requests fail.
        proxy.set(|plan| {
            plan.rate = 250;
            plan.rng = seed.wrapping_add(u64::from(i)) | 1;
        });
        let before = lake.versions().await;
        let run = write_through(&lake, &proxy, day, variant);
        if run.code == 0 {
            let status = run.report().map(|r| r.status);
            assert_eq!(status, Some(Status::Committed), "{context}");
            commits += 1;
            expected.insert(date.clone(), vec![i64::from(variant); 3]);
        } else {
            failed += 1;
            let after = lake.versions().await;
            // Failed: nothing changed, or (lost response before giving up) the commit landed.
            assert!(
                after.len() <= before.len() + 1,
                "{context}: more than one commit"
            );
        }
        if !lake.versions().await.is_empty() {
            // The day holds what it held before (nothing, if the model says so) or the new
            // rows: never a mix, and never emptied by a commit of the removes alone.
            let held = quantities(&lake.rows().await, &date);
            let old = expected.get(&date).cloned().unwrap_or_default();
            assert!(
                held == old || held == vec![i64::from(variant); 3],
                "{context}: {date} holds {held:?}, neither the old {old:?} nor the new rows"
            );
        }
        // The faults stop; the rerun converges.
        proxy.set(|plan| plan.rate = 0);
        let rerun = write_through(&lake, &proxy, day, variant);
        assert_eq!(
            rerun.code, 0,
            "{context}: rerun without faults failed: {}",
            rerun.stderr
        );
        expected.insert(date.clone(), vec![i64::from(variant); 3]);
        assert_eq!(
            quantities(&lake.rows().await, &date),
            expected[&date],
            "{context}: converged"
        );
    }
    // Faults on every request: the run gives up with a non-zero exit and changes nothing.
    let versions = lake.versions().await;
    let rows = lake.rows().await;
    proxy.set(|plan| plan.rate = 1000);
    assert_ne!(
        write_through(&lake, &proxy, 1, 9).code,
        0,
        "seed {seed}: a run against a store that always fails must fail"
    );
    assert_eq!(lake.versions().await, versions, "seed {seed}: no commit");
    assert_eq!(lake.rows().await, rows, "seed {seed}: rows unchanged");
    proxy.set(|plan| plan.rate = 0);

    let injected = proxy.faults().len();
    eprintln!(
        "seed {seed}: {runs} runs under faults, {commits} committed, {failed} failed; {injected} faults injected"
    );
    assert!(injected > 0, "the proxy injected no fault");
    let rows = lake.rows_agreed_by_readers().await;
    for (date, quantities_expected) in &expected {
        assert_eq!(
            &quantities(&rows, date),
            quantities_expected,
            "seed {seed}: {date}"
        );
    }
}

/// A table of `commits` commits of `days_per_commit` days each, from 2020-01-01, written
/// directly (not through the proxy).
fn table_of(commits: u32, days_per_commit: u32) -> Lake {
    let lake = Lake::new(Backend::S3);
    let first = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    for commit in 0..commits {
        let days: Vec<_> = (0..days_per_commit)
            .map(|d| first + chrono::Days::new(u64::from(commit * days_per_commit + d)))
            .collect();
        let rows: Vec<String> = days
            .iter()
            .enumerate()
            .map(|(i, day)| format!("{i},c,s,1,1.0,{day}T00:00:00Z,{day}"))
            .collect();
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        let input = lake.input(
            &format!("commit-{commit}.csv"),
            &crate::scenarios::csv(&rows),
        );
        let (from, to) = (days[0].to_string(), days[days.len() - 1].to_string());
        let run = lake.write(&["--input", &input, "--from", &from, "--to", &to]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    lake
}

/// The requests the proxy has seen since the last call, by kind (`GET _delta_log`,
/// `PUT data`, ...).
fn requests_by_kind(proxy: &FaultProxy) -> std::collections::BTreeMap<String, usize> {
    let log = std::mem::take(&mut proxy.plan.lock().unwrap().log);
    let mut counts = std::collections::BTreeMap::new();
    for (request, _) in log {
        let (method, path) = request.split_once(' ').unwrap();
        let place = if path.contains("/_delta_log") {
            "_delta_log"
        } else if path.contains("/inputs/") {
            "inputs"
        } else if method == "GET" && !path.contains("=") {
            "listing"
        } else {
            "data"
        };
        *counts.entry(format!("{method} {place}")).or_insert(0) += 1;
    }
    counts
}

/// The requests one run makes follow its scope, not the table: a table of 200 days and one
/// of 20, with the same number of commits (so the same log segment after the last checkpoint),
/// see exactly the same requests for replacing a day and for an identical rerun.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_requests_follow_the_scope_not_the_table() {
    let proxy = FaultProxy::start().await;
    let small = table_of(20, 1);
    let large = table_of(20, 10);
    // Day 1 of both tables with new content (a replacement), then the same again (a skip).
    for (what, status) in [
        ("replacing a day", Status::Committed),
        ("an identical rerun", Status::Skipped),
    ] {
        let mut seen = Vec::new();
        for lake in [&small, &large] {
            requests_by_kind(&proxy);
            let run = write_day_through(lake, &proxy, "2020-01-01", 0, 7);
            let report = run.report().map(|r| r.status);
            assert_eq!(
                (run.code, report),
                (0, Some(status)),
                "{what}: {}",
                run.stderr
            );
            seen.push(requests_by_kind(&proxy));
        }
        println!("{what}: 20 days {:?}; 200 days {:?}", seen[0], seen[1]);
        assert_eq!(seen[0], seen[1], "{what}");
    }
}
