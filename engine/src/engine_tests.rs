//! Unit tests of planning and applying, against the in-memory cloud.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::apply::BackendStore;
use crate::apply::{self, ApplyOptions, Quiet};
use crate::memory::{self, Cloud};
use crate::ops;
use crate::plan::{self, DeleteFirst, Op, Plan, Reason, ReplaceOrder};
use crate::render;
use crate::stack::{self, Resolved, Stack};
use rinfra_provider::Registry;
use rinfra_state::StateFile;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

const BASE: &str = r#"name: demo
resources:
  stream:
    type: test:Stream
    properties:
      name: s1
      metrics: [b, a]
  alarm:
    type: test:Alarm
    properties:
      name: a1
      threshold: 1
      dimensions:
        Stream: ${stream.name}
        Arn: ${stream.arn}
outputs:
  streamName: ${stream.name}
"#;

struct World {
    cloud: Arc<Cloud>,
    registry: Registry,
    dir: tempfile::TempDir,
    state: StateFile,
}

impl World {
    fn new() -> World {
        let cloud = Arc::new(Cloud::default());
        let registry = memory::registry(cloud.clone());
        World {
            cloud,
            registry,
            dir: tempfile::tempdir().unwrap(),
            state: StateFile::new(&rinfra_state::StackId::single("demo")),
        }
    }

    fn stack(&self, yaml: &str) -> Stack {
        stack::load(yaml.as_bytes(), &BTreeMap::new(), &self.registry).unwrap()
    }

    async fn plan(&self, yaml: &str) -> Plan {
        let observed = ops::refresh(&self.state, None, &self.registry).await.unwrap();
        let s = self.stack(yaml);
        plan::plan(&s, &Resolved::new(&s), &self.state, &self.registry, Some(&observed)).unwrap()
    }

    async fn up(&mut self, yaml: &str) -> (Plan, apply::Report) {
        self.up_with(yaml, ApplyOptions::default()).await
    }

    async fn up_with(&mut self, yaml: &str, options: ApplyOptions) -> (Plan, apply::Report) {
        let p = self.plan(yaml).await;
        let s = self.stack(yaml);
        let path = self.dir.path().join("state.json");
        let store = BackendStore {
            secret_outputs: Default::default(),
            backend: std::sync::Arc::new(rinfra_state::backend::LocalBackend::file(path.clone())),
            id: rinfra_state::StackId::single("demo"),
            sealer: None,
        };
        let report = apply::apply(
            &p,
            Some(&s),
            &mut Resolved::new(&s),
            &mut self.state,
            &store,
            &self.registry,
            &options,
            Arc::new(Quiet),
        )
        .await
        .unwrap();
        if report.ok() {
            ops::sync_metadata(&s, &mut self.state);
            rinfra_state::save(&path, &mut self.state).unwrap();
        }
        // What is on disk is what is in memory.
        assert_eq!(rinfra_state::load(&path, &rinfra_state::StackId::single("demo")).unwrap().unwrap(), self.state);
        (p, report)
    }
}

fn ops_of(p: &Plan) -> Vec<(String, Op)> {
    p.steps.iter().map(|s| (s.name.clone(), s.op)).collect()
}

#[tokio::test]
async fn up_creates_in_dependency_order_and_then_nothing_differs() {
    let mut w = World::new();
    let (p, r) = w.up(BASE).await;
    assert!(r.ok());
    assert_eq!(ops_of(&p), [("stream".into(), Op::Create), ("alarm".into(), Op::Create)]);
    assert_eq!(w.cloud.writes(), ["create test:Stream s1", "create test:Alarm a1"]);
    // The alarm saw the stream's real ARN, unknown at plan time.
    let alarm = &w.state.resources["alarm"];
    assert_eq!(alarm.inputs["dimensions"]["Arn"], json!("arn:test:test:Stream:s1"));
    assert_eq!(alarm.dependencies, ["stream"]);
    assert_eq!(w.state.outputs["streamName"], json!("s1"));
    assert!(w.state.pending.is_empty());

    let again = w.plan(BASE).await;
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(render::plan(&again, false), format!("{}\n", render::NO_CHANGES));
}

#[tokio::test]
async fn defaults_sets_and_number_forms_compare_equal() {
    let mut w = World::new();
    w.up(BASE).await;
    // The cloud reports defaults explicitly, sets in another order, and
    // the threshold as a float.
    w.cloud.set("test:Stream", "s1", "size", json!(1));
    w.cloud.set("test:Stream", "s1", "metrics", json!(["a", "b", "a"]));
    w.cloud.set("test:Alarm", "a1", "threshold", json!(1.0));
    assert!(w.plan(BASE).await.is_empty());
}

#[tokio::test]
async fn a_changed_property_is_an_update_of_only_that_property() {
    let mut w = World::new();
    w.up(BASE).await;
    let edited = BASE.replace("threshold: 1", "threshold: 5");
    let (p, r) = w.up(&edited).await;
    assert!(r.ok());
    assert_eq!(ops_of(&p), [("stream".into(), Op::Same), ("alarm".into(), Op::Update)]);
    let c = &p.steps[1].changes;
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].name.as_str(), c[0].old.clone(), c[0].new.clone()), ("threshold", Some(json!(1)), Some(json!(5))));
    assert!(!c[0].drift);
    assert_eq!(w.cloud.writes().last().unwrap(), "update[threshold] test:Alarm a1");
}

#[tokio::test]
async fn a_rename_creates_first_then_dependents_follow_then_the_old_goes() {
    let mut w = World::new();
    w.up(BASE).await;
    let renamed = BASE.replace("name: s1", "name: s2");
    let (p, r) = w.up(&renamed).await;
    assert!(r.ok());
    let cbd = Op::Replace(ReplaceOrder::CreateBeforeDelete);
    assert_eq!(ops_of(&p), [("stream".into(), cbd), ("alarm".into(), Op::Update)]);
    assert!(p.steps[0].changes[0].replaces);
    let writes = w.cloud.writes();
    assert_eq!(
        writes[2..],
        ["create test:Stream s2", "update[dimensions] test:Alarm a1", "delete test:Stream s1"],
        "{writes:?}"
    );
    assert_eq!(w.state.resources["alarm"].inputs["dimensions"]["Stream"], json!("s2"));
    assert!(w.state.replaced.is_empty(), "the old half is gone from the state too");
}

#[tokio::test]
async fn delete_before_replace_is_never_read() {
    let mut w = World::new();
    let dbr = BASE
        .replace("      metrics: [b, a]\n", "      metrics: [b, a]\n    options:\n      deleteBeforeReplace: true\n");
    w.up(&dbr).await;
    let (p, r) = w.up(&dbr.replace("name: s1", "name: s2")).await;
    assert!(r.ok());
    assert_eq!(p.steps[0].op, Op::Replace(ReplaceOrder::DeleteBeforeCreate(DeleteFirst::Requested)));
    let writes = w.cloud.writes();
    assert_eq!(
        writes[2..],
        ["delete test:Stream s1", "create test:Stream s2", "update[dimensions] test:Alarm a1"],
        "{writes:?}"
    );
    let text = render::plan(&p, false);
    assert!(text.contains("delete first: the resource sets deleteBeforeReplace"), "{text}");
}

#[tokio::test]
async fn a_replace_that_keeps_its_name_deletes_first_and_says_why() {
    let mut w = World::new();
    w.up(BASE).await;
    // `kind` forces replacement, and the name stays: both cannot coexist.
    let p = w.plan(&BASE.replace("      metrics: [b, a]\n", "      metrics: [b, a]\n      kind: other\n")).await;
    assert_eq!(p.steps[0].op, Op::Replace(ReplaceOrder::DeleteBeforeCreate(DeleteFirst::SameId)));
    assert!(render::plan(&p, false).contains("the replacement keeps the same name"));
}

#[tokio::test]
async fn removed_resources_are_deleted_dependents_first() {
    let mut w = World::new();
    w.up(BASE).await;
    let (p, r) = w.up("name: demo\nresources: {}\n").await;
    assert!(r.ok());
    assert_eq!(ops_of(&p), [("alarm".into(), Op::Delete), ("stream".into(), Op::Delete)]);
    assert_eq!(w.cloud.writes()[2..], ["delete test:Alarm a1", "delete test:Stream s1"]);
    assert!(w.state.resources.is_empty());
    assert!(w.state.outputs.is_empty());
}

#[tokio::test]
async fn drift_is_marked_and_a_vanished_resource_is_recreated() {
    let mut w = World::new();
    w.up(BASE).await;
    w.cloud.set("test:Alarm", "a1", "threshold", json!(9));
    w.cloud.remove("test:Stream", "s1");
    let p = w.plan(BASE).await;
    assert_eq!(p.steps[0].op, Op::Create);
    assert_eq!(p.steps[0].reason, Some(Reason::DeletedOutside));
    let t = p.steps[1].changes.iter().find(|c| c.name == "threshold").unwrap();
    assert!(t.drift);
    assert_eq!((t.old.clone(), t.new.clone()), (Some(json!(9)), Some(json!(1))));
    insta::assert_snapshot!("drift_plan", render::plan(&p, false));
    insta::assert_snapshot!("drift_plan_color", render::plan(&p, true));
}

#[tokio::test]
async fn a_failure_stops_new_work_and_the_state_stays_true() {
    let mut w = World::new();
    let two = format!("{BASE}  other:\n    type: test:Stream\n    properties:\n      name: s9\n")
        .replace("outputs:\n  streamName: ${stream.name}\n", "")
        + "outputs: {}\n";
    let two = two.replace("outputs: {}\n  other:", "  other:");
    w.cloud.fail_create.lock().unwrap().insert("s1".into());
    let (_, r) = w.up(&two).await;
    assert!(!r.ok());
    assert_eq!(r.failures[0].name, "stream");
    // The alarm depends on the failed stream and never starts.
    assert!(!w.cloud.writes().iter().any(|c| c.contains("Alarm")));
    assert!(!w.state.resources.contains_key("stream"));
    assert!(w.state.pending.is_empty());
    // What was made is recorded; nothing is recorded that was not made.
    for (name, rec) in &w.state.resources {
        assert!(w.cloud.resources.lock().unwrap().contains_key(&format!("{}/{}", rec.type_, rec.id)), "{name}");
    }
}

#[tokio::test]
async fn a_half_made_resource_is_recorded_as_the_cloud_holds_it() {
    let mut w = World::new();
    w.cloud.partial_create.lock().unwrap().insert("s1".into());
    let (_, r) = w.up(BASE).await;
    assert!(!r.ok());
    let rec = &w.state.resources["stream"];
    assert_eq!(rec.inputs, BTreeMap::from([("name".to_string(), json!("s1"))]));
    // The next plan finishes the job in place.
    w.cloud.partial_create.lock().unwrap().clear();
    let p = w.plan(BASE).await;
    assert_eq!(p.steps[0].op, Op::Update);
    assert_eq!(p.steps[0].changes.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["metrics"]);
}

#[tokio::test]
async fn pending_operations_are_reconciled_with_the_cloud() {
    let mut w = World::new();
    w.up(BASE).await;
    // A crash after CreateStream reached the cloud but before the state
    // recorded it: a pending create for a resource that exists.
    w.cloud.resources.lock().unwrap().insert("test:Stream/s7".into(), [("name".to_string(), json!("s7"))].into());
    let pending = |kind: rinfra_state::PendingKind, resource: &str, id: &str| rinfra_state::PendingOperation {
        kind,
        resource: resource.into(),
        type_: "test:Stream".into(),
        id: id.into(),
        inputs: BTreeMap::new(),
        dependencies: vec![],
    };
    w.cloud.owners.lock().unwrap().insert("s7".into(), rinfra_provider::Ownership::new("demo", "made"));
    use rinfra_state::PendingKind::{Create, Delete};
    w.state.pending =
        vec![pending(Create, "made", "s7"), pending(Create, "never", "s8"), pending(Delete, "stream", "s1")];
    let notes = ops::reconcile_pending(&mut w.state, None, &w.registry).await.unwrap();
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(w.state.resources.contains_key("made"), "an interrupted create that happened, with our tags, is adopted");
    assert!(!w.state.resources.contains_key("never"));
    assert!(w.state.resources.contains_key("stream"), "an interrupted delete that did not happen keeps the resource");
    assert!(w.state.pending.is_empty());
}

#[tokio::test]
async fn plans_render_like_terraform() {
    let mut w = World::new();
    let create = w.plan(BASE).await;
    insta::assert_snapshot!("create_plan", render::plan(&create, false));
    insta::assert_snapshot!("create_plan_color", render::plan(&create, true));
    w.up(BASE).await;
    let edited = BASE
        .replace("name: s1", "name: s2")
        .replace("metrics: [b, a]", "metrics: [a, c]\n      note: |\n        one\n        two")
        .replace("threshold: 1", "threshold: 2.5");
    let p = w.plan(&edited).await;
    insta::assert_snapshot!("replace_and_update_plan", render::plan(&p, false));
    insta::assert_snapshot!("replace_and_update_plan_color", render::plan(&p, true));
    let gone = w.plan("name: demo\nresources: {}\n").await;
    insta::assert_snapshot!("delete_plan", render::plan(&gone, false));
    insta::assert_snapshot!("delete_plan_color", render::plan(&gone, true));
}

#[tokio::test]
async fn protected_resources_are_never_replaced_or_deleted() {
    let mut w = World::new();
    let protected =
        BASE.replace("      metrics: [b, a]\n", "      metrics: [b, a]\n    options:\n      protect: true\n");
    w.up(&protected).await;
    let renamed = protected.replace("name: s1", "name: s2");
    let observed = ops::refresh(&w.state, None, &w.registry).await.unwrap();
    let s = w.stack(&renamed);
    let err = plan::plan(&s, &Resolved::new(&s), &w.state, &w.registry, Some(&observed)).unwrap_err();
    assert!(err.to_string().contains("`stream` is protected and would be replaced"), "{err}");
    let err = plan::delete_steps(&w.state, &w.registry, |_| true).unwrap_err();
    assert!(err.to_string().contains("protected"), "{err}");
}

#[tokio::test]
async fn protect_added_later_reaches_the_state() {
    let mut w = World::new();
    w.up(BASE).await;
    let protected =
        BASE.replace("      metrics: [b, a]\n", "      metrics: [b, a]\n    options:\n      protect: true\n");
    let (p, _) = w.up(&protected).await;
    assert!(p.is_empty(), "adding protect changes nothing in the cloud");
    assert!(w.state.resources["stream"].protect);
    let err = plan::delete_steps(&w.state, &w.registry, |_| true).unwrap_err();
    assert!(err.to_string().contains("protected"), "{err}");
}

#[tokio::test]
async fn interrupt_after_the_delete_half_of_a_replace_is_not_success() {
    let mut w = World::new();
    w.up(BASE).await;
    let options = ApplyOptions::default();
    *w.cloud.interrupt_on_delete.lock().unwrap() = Some(options.cancel.clone());
    let dbr = BASE
        .replace("      metrics: [b, a]\n", "      metrics: [b, a]\n    options:\n      deleteBeforeReplace: true\n");
    let (_, r) = w.up_with(&dbr.replace("name: s1", "name: s2"), options).await;
    assert!(!r.ok(), "{r:?}");
    assert!(r.interrupted);
    assert!(!w.state.resources.contains_key("stream"), "the state says the old stream is gone");
    assert_eq!(w.state.outputs["streamName"], json!("s1"), "outputs are not rewritten by an unfinished run");
    // The next run finishes the job.
    *w.cloud.interrupt_on_delete.lock().unwrap() = None;
    let (_, r) = w.up(&BASE.replace("name: s1", "name: s2")).await;
    assert!(r.ok());
    assert_eq!(w.state.outputs["streamName"], json!("s2"));
}

#[tokio::test]
async fn reference_to_an_unset_input_is_not_a_perpetual_diff() {
    let mut w = World::new();
    let yaml = format!("{BASE}  copy:\n    type: test:Stream\n    properties:\n      name: c-${{stream.size}}\n      note: x${{stream.note}}\n")
        .replace("outputs:\n  streamName: ${stream.name}\n", "");
    let yaml = yaml + "outputs:\n  size: ${stream.size}\n";
    let (_, r) = w.up(&yaml).await;
    assert!(r.ok(), "{r:?}");
    assert_eq!(w.state.resources["copy"].inputs["name"], json!("c-1"), "the default of an unset input");
    assert_eq!(w.state.resources["copy"].inputs["note"], json!("x"));
    assert_eq!(w.state.outputs["size"], json!(1));
    assert!(w.plan(&yaml).await.is_empty());
}

#[tokio::test]
async fn a_type_change_deletes_with_the_old_types_provider() {
    let mut w = World::new();
    w.up(BASE).await;
    let retyped = BASE.replace(
        "  stream:\n    type: test:Stream\n    properties:\n      name: s1\n      metrics: [b, a]\n",
        "  stream:\n    type: test:Alarm\n    properties:\n      name: s1\n      threshold: 3\n",
    );
    let (p, r) = w.up(&retyped).await;
    assert!(r.ok(), "{r:?}");
    assert_eq!(p.steps[0].op, Op::Replace(ReplaceOrder::DeleteBeforeCreate(DeleteFirst::TypeChanged)));
    let writes = w.cloud.writes();
    assert!(writes.contains(&"delete test:Stream s1".to_string()), "{writes:?}");
    assert!(writes.contains(&"create test:Alarm s1".to_string()), "{writes:?}");
    assert_eq!(w.state.resources["stream"].type_, "test:Alarm");
}

#[tokio::test]
async fn targets_bring_their_dependencies_and_destroy_targets_their_dependents() {
    let mut w = World::new();
    let mut p = w.plan(BASE).await;
    plan::restrict(&mut p, &["alarm".to_string()], Some(&w.stack(BASE)), &w.state, false).unwrap();
    assert_eq!(ops_of(&p), [("stream".into(), Op::Create), ("alarm".into(), Op::Create)]);
    assert!(p.outputs.is_empty(), "a targeted run leaves outputs alone");
    let mut p = w.plan(BASE).await;
    plan::restrict(&mut p, &["stream".to_string()], Some(&w.stack(BASE)), &w.state, false).unwrap();
    assert_eq!(ops_of(&p), [("stream".into(), Op::Create)]);

    w.up(BASE).await;
    let mut d = Plan {
        stack: "demo".into(),
        steps: plan::delete_steps(&w.state, &w.registry, |_| true).unwrap(),
        outputs: vec![],
        refreshed: true,
    };
    plan::restrict(&mut d, &["stream".to_string()], None, &w.state, true).unwrap();
    assert_eq!(ops_of(&d), [("alarm".into(), Op::Delete), ("stream".into(), Op::Delete)]);

    let err = plan::restrict(&mut w.plan(BASE).await, &["alarn".to_string()], None, &w.state, false).unwrap_err();
    assert_eq!(err.to_string(), "--target `alarn` is not a resource of this stack or its state; did you mean `alarm`?");
}

#[tokio::test]
async fn secrets_are_masked_wherever_they_appear_in_a_plan() {
    let w = World::new();
    let yaml = "name: demo\nconfig:\n  token:\n    type: String\n    default: s3cr3t-v4lue\n    secret: true\nresources:\n  stream:\n    type: test:Stream\n    properties:\n      name: s1\n      note: \"token=${token}\"\noutputs:\n  note: ${token}\n";
    let p = w.plan(yaml).await;
    let shown = render::Secrets::new(w.stack(yaml).secrets).plan(&p);
    let text = render::plan(shown.get(), false);
    assert!(!text.contains("s3cr3t-v4lue"), "{text}");
    assert!(text.contains("\"token=[secret]\"") && text.contains("+ note = \"[secret]\""), "{text}");
}

/// A store that keeps every state it was asked to save.
#[derive(Default)]
struct RecordingStore(std::sync::Mutex<Vec<StateFile>>);

impl apply::Store for RecordingStore {
    fn save(&self, state: &mut StateFile) -> Result<(), rinfra_state::StateError> {
        self.0.lock().unwrap().push(state.clone());
        Ok(())
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

#[tokio::test]
async fn type_changing_replace_orphans_the_old_resource() {
    let mut w = World::new();
    w.up(BASE).await;
    let retyped = BASE.replace(
        "  stream:\n    type: test:Stream\n    properties:\n      name: s1\n      metrics: [b, a]\n",
        "  stream:\n    type: test:Alarm\n    properties:\n      name: s1\n      threshold: 3\n",
    );
    let p = w.plan(&retyped).await;
    let store = RecordingStore::default();
    let s = w.stack(&retyped);
    let mut state = w.state.clone();
    let mut resolved = Resolved::new(&s);
    apply::apply(
        &p,
        Some(&s),
        &mut resolved,
        &mut state,
        &store,
        &w.registry,
        &ApplyOptions::default(),
        Arc::new(Quiet),
    )
    .await
    .unwrap();
    // The state saved just before the delete call, as a crash would leave it.
    let saved = store.0.lock().unwrap().clone();
    let mut crashed = saved
        .into_iter()
        .find(|s| s.pending.iter().any(|p| p.kind == rinfra_state::PendingKind::Delete))
        .expect("a pending delete was saved before the delete call");
    assert_eq!(crashed.pending[0].type_, "test:Stream", "the pending delete names the provider really called");
    // Had the delete not reached the cloud, reconcile must find the old
    // resource through the old type's provider, not forget it.
    w.cloud.resources.lock().unwrap().insert("test:Stream/s1".into(), [("name".to_string(), json!("s1"))].into());
    let notes = ops::reconcile_pending(&mut crashed, Some(&s), &w.registry).await.unwrap();
    assert!(matches!(notes[0], ops::Recovered::NotDeleted { .. }), "{notes:?}");
    assert_eq!(crashed.resources["stream"].type_, "test:Stream");
}

#[tokio::test]
async fn reconcile_adopts_what_it_cannot_prove_it_made() {
    let mut w = World::new();
    let protected =
        BASE.replace("      metrics: [b, a]\n", "      metrics: [b, a]\n    options:\n      protect: true\n");
    let s = w.stack(&protected);
    // Someone else's stream under the name an interrupted create would use.
    w.cloud.resources.lock().unwrap().insert("test:Stream/s1".into(), [("name".to_string(), json!("s1"))].into());
    let pending = rinfra_state::PendingOperation {
        kind: rinfra_state::PendingKind::Create,
        resource: "stream".into(),
        type_: "test:Stream".into(),
        id: "s1".into(),
        inputs: BTreeMap::new(),
        dependencies: vec![],
    };
    w.state.pending = vec![pending.clone()];
    let notes = ops::reconcile_pending(&mut w.state, Some(&s), &w.registry).await.unwrap();
    assert!(!w.state.resources.contains_key("stream"), "no evidence, no adoption");
    assert!(notes[0].to_string().contains("rinfra import stream s1"), "{}", notes[0]);
    // With ownership tags naming this stack and resource, it is adopted,
    // with the options the stack gives it.
    w.cloud.owners.lock().unwrap().insert("s1".into(), rinfra_provider::Ownership::new("demo", "stream"));
    w.state.pending = vec![pending];
    ops::reconcile_pending(&mut w.state, Some(&s), &w.registry).await.unwrap();
    assert!(w.state.resources["stream"].protect, "adopted with the stack's protect");
}

#[tokio::test]
async fn a_failed_update_forgets_what_it_did() {
    let mut w = World::new();
    w.up(BASE).await;
    w.cloud.fail_update.lock().unwrap().insert("s1".into());
    let changed = BASE.replace("      metrics: [b, a]\n", "      metrics: [c]\n      size: 5\n");
    let (_, r) = w.up(&changed).await;
    assert!(!r.ok());
    // The first change (metrics) reached the cloud before the failure; the
    // state says so, so a plan without refresh tells the truth.
    assert_eq!(w.state.resources["stream"].inputs["metrics"], json!(["c"]));
    assert_ne!(w.state.resources["stream"].inputs.get("size"), Some(&json!(5)));
    w.cloud.fail_update.lock().unwrap().clear();
    let s = w.stack(&changed);
    let p = plan::plan(&s, &Resolved::new(&s), &w.state, &w.registry, None).unwrap();
    let names: Vec<&str> = p.steps[0].changes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["size"]);
}

#[tokio::test]
async fn a_panicked_task_is_reported_with_its_resource_name() {
    let mut w = World::new();
    w.cloud.panic_create.lock().unwrap().insert("s1".into());
    let (_, r) = w.up(BASE).await;
    assert_eq!(r.failures.len(), 1, "{r:?}");
    assert_eq!(r.failures[0].name, "stream");
    assert!(matches!(r.failures[0].error, apply::StepError::Panicked(_)));
}

#[tokio::test]
async fn an_old_half_left_by_an_interrupted_replace_is_deleted_by_the_next_run() {
    let mut w = World::new();
    w.up(BASE).await;
    // What a run stopped between the two halves of a create-before-delete
    // replace leaves: the new stream in `resources`, the old in `replaced`.
    let mut old = w.state.resources["stream"].clone();
    old.id = "s0".into();
    w.cloud.resources.lock().unwrap().insert("test:Stream/s0".into(), [("name".to_string(), json!("s0"))].into());
    w.state.replaced.push(rinfra_state::ReplacedResource { name: "stream".into(), resource: old });
    let (p, r) = w.up(BASE).await;
    assert!(r.ok(), "{r:?}");
    let step = p.steps.iter().find(|s| s.replaced).expect("a delete of the old half");
    assert_eq!((step.op, step.reason.clone()), (Op::Delete, Some(Reason::LeftByReplace)));
    assert_eq!(w.cloud.writes().last().unwrap(), "delete test:Stream s0");
    assert!(w.state.replaced.is_empty());
    assert_eq!(w.state.resources["stream"].id, "s1", "the live resource of the same name is untouched");
}

#[test]
fn pulumi_spellings_of_types_runtime_and_template_are_accepted() {
    let w = World::new();
    let stack = w.stack(
        "name: demo\nruntime:\n  name: yaml\n  options: {}\ntemplate:\n  description: from pulumi new\nresources:\n  s:\n    type: test:Stream\n    properties:\n      name: a\n",
    );
    assert_eq!(stack.resources["s"].type_, "test:Stream");
    assert_eq!(crate::stack::short_token("aws:kinesis/stream:Stream"), "aws:kinesis:Stream");
    assert_eq!(crate::stack::short_token("aws:cloudwatch/metricAlarm:MetricAlarm"), "aws:cloudwatch:MetricAlarm");
    assert_eq!(crate::stack::canonical_token("aws:cloudwatch:MetricAlarm"), "aws:cloudwatch/metricAlarm:MetricAlarm");
    // A module path that does not name the type is left alone.
    assert_eq!(crate::stack::short_token("aws:kinesis/other:Stream"), "aws:kinesis/other:Stream");
}

#[tokio::test]
async fn pulumi_names_the_project_and_stack() {
    let w = World::new();
    let yaml = "name: demo\nresources:\n  s:\n    type: test:Stream\n    properties:\n      name: ${pulumi.project}-${pulumi.stack}\n";
    let plan = w.plan(yaml).await;
    let inputs = plan.steps[0].inputs.as_ref().map(|i| i["name"].clone());
    assert_eq!(inputs, Some(serde_json::json!("demo-demo")));
}

const AUTO: &str = r#"name: demo
resources:
  stream:
    type: test:Stream
    properties:
      kind: k1
  alarm:
    type: test:Alarm
    properties:
      name: a1
      threshold: 1
      dimensions:
        Stream: ${stream.name}
"#;

#[tokio::test]
async fn an_auto_named_resource_keeps_its_name_and_is_replaced_create_before_delete() {
    let mut w = World::new();
    let first = w.plan(AUTO).await;
    let name = first.steps[0].inputs.as_ref().unwrap()["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("stream-") && name.len() == "stream-".len() + 7, "{name}");
    // A preview and the `up` after it see the same state, so the same name.
    let (p, r) = w.up(AUTO).await;
    assert!(r.ok());
    assert_eq!(p.steps[0].inputs.as_ref().unwrap()["name"], json!(name));
    assert_eq!(w.state.resources["stream"].id, name);
    assert!(w.plan(AUTO).await.is_empty(), "the name is kept, not generated again");

    let (p, r) = w.up(&AUTO.replace("kind: k1", "kind: k2")).await;
    assert!(r.ok());
    assert_eq!(p.steps[0].op, Op::Replace(ReplaceOrder::CreateBeforeDelete));
    let new = w.state.resources["stream"].id.clone();
    assert_ne!(new, name, "the replacement has a name of its own");
    let writes = w.cloud.writes();
    assert_eq!(
        writes[2..],
        [
            format!("create test:Stream {new}"),
            "update[dimensions] test:Alarm a1".into(),
            format!("delete test:Stream {name}")
        ],
        "the new stream, then the alarm moves to it, then the old one goes"
    );
}

#[tokio::test]
async fn references_reach_id_urn_and_tags_all_and_names_that_are_not_identifiers() {
    let mut w = World::new();
    let yaml = r#"name: demo
resources:
  my.stream:
    type: test:Stream
    name: logical
    properties:
      name: s1
      tags:
        team: data
outputs:
  id: ${["my.stream"].id}
  urn: ${["my.stream"].urn}
  tags: ${["my.stream"].tagsAll.team}
"#;
    let (_, r) = w.up(yaml).await;
    assert!(r.ok());
    assert_eq!(w.state.outputs["id"], json!("s1"));
    assert_eq!(w.state.outputs["urn"], json!("urn:rinfra:demo::test:Stream::logical"), "the URN has the logical name");
    assert_eq!(w.state.outputs["tags"], json!("data"));
}

#[tokio::test]
async fn an_alias_renames_without_replacing() {
    let mut w = World::new();
    w.up(BASE).await;
    let renamed = BASE
        .replace("  stream:\n", "  events:\n    options:\n      aliases: [stream]\n")
        .replace("${stream.", "${events.");
    let mut state = w.state.clone();
    let moved = ops::apply_aliases(&mut state, &w.stack(&renamed));
    assert_eq!(moved, [("stream".to_string(), "events".to_string())]);
    w.state = state;
    let p = w.plan(&renamed).await;
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(w.state.resources["events"].id, "s1");
    assert_eq!(w.state.resources["alarm"].dependencies, ["events"]);
}

#[tokio::test]
async fn replace_on_changes_and_hide_diffs_change_how_an_update_is_planned_and_shown() {
    let mut w = World::new();
    w.up(BASE).await;
    let changed = BASE.replace("metrics: [b, a]", "metrics: [c]");
    assert_eq!(w.plan(&changed).await.steps[0].op, Op::Update);
    let forced = changed
        .replace("      metrics: [c]\n", "      metrics: [c]\n    options:\n      replaceOnChanges: [metrics]\n");
    assert!(w.plan(&forced).await.steps[0].op.is_replace());
    let hidden =
        changed.replace("      metrics: [c]\n", "      metrics: [c]\n    options:\n      hideDiffs: [metrics]\n");
    let p = w.plan(&hidden).await;
    assert_eq!(p.steps[0].op, Op::Update);
    let shown = render::plan(&p, false);
    assert!(shown.contains("hidden by hideDiffs") && !shown.contains("\"c\""), "{shown}");
}

#[tokio::test]
async fn deleted_with_only_forgets_what_goes_with_its_owner() {
    let mut w = World::new();
    let yaml = BASE.replace(
        "        Arn: ${stream.arn}\n",
        "        Arn: ${stream.arn}\n    options:\n      deletedWith: ${stream}\n",
    );
    w.up(&yaml).await;
    assert_eq!(w.state.resources["alarm"].deleted_with.as_deref(), Some("stream"));
    let s = w.stack(&yaml);
    let p = plan::plan_mode(&s, &Resolved::new(&s), &w.state, &w.registry, None, plan::PlanMode::Destroy).unwrap().plan;
    let alarm = p.steps.iter().find(|s| s.name == "alarm").unwrap();
    assert_eq!((alarm.op, alarm.reason.clone()), (Op::Forget, Some(Reason::DeletedWith("stream".into()))));
    // Removing the alarm alone deletes it.
    let only_stream = "name: demo\nresources:\n  stream:\n    type: test:Stream\n    properties:\n      name: s1\n      metrics: [b, a]\n";
    let p = w.plan(only_stream).await;
    assert_eq!(ops_of(&p), [("stream".into(), Op::Same), ("alarm".into(), Op::Delete)]);
}

#[tokio::test]
async fn invokes_are_made_once_when_their_arguments_are_known() {
    let mut w = World::new();
    let yaml = r#"name: demo
variables:
  shout:
    fn::invoke:
      function: test:index/echo:echo
      arguments:
        text: hello
      return: upper
resources:
  stream:
    type: test:Stream
    properties:
      name: s-${shout}
outputs:
  fromStream:
    fn::test:echo:
      text: ${stream.name}
  again:
    fn::invoke:
      function: test:index/echo:echo
      arguments:
        text: hello
"#;
    let s = w.stack(yaml);
    // Before any call, the value is unknown, as in a preview of a value
    // that depends on a resource.
    let mut resolved = Resolved::new(&s);
    let before = plan::plan(&s, &resolved, &w.state, &w.registry, None).unwrap();
    assert!(rinfra_provider::schema::is_unknown(&before.steps[0].inputs.as_ref().unwrap()["name"]));
    let made = crate::resolve::resolve_invokes(&s, &mut resolved, &BTreeMap::new(), &w.registry).await.made;
    assert_eq!(made, 1, "one distinct call with known arguments; the other waits for the stream");
    let p = plan::plan(&s, &resolved, &w.state, &w.registry, None).unwrap();
    assert_eq!(p.steps[0].inputs.as_ref().unwrap()["name"], json!("s-HELLO"));
    let (_, r) = w.up(yaml).await;
    assert!(r.ok());
    assert_eq!(w.state.outputs["fromStream"]["upper"], json!("S-HELLO"), "called once the stream existed");
    assert_eq!(w.state.outputs["again"]["text"], json!("hello"));
}

#[tokio::test]
async fn the_default_providers_region_and_tags_reach_every_resource_that_has_them() {
    let mut w = World::new();
    w.registry.set_defaults(rinfra_provider::Props::from([
        ("region".to_string(), json!("eu-west-1")),
        ("tags".to_string(), json!({"team": "platform", "env": "dev"})),
    ]));
    let yaml = BASE.replace("      metrics: [b, a]\n", "      metrics: [b, a]\n      tags:\n        env: prod\n");
    let (_, r) = w.up(&yaml).await;
    assert!(r.ok());
    let stream = &w.state.resources["stream"].inputs;
    assert_eq!(stream["region"], json!("eu-west-1"));
    assert_eq!(stream["tags"], json!({"env": "prod", "team": "platform"}), "the resource's own tags win");
    assert!(!w.state.resources["alarm"].inputs.contains_key("region"), "only where the schema has it");
    // A record from before regions were recorded is taken to be in the
    // default region: no replacement.
    w.state.resources.get_mut("stream").unwrap().inputs.remove("region");
    assert!(w.plan(&yaml).await.is_empty());
}

#[tokio::test]
async fn a_resource_read_with_get_is_referenced_and_never_managed() {
    let mut w = World::new();
    w.up(BASE).await;
    let yaml = r#"name: demo
resources:
  shared:
    type: test:Stream
    get:
      id: s1
  alarm2:
    type: test:Alarm
    properties:
      name: a2
      threshold: 2
      dimensions:
        Arn: ${shared.arn}
"#;
    let mut state = StateFile::new(&rinfra_state::StackId::single("other"));
    let s = w.stack(yaml);
    let mut resolved = Resolved::new(&s);
    assert_eq!(crate::resolve::resolve_gets(&s, &mut resolved, &state, &w.registry, true).await.unwrap(), 1);
    let p = plan::plan(&s, &resolved, &state, &w.registry, None).unwrap();
    assert_eq!(ops_of(&p), [("alarm2".into(), Op::Create)], "no step for what is only read");
    assert_eq!(p.steps[0].inputs.as_ref().unwrap()["dimensions"]["Arn"], json!("arn:test:test:Stream:s1"));
    state.resources.insert("shared".into(), w.state.resources["stream"].clone());
    assert!(matches!(plan::plan(&s, &resolved, &state, &w.registry, None), Err(plan::PlanError::ManagedGet { .. })));
    let missing = yaml.replace("id: s1", "id: nope");
    let s = w.stack(&missing);
    assert!(matches!(
        crate::resolve::resolve_gets(&s, &mut Resolved::new(&s), &w.state, &w.registry, true).await,
        Err(plan::PlanError::Get { .. })
    ));
}

#[test]
fn config_shorthand_list_types_and_the_older_configuration_key_are_read() {
    let registry = memory::registry(Arc::new(Cloud::default()));
    let yaml = r#"name: demo
configuration:
  size: 3
  zones:
    type: List<String>
    default: [a, b]
  ports:
    type: List<Integer>
resources:
  stream:
    type: test:Stream
    properties:
      name: s-${zones[1]}
      size: ${size}
"#;
    let overrides = BTreeMap::from([("ports".to_string(), "[80, \"443\"]".to_string())]);
    let s = stack::load(yaml.as_bytes(), &overrides, &registry).unwrap();
    assert_eq!(s.config["size"], json!(3));
    assert_eq!(s.config["zones"], json!(["a", "b"]));
    assert_eq!(s.config["ports"], json!([80, 443]));
    let bad = BTreeMap::from([("ports".to_string(), "[\"http\"]".to_string())]);
    let e = stack::load(yaml.as_bytes(), &bad, &registry).unwrap_err();
    assert!(e.0[0].message.contains("list<integer>"), "{}", e.0[0].message);
}

#[test]
fn aws_default_tags_are_read_as_pulumi_writes_them() {
    use crate::config::default_tags_text;
    let tags = json!({"tags": {"team": "data"}});
    assert_eq!(default_tags_text(&tags).as_deref(), Some(r#"{"team":"data"}"#));
    assert_eq!(default_tags_text(&json!(tags.to_string())).as_deref(), Some(r#"{"team":"data"}"#), "as JSON text");
    for bad in [json!({"team": "data"}), json!({"tags": {"n": 1}}), json!("not json"), json!({"tags": {}, "x": 1})] {
        assert_eq!(default_tags_text(&bad), None, "{bad}");
    }
}

#[tokio::test]
async fn a_half_made_resource_in_another_region_is_not_replaced_by_the_next_plan() {
    // Regression: a resource read back after a partial create lost its
    // recorded region, so the next plan took it for one in the default
    // region and replaced it.
    let mut w = World::new();
    w.registry.set_defaults(rinfra_provider::Props::from([("region".to_string(), json!("eu-west-1"))]));
    let yaml = BASE.replace("      metrics: [b, a]\n", "      metrics: [b, a]\n      region: ap-south-1\n");
    w.cloud.partial_create.lock().unwrap().insert("s1".into());
    let (_, r) = w.up(&yaml).await;
    assert!(!r.ok());
    assert_eq!(w.state.resources["stream"].inputs["region"], json!("ap-south-1"));
    w.cloud.partial_create.lock().unwrap().clear();
    let p = w.plan(&yaml).await;
    assert_eq!(p.steps[0].op, Op::Update, "{:?}", p.steps[0].changes);
}
