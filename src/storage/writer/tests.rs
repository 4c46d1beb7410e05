//! The writer's behaviour, proved on a real writer thread over a shard database in a temp dir:
//! messages queued before the thread starts form one group.

use super::*;
use crate::storage::changelog::{Change, ChangeOp};

const PARTITIONS: u32 = 16;

fn table() -> Arc<TableDef> {
    Arc::new(TableDef {
        name: "T".into(),
        primary_key: "id".into(),
        indexes: vec!["category".into()],
        attributes: Default::default(),
    })
}

fn settings() -> WriterSettings {
    WriterSettings {
        node_id: 1,
        clock: crate::storage::clock::Clock::system(),
        durability: Durability::Buffered,
        changelog_retention: Duration::from_secs(3600),
        changelog_max_entries: 1_000_000,
        spin: Duration::ZERO,
    }
}

fn partition(id: &str) -> u16 {
    keys::partition_of("T", id, PARTITIONS)
}

fn req(id: &str, op: WriteOp, precondition: Precondition) -> WriteRequest {
    WriteRequest {
        table: "T".into(),
        id: id.into(),
        partition: partition(id),
        op,
        precondition,
    }
}

fn put(body: &str) -> WriteOp {
    WriteOp::Put {
        body: body.as_bytes().to_vec(),
    }
}

fn patch(fields: &str) -> WriteOp {
    WriteOp::Patch {
        fields: fields.as_bytes().to_vec(),
    }
}

fn add_to(fields: &str) -> WriteOp {
    WriteOp::AddTo {
        fields: fields.as_bytes().to_vec(),
    }
}

/// A single write and where its answer will arrive.
fn write(
    id: &str,
    op: WriteOp,
    precondition: Precondition,
) -> (WriterMsg, flume::Receiver<WriteOutcome>) {
    let (reply, rx) = flume::bounded(1);
    let msg = WriterMsg::Write {
        req: req(id, op, precondition),
        table: table(),
        reply,
    };
    (msg, rx)
}

fn atomic(writes: Vec<WriteRequest>) -> (WriterMsg, flume::Receiver<AtomicOutcome>) {
    let (reply, rx) = flume::bounded(1);
    let writes = writes.into_iter().map(|r| (r, table())).collect();
    (WriterMsg::WriteAtomic { writes, reply }, rx)
}

/// A shard database in a temp dir.
struct Shard {
    _dir: tempfile::TempDir,
    db: ShardDb,
}

impl Shard {
    fn new() -> Shard {
        let dir = tempfile::tempdir().unwrap();
        let db = ShardDb::open(dir.path(), 1 << 20).unwrap();
        Shard { _dir: dir, db }
    }

    /// Runs a writer over `msgs` as one group (they are queued before it starts) and stops it.
    fn run_group(&self, msgs: Vec<WriterMsg>) {
        self.run_group_feeding(msgs, Vec::new());
    }

    fn run_group_feeding(&self, msgs: Vec<WriterMsg>, feeds: Vec<FeedTarget>) {
        self.run_group_with(msgs, feeds, None);
    }

    fn run_group_with(
        &self,
        msgs: Vec<WriterMsg>,
        feeds: Vec<FeedTarget>,
        check: Option<Arc<dyn WriteCheck>>,
    ) {
        let dirty = Arc::new(AtomicBool::new(false));
        let w = Writer::new(self.db.clone(), settings(), dirty).unwrap();
        let w = w.with_feeds(0, feeds).with_check(check);
        let (tx, rx) = flume::unbounded();
        for m in msgs {
            tx.send(m).unwrap();
        }
        let (done, stopped) = flume::bounded(1);
        tx.send(WriterMsg::Stop { done }).unwrap();
        std::thread::spawn(move || w.run(rx)).join().unwrap();
        stopped.recv().unwrap();
    }

    /// Runs one write in a group of its own.
    fn write(&self, id: &str, op: WriteOp, precondition: Precondition) -> WriteOutcome {
        let (msg, rx) = write(id, op, precondition);
        self.run_group(vec![msg]);
        rx.recv().unwrap()
    }

    fn live(&self, id: &str) -> Option<Vec<u8>> {
        let key = keys::record_key("T", partition(id), id);
        self.db.get(&key).unwrap().map(|r| r.body().to_vec())
    }

    fn index_keys(&self) -> Vec<Vec<u8>> {
        let keys = self.db.index.iter().map(|g| g.key().unwrap().to_vec());
        keys.collect()
    }

    fn changes(&self) -> Vec<(u64, Change)> {
        let entries = self.db.changelog.iter().map(|g| {
            let (k, v) = g.into_inner().unwrap();
            let seq = u64::from_be_bytes(k[..8].try_into().unwrap());
            (seq, Change::decode(&v).unwrap())
        });
        entries.collect()
    }
}

fn is_written(o: &WriteOutcome) -> bool {
    matches!(o, WriteOutcome::Written { .. })
}

fn written_body(o: WriteOutcome) -> Value {
    match o {
        WriteOutcome::Written { body: Some(b), .. } => serde_json::from_slice(&b).unwrap(),
        other => panic!("expected a written body, got {other:?}"),
    }
}

#[test]
fn two_if_absent_creates_of_one_id_in_one_group_let_exactly_one_win() {
    let shard = Shard::new();
    let (a, a_rx) = write("x", put(r#"{"id":"x","n":1}"#), Precondition::IfAbsent);
    let (b, b_rx) = write("x", put(r#"{"id":"x","n":2}"#), Precondition::IfAbsent);
    shard.run_group(vec![a, b]);
    let (a, b) = (a_rx.recv().unwrap(), b_rx.recv().unwrap());
    assert!(is_written(&a), "{a:?}");
    assert_eq!(b, WriteOutcome::PreconditionFailed);
    assert_eq!(shard.live("x").unwrap(), br#"{"id":"x","n":1}"#);
    assert_eq!(shard.changes().len(), 1);
}

#[test]
fn if_exists_fails_on_a_missing_record() {
    let shard = Shard::new();
    let o = shard.write("x", put(r#"{"id":"x"}"#), Precondition::IfExists);
    assert_eq!(o, WriteOutcome::PreconditionFailed);
    assert_eq!(shard.live("x"), None);
    assert!(shard.changes().is_empty());
}

#[test]
fn if_exists_fails_on_a_record_deleted_earlier_in_the_same_group() {
    let shard = Shard::new();
    assert!(is_written(&shard.write(
        "x",
        put(r#"{"id":"x"}"#),
        Precondition::None
    )));
    let (del, del_rx) = write("x", WriteOp::Delete, Precondition::IfExists);
    let (again, again_rx) = write("x", put(r#"{"id":"x","n":2}"#), Precondition::IfExists);
    shard.run_group(vec![del, again]);
    assert!(is_written(&del_rx.recv().unwrap()));
    assert_eq!(again_rx.recv().unwrap(), WriteOutcome::PreconditionFailed);
    assert_eq!(shard.live("x"), None);
}

#[test]
fn if_exists_applies_to_a_live_record() {
    let shard = Shard::new();
    shard.write("x", put(r#"{"id":"x"}"#), Precondition::None);
    let o = shard.write("x", put(r#"{"id":"x","n":2}"#), Precondition::IfExists);
    assert!(
        matches!(
            o,
            WriteOutcome::Written {
                created: false,
                body: None,
                ..
            }
        ),
        "{o:?}"
    );
}

#[test]
fn an_atomic_batch_whose_last_write_fails_stores_nothing() {
    let shard = Shard::new();
    let (batch, batch_rx) = atomic(vec![
        req(
            "a",
            put(r#"{"id":"a","category":"red"}"#),
            Precondition::None,
        ),
        req("a", add_to(r#"{"n":1}"#), Precondition::None),
        req(
            "a",
            WriteOp::Create {
                body: b"{}".to_vec(),
            },
            Precondition::None,
        ),
    ]);
    // A write of another record in the same group commits, so the group is not empty.
    let (other, other_rx) = write("b", put(r#"{"id":"b"}"#), Precondition::None);
    let (tx, feed) = flume::unbounded();
    let interest = Arc::new(AtomicU64::new(1));
    shard.run_group_feeding(vec![batch, other], vec![FeedTarget { tx, interest }]);
    assert_eq!(
        batch_rx.recv().unwrap(),
        AtomicOutcome::Aborted {
            index: 2,
            outcome: WriteOutcome::Exists
        }
    );
    assert!(is_written(&other_rx.recv().unwrap()));
    assert_eq!(shard.live("a"), None);
    assert!(shard.index_keys().is_empty());
    let logged: Vec<String> = shard.changes().into_iter().map(|(_, c)| c.id).collect();
    assert_eq!(logged, ["b"]);
    let published = feed.try_recv().unwrap();
    assert_eq!((published.first_seq, published.changes.len()), (1, 1));
    assert_eq!(published.changes[0].id, "b");
}

#[test]
fn an_atomic_batch_applies_in_order_and_later_writes_see_earlier_ones() {
    let shard = Shard::new();
    let (batch, rx) = atomic(vec![
        req(
            "a",
            WriteOp::Create {
                body: br#"{"id":"a","n":1}"#.to_vec(),
            },
            Precondition::IfAbsent,
        ),
        req("a", add_to(r#"{"n":2}"#), Precondition::IfExists),
        req(
            "a",
            WriteOp::Patch {
                fields: br#"{"category":"red"}"#.to_vec(),
            },
            Precondition::None,
        ),
    ]);
    shard.run_group(vec![batch]);
    let AtomicOutcome::Committed(outcomes) = rx.recv().unwrap() else {
        panic!("the batch should commit");
    };
    assert_eq!(outcomes.len(), 3);
    assert!(matches!(
        outcomes[0],
        WriteOutcome::Written {
            created: true,
            body: None,
            ..
        }
    ));
    let last = written_body(outcomes[2].clone());
    assert_eq!(
        last,
        serde_json::json!({"id": "a", "n": 3, "category": "red"})
    );
    assert_eq!(shard.live("a").unwrap(), serde_json::to_vec(&last).unwrap());
    let seqs: Vec<u64> = shard.changes().into_iter().map(|(s, _)| s).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(shard.index_keys().len(), 1);
}

/// Two ids of table T in different partitions.
fn ids_in_two_partitions() -> (String, String) {
    let first = "a".to_string();
    let other = (0..)
        .map(|i| format!("id{i}"))
        .find(|id| partition(id) != partition(&first))
        .unwrap();
    (first, other)
}

#[test]
fn an_atomic_batch_across_two_partitions_is_refused_and_stores_nothing() {
    let shard = Shard::new();
    let (a, b) = ids_in_two_partitions();
    let (batch, rx) = atomic(vec![
        req(&a, put(r#"{"category":"red"}"#), Precondition::None),
        req(&b, put(r#"{"category":"red"}"#), Precondition::None),
    ]);
    shard.run_group(vec![batch]);
    match rx.recv().unwrap() {
        AtomicOutcome::Aborted {
            index: 1,
            outcome: WriteOutcome::Invalid(why),
        } => assert!(why.contains("one partition"), "{why}"),
        other => panic!("expected a refusal of write 1, got {other:?}"),
    }
    assert_eq!((shard.live(&a), shard.live(&b)), (None, None));
    assert!(shard.index_keys().is_empty());
    assert!(shard.changes().is_empty());
}

#[test]
fn add_to_adds_integers_floats_and_missing_fields() {
    let shard = Shard::new();
    let doc = format!(r#"{{"id":"c","n":1,"f":1.5,"big":{}}}"#, i64::MAX);
    shard.write("c", put(&doc), Precondition::None);
    let o = shard.write(
        "c",
        add_to(r#"{"n":2,"f":1,"big":1,"new":-4}"#),
        Precondition::None,
    );
    let body = written_body(o);
    assert_eq!(body["n"], serde_json::json!(3));
    assert!(body["n"].is_i64());
    assert_eq!(body["f"].as_f64(), Some(2.5));
    // i64::MAX + 1 overflows: the sum becomes a float.
    assert!(body["big"].is_f64(), "{body}");
    assert_eq!(body["big"].as_f64(), Some(i64::MAX as f64 + 1.0));
    assert_eq!(body["new"], serde_json::json!(-4));
    let stored: Value = serde_json::from_slice(&shard.live("c").unwrap()).unwrap();
    assert_eq!(stored, body);
}

#[test]
fn add_to_refuses_non_numbers_and_missing_records() {
    let shard = Shard::new();
    shard.write(
        "c",
        put(r#"{"id":"c","s":"text","n":1}"#),
        Precondition::None,
    );
    let field = shard.write("c", add_to(r#"{"s":1}"#), Precondition::None);
    assert!(matches!(field, WriteOutcome::Invalid(_)), "{field:?}");
    let delta = shard.write("c", add_to(r#"{"n":"1"}"#), Precondition::None);
    assert!(matches!(delta, WriteOutcome::Invalid(_)), "{delta:?}");
    let not_object = shard.write("c", add_to("[1]"), Precondition::None);
    assert!(
        matches!(not_object, WriteOutcome::Invalid(_)),
        "{not_object:?}"
    );
    let missing = shard.write("nobody", add_to(r#"{"n":1}"#), Precondition::None);
    assert_eq!(missing, WriteOutcome::NotFound);
    assert_eq!(shard.live("c").unwrap(), br#"{"id":"c","s":"text","n":1}"#);
}

#[test]
fn add_to_in_one_group_counts_every_increment() {
    let shard = Shard::new();
    shard.write("c", put(r#"{"id":"c","n":0}"#), Precondition::None);
    let (msgs, replies): (Vec<_>, Vec<_>) = (0..100)
        .map(|_| write("c", add_to(r#"{"n":1}"#), Precondition::None))
        .unzip();
    shard.run_group(msgs);
    assert!(replies.iter().all(|r| is_written(&r.recv().unwrap())));
    assert_eq!(shard.live("c").unwrap(), br#"{"id":"c","n":100}"#);
}

#[test]
fn only_patch_and_add_to_answer_with_the_stored_document() {
    let shard = Shard::new();
    let o = shard.write("p", put(r#"{"id":"p"}"#), Precondition::None);
    assert!(
        matches!(o, WriteOutcome::Written { body: None, .. }),
        "{o:?}"
    );
    let patch = WriteOp::Patch {
        fields: br#"{"category":"red"}"#.to_vec(),
    };
    let o = shard.write("p", patch, Precondition::None);
    assert_eq!(
        written_body(o),
        serde_json::json!({"id": "p", "category": "red"})
    );
    let o = shard.write("p", WriteOp::Delete, Precondition::None);
    assert!(
        matches!(o, WriteOutcome::Written { body: None, .. }),
        "{o:?}"
    );
}

#[test]
fn a_local_write_and_a_replicated_change_of_one_document_index_alike() {
    let docs = [
        r#"{"id":"d","category":["red","blue"]}"#,
        r#"{"id":"d","category":["blue","green"]}"#,
    ];
    let local = Shard::new();
    for doc in docs {
        assert!(is_written(&local.write("d", put(doc), Precondition::None)));
    }
    let remote = Shard::new();
    for (i, doc) in docs.iter().enumerate() {
        let change = Change {
            table: "T".into(),
            id: "d".into(),
            clock: 0x0190_0000_0000_0000 + i as u64,
            node: 2,
            op: ChangeOp::Put,
            body: doc.as_bytes().to_vec(),
        };
        let (reply, rx) = flume::bounded(1);
        let changes = vec![replica::RemoteChange {
            partition: partition("d"),
            table: Some(table()),
            change,
        }];
        remote.run_group(vec![WriterMsg::Replicate { changes, reply }]);
        assert_eq!(rx.recv().unwrap(), Ok(1));
    }
    assert_eq!(local.index_keys().len(), 2);
    assert_eq!(local.index_keys(), remote.index_keys());
    assert_eq!(local.live("d"), remote.live("d"));
}

#[test]
fn a_published_batch_holds_every_change_its_group_logged() {
    let shard = Shard::new();
    let (tx, feed) = flume::unbounded();
    let interest = Arc::new(AtomicU64::new(1));
    let msgs = (0..5)
        .map(|i| write(&format!("k{i}"), put("{}"), Precondition::None).0)
        .collect();
    shard.run_group_feeding(msgs, vec![FeedTarget { tx, interest }]);
    let batch = feed.try_recv().unwrap();
    let logged = shard.changes();
    assert_eq!(batch.first_seq, logged[0].0);
    let published: Vec<&Change> = batch.changes.iter().collect();
    let stored: Vec<&Change> = logged.iter().map(|(_, c)| c).collect();
    assert_eq!(published, stored);
}

/// A check of table `T`: refuses a document with `bad` (422) and the deletion of one with
/// `keep` (409), panics on record `boom`, and adds `derived` (the number of fields) to the
/// rest.
struct TestCheck;

impl WriteCheck for TestCheck {
    fn covers(&self, table: &str) -> bool {
        table == "T"
    }

    fn check(
        &self,
        _table: &TableDef,
        id: &str,
        before: Option<&Object>,
        after: Option<&mut Object>,
    ) -> Result<(), Refusal> {
        let refuse = |status, message: &str| {
            Err(Refusal {
                status,
                message: message.into(),
            })
        };
        assert_ne!(id, "boom", "a bug in a check");
        match after {
            Some(doc) if doc.contains_key("bad") => refuse(422, "bad"),
            Some(doc) => {
                doc.insert("derived".into(), Value::from(doc.len()));
                Ok(())
            }
            None if before.is_some_and(|b| b.contains_key("keep")) => refuse(409, "kept"),
            None => Ok(()),
        }
    }
}

impl Shard {
    fn write_checked(&self, id: &str, op: WriteOp) -> WriteOutcome {
        let (msg, rx) = write(id, op, Precondition::None);
        self.run_group_with(vec![msg], Vec::new(), Some(Arc::new(TestCheck)));
        rx.recv().unwrap()
    }
}

fn rejected(status: u16, message: &str) -> WriteOutcome {
    WriteOutcome::Rejected {
        status,
        message: message.into(),
    }
}

#[test]
fn a_check_changes_or_refuses_local_writes_and_sees_the_live_document() {
    let shard = Shard::new();
    let w = shard.write_checked("a", put(r#"{"id":"a","keep":1}"#));
    assert!(is_written(&w), "{w:?}");
    let stored: Value = serde_json::from_slice(&shard.live("a").unwrap()).unwrap();
    assert_eq!(stored["derived"], 2);
    let patched = written_body(shard.write_checked("a", patch(r#"{"x":1}"#)));
    assert_eq!(patched["derived"], 4, "the patched document is checked");
    let w = shard.write_checked("b", put(r#"{"id":"b","bad":true}"#));
    assert_eq!(w, rejected(422, "bad"));
    assert_eq!(shard.live("b"), None);
    assert_eq!(
        shard.write_checked("a", WriteOp::Delete),
        rejected(409, "kept")
    );
    assert!(shard.live("a").is_some());
    // Another table is not covered: stored as sent.
    let (reply, rx) = flume::bounded(1);
    let mut other = req("c", put(r#"{"id":"c","bad":1}"#), Precondition::None);
    other.table = "U".into();
    let msg = WriterMsg::Write {
        req: other,
        table: Arc::new(TableDef {
            name: "U".into(),
            ..(*table()).clone()
        }),
        reply,
    };
    shard.run_group_with(vec![msg], Vec::new(), Some(Arc::new(TestCheck)));
    assert!(is_written(&rx.recv().unwrap()));
}

#[test]
fn a_replicated_change_is_not_checked() {
    let shard = Shard::new();
    let change = Change {
        table: "T".into(),
        id: "r".into(),
        clock: 0x0190_0000_0000_0000,
        node: 2,
        op: ChangeOp::Put,
        body: br#"{"id":"r","bad":true}"#.to_vec(),
    };
    let (reply, rx) = flume::bounded(1);
    let changes = vec![replica::RemoteChange {
        partition: partition("r"),
        table: Some(table()),
        change,
    }];
    let msg = WriterMsg::Replicate { changes, reply };
    shard.run_group_with(vec![msg], Vec::new(), Some(Arc::new(TestCheck)));
    assert_eq!(rx.recv().unwrap(), Ok(1));
    assert_eq!(shard.live("r").unwrap(), br#"{"id":"r","bad":true}"#);
}

#[test]
fn a_refused_write_aborts_its_atomic_batch() {
    let shard = Shard::new();
    let (msg, rx) = atomic(vec![
        req("k", put(r#"{"id":"k"}"#), Precondition::None),
        req("k", patch(r#"{"bad":1}"#), Precondition::None),
    ]);
    shard.run_group_with(vec![msg], Vec::new(), Some(Arc::new(TestCheck)));
    let outcome = rx.recv().unwrap();
    let expected = AtomicOutcome::Aborted {
        index: 1,
        outcome: rejected(422, "bad"),
    };
    assert_eq!(outcome, expected);
    assert_eq!(shard.live("k"), None);
}

#[test]
fn a_panicking_check_refuses_its_write_and_the_writer_goes_on() {
    let shard = Shard::new();
    let (boom, boom_rx) = write("boom", put("{}"), Precondition::None);
    let (next, next_rx) = write("next", put("{}"), Precondition::None);
    shard.run_group_with(vec![boom, next], Vec::new(), Some(Arc::new(TestCheck)));
    let refused = boom_rx.recv().unwrap();
    assert!(
        matches!(refused, WriteOutcome::Rejected { status: 500, .. }),
        "{refused:?}"
    );
    assert!(is_written(&next_rx.recv().unwrap()));
    assert_eq!(shard.live("boom"), None);
}

#[test]
fn a_change_log_trimmed_by_age_keeps_its_last_entry_so_a_restart_continues_its_sequence() {
    let shard = Shard::new();
    for id in ["a", "b", "c"] {
        let body = format!(r#"{{"id":"{id}"}}"#);
        assert!(is_written(&shard.write(id, put(&body), Precondition::None)));
    }
    assert_eq!(shard.changes().len(), 3);
    // Two hours later every entry is past the retention (one hour).
    let later = crate::storage::now_millis() + 7_200_000;
    let settings = WriterSettings {
        clock: crate::storage::clock::Clock::manual(later),
        ..settings()
    };
    let dirty = Arc::new(AtomicBool::new(false));
    let mut w = Writer::new(shard.db.clone(), settings.clone(), dirty.clone()).unwrap();
    w.trim_changelog().unwrap();
    let seqs: Vec<u64> = shard.changes().iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, vec![3], "only the last entry stays");
    drop(w);
    // A restart continues after it, so peers' cursors (at 4) still mean the same entries.
    let w = Writer::new(shard.db.clone(), settings, dirty).unwrap();
    assert_eq!(w.stats().changelog_next.load(Ordering::Relaxed), 4);
    assert_eq!(w.stats().changelog_first.load(Ordering::Relaxed), 3);
}
