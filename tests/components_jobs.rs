//! Components' scheduled jobs on in-process nodes (`app::testing::TestNode`): an interval job
//! runs again and again, a run never overlaps the previous one, failures, panics and timeouts
//! are counted while the job keeps its schedule, aligned jobs run at wall-clock multiples of
//! their interval, a once-per-cluster job runs on the lowest-id linked node (and on each node
//! that has no link), and a stopping node lets a running job finish until the drain deadline.
//! Every wait is bounded; counters come from `/status`.

use microlith::app::testing::TestNode;
use microlith::app::{Component, Ctx, Doc, Error, Precondition, Schedule, Scope, Setup};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "jobs-test-cluster-secret-0123456789";

/// What the jobs saw, for the test to read.
#[derive(Default)]
struct Probe {
    /// Runs of `slow` in progress now, and the most ever at once.
    concurrent: AtomicU64,
    max_concurrent: AtomicU64,
    /// Wall-clock start (Unix ms) of each run of `aligned` and `aligned_half`.
    aligned: Mutex<Vec<u64>>,
    aligned_half: Mutex<Vec<u64>>,
    /// Runs of `drain_short` started and finished; of `drain_long` started and finished.
    short_started: AtomicU64,
    short_finished: AtomicU64,
    long_started: AtomicU64,
    long_finished: AtomicU64,
}

struct Chores {
    probe: Arc<Probe>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    jobs: Vec<String>,
    interval_ms: u64,
}

fn doc(v: Value) -> Doc {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Adds one to `Counter/ticks` (made on the first run).
async fn count(ctx: Ctx) -> Result<(), Error> {
    let t = ctx.table("Counter")?;
    match t.add_to("ticks", doc(json!({ "n": 1 }))).await {
        Err(e) if e.status == 404 => {
            t.put_if("ticks", doc(json!({ "n": 1 })), Precondition::IfAbsent)
                .await?;
            Ok(())
        }
        r => r.map(|_| ()),
    }
}

async fn fail(_ctx: Ctx) -> Result<(), Error> {
    Err(Error::new(503, "the origin is down"))
}

async fn boom(_ctx: Ctx) -> Result<(), Error> {
    panic!("a bug in a job");
}

async fn sleep_long(_ctx: Ctx) -> Result<(), Error> {
    glommio::timer::sleep(Duration::from_secs(60)).await;
    Ok(())
}

async fn sweep(_ctx: Ctx) -> Result<(), Error> {
    Ok(())
}

impl Chores {
    /// Declares job `name` on interval `iv`.
    fn declare(&self, s: &mut Setup<'_>, name: &str, iv: Duration) -> Result<(), String> {
        let every = Schedule::every(iv);
        let node = Scope::OncePerNode;
        let p = self.probe.clone();
        match name {
            "count" => s.job(name, every, node, count),
            "fail" => s.job(name, every, node, fail),
            "boom" => s.job(name, every, node, boom),
            "cut" => s.job(name, every.timeout(iv / 2), node, sleep_long),
            "sweep" => s.job(name, every, Scope::OncePerCluster, sweep),
            "slow" => s.job(name, every.timeout(iv * 20), node, move |_| {
                slow(p.clone(), iv)
            }),
            "aligned" => s.job(name, Schedule::aligned(iv), node, move |_| {
                stamp(p.clone(), false)
            }),
            "aligned_half" => s.job(
                name,
                Schedule::aligned(iv).offset(iv / 2),
                node,
                move |_| stamp(p.clone(), true),
            ),
            "drain_short" => s.job(
                name,
                every.timeout(Duration::from_secs(10)),
                node,
                move |_| drain_short(p.clone()),
            ),
            "drain_long" => s.job(
                name,
                every.timeout(Duration::from_secs(120)),
                node,
                move |_| drain_long(p.clone()),
            ),
            other => Err(format!("no job {other:?} in this test")),
        }
    }
}

/// Runs for four intervals, counting the runs in progress at once.
async fn slow(p: Arc<Probe>, iv: Duration) -> Result<(), Error> {
    let now = p.concurrent.fetch_add(1, Ordering::SeqCst) + 1;
    p.max_concurrent.fetch_max(now, Ordering::SeqCst);
    glommio::timer::sleep(iv * 4).await;
    p.concurrent.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

async fn stamp(p: Arc<Probe>, half: bool) -> Result<(), Error> {
    let list = if half { &p.aligned_half } else { &p.aligned };
    list.lock().unwrap().push(now_ms());
    Ok(())
}

async fn drain_short(p: Arc<Probe>) -> Result<(), Error> {
    p.short_started.fetch_add(1, Ordering::SeqCst);
    glommio::timer::sleep(Duration::from_millis(1500)).await;
    p.short_finished.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

async fn drain_long(p: Arc<Probe>) -> Result<(), Error> {
    p.long_started.fetch_add(1, Ordering::SeqCst);
    glommio::timer::sleep(Duration::from_secs(60)).await;
    p.long_finished.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

impl Component for Chores {
    fn name(&self) -> &'static str {
        "chores"
    }

    fn setup(&self, s: &mut Setup<'_>) -> Result<(), String> {
        let config: Config = s.config()?;
        s.table("Counter", "id", &[]);
        let iv = Duration::from_millis(config.interval_ms);
        for name in &config.jobs {
            self.declare(s, name, iv)?;
        }
        Ok(())
    }
}

/// A node running `jobs` every `interval_ms`, with `extra` TOML; and what its jobs saw.
fn node_with(jobs: &[&str], interval_ms: u64, extra: &str) -> (TestNode, Arc<Probe>) {
    let probe = Arc::new(Probe::default());
    let chores = Arc::new(Chores {
        probe: probe.clone(),
    });
    let toml = format!(
        "[components.chores]\njobs = {jobs:?}\ninterval_ms = {interval_ms}\n[shards]\ncount = 1\n{extra}"
    );
    let node = TestNode::start(vec![chores], &toml).expect("node starts");
    (node, probe)
}

/// A clustered node with id `id` pulling from `peers`.
fn clustered(id: u16, peers: &[String], jobs: &[&str], interval_ms: u64) -> TestNode {
    let peers: String = peers
        .iter()
        .map(|a| format!("[[cluster.peers]]\naddr = \"{a}\"\n"))
        .collect();
    let extra = format!(
        "[cluster]\nnode_id = {id}\nsecret = \"{SECRET}\"\nreconnect_max_ms = 300\n{peers}"
    );
    node_with(jobs, interval_ms, &extra).0
}

fn get(url: &str) -> (u16, Value) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let resp = match agent.get(url).call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The `/status` counters of job `name`.
fn job(n: &TestNode, name: &str) -> Value {
    let (_, status) = get(&n.url("/status"));
    status["components"]["chores"]["jobs"][name].clone()
}

fn counter(n: &TestNode, name: &str, field: &str) -> u64 {
    job(n, name)[field].as_u64().unwrap_or(0)
}

/// Waits (at most 30 s) until `done` says yes; panics with `what` otherwise.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < until, "waited 30 s for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The node ids node `n` has a live replication link with, by its `/status`.
fn linked(n: &TestNode) -> Vec<u64> {
    let (_, status) = get(&n.url("/status"));
    let mut ids: Vec<u64> = status["cluster"]["peers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter(|p| {
            let inbound = p["inbound"]["state"].as_str().unwrap_or("");
            matches!(inbound, "connected" | "repairing") || p["outbound"]["state"] == "connected"
        })
        .filter_map(|p| p["node_id"].as_u64())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[test]
fn an_every_interval_job_runs_again_and_again() {
    let (n, _) = node_with(&["count"], 100, "");
    wait_until("the counter to reach 4", || {
        get(&n.url("/Counter/ticks")).1["n"].as_u64().unwrap_or(0) >= 4
    });
    let j = job(&n, "count");
    assert!(j["runs"].as_u64().unwrap() >= 4, "{j}");
    assert_eq!(j["failures"], 0, "{j}");
    assert_eq!(j["schedule"], "every 100 ms", "{j}");
    assert_eq!(j["scope"], "node", "{j}");
    assert!(j["last_run_ms"].as_u64().unwrap() > 0, "{j}");
}

#[test]
fn a_run_longer_than_its_interval_is_skipped_not_overlapped() {
    let (n, probe) = node_with(&["slow"], 50, "");
    wait_until("3 runs", || counter(&n, "slow", "runs") >= 3);
    assert_eq!(
        probe.max_concurrent.load(Ordering::SeqCst),
        1,
        "runs overlapped"
    );
    wait_until("6 skipped ticks", || counter(&n, "slow", "skipped") >= 6);
    assert_eq!(
        probe.max_concurrent.load(Ordering::SeqCst),
        1,
        "runs overlapped"
    );
    let j = job(&n, "slow");
    assert_eq!(j["timeouts"], 0, "{j}");
}

#[test]
fn a_failing_and_a_panicking_job_keep_their_schedule_and_are_counted() {
    let (n, _) = node_with(&["fail", "boom", "count"], 100, "");
    wait_until("3 failures and 3 panics", || {
        counter(&n, "fail", "failures") >= 3 && counter(&n, "boom", "panics") >= 3
    });
    let (f, b) = (job(&n, "fail"), job(&n, "boom"));
    assert!(f["runs"].as_u64().unwrap() >= 3, "{f}");
    assert!(
        f["last_error"].as_str().unwrap().contains("origin is down"),
        "{f}"
    );
    assert_eq!(f["panics"], 0, "{f}");
    assert!(
        b["last_error"].as_str().unwrap().contains("a bug in a job"),
        "{b}"
    );
    assert_eq!(b["failures"], 0, "{b}");
    // The shard runs on: another job on it and the node's own paths still work.
    let before = counter(&n, "count", "runs");
    wait_until("the other job to run on", || {
        counter(&n, "count", "runs") > before
    });
    assert_eq!(get(&n.url("/health")).0, 200);
}

#[test]
fn a_run_past_its_timeout_is_cut_and_the_job_runs_again() {
    let (n, _) = node_with(&["cut"], 200, "");
    wait_until("3 timeouts", || counter(&n, "cut", "timeouts") >= 3);
    let j = job(&n, "cut");
    assert!(j["runs"].as_u64().unwrap() >= 3, "{j}");
    assert!(j["last_error"].as_str().unwrap().contains("timeout"), "{j}");
}

#[test]
fn aligned_jobs_run_at_wall_clock_multiples_of_their_interval() {
    let (n, probe) = node_with(&["aligned", "aligned_half"], 1000, "");
    wait_until("3 runs of each aligned job", || {
        probe.aligned.lock().unwrap().len() >= 3 && probe.aligned_half.lock().unwrap().len() >= 3
    });
    // A run starts at its slot or a little after it (never before): less than 400 ms late
    // here, however loaded the machine. Two jobs that ran one interval apart from the
    // node's start would share one phase, and could not pass both checks.
    let on_the_second = probe.aligned.lock().unwrap().clone();
    assert!(
        on_the_second.iter().all(|ms| ms % 1000 < 400),
        "{on_the_second:?}"
    );
    let on_the_half = probe.aligned_half.lock().unwrap().clone();
    assert!(
        on_the_half
            .iter()
            .all(|ms| (500..900).contains(&(ms % 1000))),
        "{on_the_half:?}"
    );
    assert_eq!(
        job(&n, "aligned_half")["schedule"],
        "aligned 1000 ms + 500 ms"
    );
}

#[test]
fn a_cluster_job_runs_only_on_the_lowest_id_linked_node() {
    let n1 = clustered(1, &[], &["sweep"], 100);
    let a1 = n1.peer.expect("node 1 listens for peers").to_string();
    let n2 = clustered(2, std::slice::from_ref(&a1), &["sweep"], 100);
    let a2 = n2.peer.expect("node 2 listens for peers").to_string();
    let n3 = clustered(3, &[a1, a2], &["sweep"], 100);
    wait_until("every node to be linked with the other two", || {
        linked(&n1) == [2, 3] && linked(&n2) == [1, 3] && linked(&n3) == [1, 2]
    });
    let runs = |n: &TestNode| counter(n, "sweep", "runs");
    let elsewhere = |n: &TestNode| counter(n, "sweep", "elsewhere");
    let before = [runs(&n1), runs(&n2), runs(&n3)];
    let left = [elsewhere(&n2), elsewhere(&n3)];
    wait_until("node 1 to run it 5 more times", || {
        runs(&n1) >= before[0] + 5
    });
    assert_eq!([runs(&n2), runs(&n3)], [before[1], before[2]]);
    assert!(elsewhere(&n2) > left[0] && elsewhere(&n3) > left[1]);
    assert_eq!(elsewhere(&n1), 0);
    assert_eq!(job(&n1, "sweep")["scope"], "cluster");
}

#[test]
fn a_cluster_job_runs_on_each_node_when_their_link_cannot_form() {
    // A peer address nobody listens on.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_addr = down.local_addr().unwrap().to_string();
    drop(down);
    let n1 = clustered(1, &[], &["sweep"], 100);
    let n2 = clustered(2, &[down_addr], &["sweep"], 100);
    wait_until("both nodes to run it 3 times", || {
        counter(&n1, "sweep", "runs") >= 3 && counter(&n2, "sweep", "runs") >= 3
    });
    assert_eq!(linked(&n2), Vec::<u64>::new());
    assert_eq!(counter(&n2, "sweep", "elsewhere"), 0);
}

#[test]
fn a_cluster_job_moves_to_the_next_node_when_the_lowest_stops() {
    let n1 = clustered(1, &[], &["sweep"], 100);
    let a1 = n1.peer.expect("node 1 listens for peers").to_string();
    let n2 = clustered(2, &[a1], &["sweep"], 100);
    wait_until("the nodes to be linked", || linked(&n2) == [1]);
    let left = counter(&n2, "sweep", "elsewhere");
    wait_until("node 2 to leave ticks to node 1", || {
        counter(&n2, "sweep", "elsewhere") > left
    });
    n1.stop().expect("node 1 stops");
    let before = counter(&n2, "sweep", "runs");
    wait_until("node 2 to run it 3 times", || {
        counter(&n2, "sweep", "runs") >= before + 3
    });
}

#[test]
fn a_stopping_node_lets_a_running_job_finish_until_the_drain_deadline() {
    let (n, probe) = node_with(&["drain_short", "drain_long"], 100, "");
    wait_until("both jobs to be running", || {
        probe.short_started.load(Ordering::SeqCst) > probe.short_finished.load(Ordering::SeqCst)
            && probe.long_started.load(Ordering::SeqCst) > 0
    });
    // The long run (60 s) is dropped at the drain deadline, so the stop ends well before it.
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || done_tx.send(n.stop()));
    let stopped = done
        .recv_timeout(Duration::from_secs(40))
        .expect("the node stops before the long run would end");
    stopped.expect("the node stops cleanly");
    assert_eq!(
        probe.short_finished.load(Ordering::SeqCst),
        probe.short_started.load(Ordering::SeqCst),
        "the short run in progress at the stop finished"
    );
    assert_eq!(probe.long_finished.load(Ordering::SeqCst), 0);
}

#[test]
fn a_job_with_a_bad_name_or_schedule_is_refused_at_start() {
    struct Bad(&'static str, Schedule);
    impl Component for Bad {
        fn name(&self) -> &'static str {
            "bad"
        }
        fn setup(&self, s: &mut Setup<'_>) -> Result<(), String> {
            s.job(self.0, self.1, Scope::OncePerNode, sweep)
        }
    }
    let start =
        |name, schedule| TestNode::start(vec![Arc::new(Bad(name, schedule))], "[components.bad]\n");
    let e = start("no spaces", Schedule::every(Duration::from_secs(1)))
        .err()
        .unwrap();
    assert!(e.contains("job name"), "{e}");
    let e = start("tiny", Schedule::every(Duration::from_millis(1)))
        .err()
        .unwrap();
    assert!(e.contains("tiny") && e.contains("interval"), "{e}");
}
