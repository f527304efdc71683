//! Tests of the command line that need no cloud: the editor schema,
//! completions, the graph, and the state commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rinfra(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rinfra"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        // Nothing here may reach a cloud: point any attempt at a closed port.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn yaml_to_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    rinfra_engine::yaml::parse_bytes(&bytes).unwrap().to_json()
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let (code, generated, _) = rinfra(&root(), &["schema"]);
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(root().join("rinfra.schema.json")).unwrap();
    assert_eq!(generated, committed, "run `rinfra schema > rinfra.schema.json` and commit it");
}

#[test]
fn the_schema_accepts_every_example_stack_and_rejects_bad_ones() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("rinfra.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::draft7::new(&schema).unwrap();
    let mut good = 0;
    for entry in std::fs::read_dir(root().join("stacks")).unwrap().flatten() {
        // Each example is a project; its program is `Pulumi.yaml`.
        let doc = yaml_to_json(&entry.path().join("Pulumi.yaml"));
        let errors: Vec<String> =
            validator.iter_errors(&doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", entry.path().display());
        good += 1;
    }
    assert!(good >= 2);
    // Mistakes that types, enums and ranges catch; cross-property rules
    // and references are the validator's.
    for bad in [
        "property_typo",
        "unknown_nested_key",
        "enum_typo_operator",
        "enum_typo_metric",
        "enum_typo_stream_mode",
        "shard_count_zero",
        "retention_23",
        "retention_8761",
        "period_7",
        "evaluation_periods_zero",
        "unknown_resource_type",
        "unknown_top_level_key",
        "unknown_resource_key",
        "unknown_option",
        "wrong_type_string_for_integer",
        "wrong_type_list_for_map",
        "missing_required_property",
        "missing_resource_type",
        "invalid_stack_name",
    ] {
        let doc = yaml_to_json(&root().join(format!("tests/bad_stacks/{bad}.yaml")));
        assert!(!validator.is_valid(&doc), "{bad} should be rejected by the schema");
    }
}

#[test]
fn completions_generate_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = rinfra(&root(), &["completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("rinfra") && out.contains("preview") && out.contains("detailed-exitcode"), "{shell}");
    }
}

#[test]
fn the_graph_is_dot_with_an_edge_per_dependency() {
    let (code, out, err) = rinfra(&root(), &["graph", "-C", "stacks/datacenter", "-s", "dev"]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("graph_datacenter", out);
}

#[test]
fn state_commands_list_show_move_and_forget() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("stacks/datacenter/Pulumi.yaml"), dir.path().join("stack.yaml")).unwrap();
    let state_path = dir.path().join(".rinfra/datacenter.json");
    let mut state = rinfra_state::StateFile::new(&rinfra_state::StackId::single("datacenter"));
    for (name, type_, deps) in
        [("stream", "aws:kinesis:Stream", vec![]), ("alarm", "aws:cloudwatch:MetricAlarm", vec!["stream".to_string()])]
    {
        state.resources.insert(
            name.into(),
            rinfra_state::ResourceState {
                urn: format!("urn:rinfra:datacenter::{type_}::{name}"),
                type_: type_.into(),
                id: format!("datacenter-{name}"),
                inputs: [("name".to_string(), serde_json::json!(format!("datacenter-{name}")))].into(),
                outputs: [("arn".to_string(), serde_json::json!(format!("arn:{name}")))].into(),
                dependencies: deps,
                protect: false,
                retain_on_delete: false,
                deleted_with: None,
            },
        );
    }
    rinfra_state::save(&state_path, &mut state).unwrap();
    let d = dir.path();

    let (code, out, _) = rinfra(d, &["state", "list", "-s", "stack.yaml"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "alarm   aws:cloudwatch:MetricAlarm    datacenter-alarm\nstream  aws:kinesis:Stream            datacenter-stream\n"
    );
    let (_, out, _) = rinfra(d, &["state", "list", "-s", "stack.yaml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["resources"][1]["id"], "datacenter-stream");

    let (code, out, _) = rinfra(d, &["state", "show", "stream", "-s", "stack.yaml"]);
    assert_eq!(code, 0);
    assert!(out.contains("# stream: aws:kinesis:Stream") && out.contains("arn = \"arn:stream\""), "{out}");
    let (_, out, _) = rinfra(d, &["state", "show", "alarm", "-s", "stack.yaml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["dependencies"], serde_json::json!(["stream"]));
    assert_eq!(rinfra(d, &["state", "show", "nope", "-s", "stack.yaml"]).0, 1);

    let (code, out, _) = rinfra(d, &["state", "mv", "stream", "events", "-s", "stack.yaml"]);
    assert_eq!(code, 0, "{out}");
    let moved = rinfra_state::load(&state_path, &rinfra_state::StackId::single("datacenter")).unwrap().unwrap();
    assert_eq!(moved.resources["events"].urn, "urn:rinfra:datacenter::aws:kinesis:Stream::events");
    assert_eq!(moved.resources["alarm"].dependencies, ["events"]);
    assert_eq!(rinfra(d, &["state", "mv", "alarm", "events", "-s", "stack.yaml"]).0, 1, "no clobbering");

    let (code, _, err) = rinfra(d, &["state", "rm", "events", "-s", "stack.yaml"]);
    assert_eq!(code, 0);
    assert!(err.contains("`alarm` still depend on `events`"), "{err}");
    let left = rinfra_state::load(&state_path, &rinfra_state::StackId::single("datacenter")).unwrap().unwrap();
    assert_eq!(left.resources.keys().collect::<Vec<_>>(), ["alarm"]);
    assert!(!d.join(".rinfra/datacenter.json.lock").exists());
}

#[test]
fn validate_needs_no_credentials_and_speaks_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_rinfra"))
        .current_dir(root())
        .args(["validate", "-C", "stacks/xfusion", "-s", "dev", "--json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"version": 1, "valid": true, "stack": "xfusion/dev", "resources": ["stream", "alarm"]})
    );
}

/// A project in a fresh directory, run without a cloud.
fn project_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

const PROGRAM: &str = "name: proj
runtime: yaml
config:
  token:
    type: String
    secret: true
resources: {}
outputs:
  token: ${token}
";

#[test]
fn a_stack_file_encrypted_by_pulumis_algorithm_decrypts() {
    // The vector was produced by Pulumi's algorithm outside rinfra
    // (state/tests/vector/pulumi_vector.py).
    let salt = include_str!("../../state/tests/vector/encryptionsalt.txt").trim();
    let secret = include_str!("../../state/tests/vector/secret.txt").trim();
    let file = format!("encryptionsalt: {salt}\nconfig:\n  proj:token:\n    secure: {secret}\n");
    let dir = project_dir(&[("Pulumi.yaml", PROGRAM), ("Pulumi.dev.yaml", &file)]);
    let out = Command::new(env!("CARGO_BIN_EXE_rinfra"))
        .current_dir(dir.path())
        .args(["config", "get", "token", "-s", "dev", "--show-secrets"])
        .env_remove("RINFRA_CONFIG_PASSPHRASE")
        .env("PULUMI_CONFIG_PASSPHRASE", "correct horse battery staple")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "s3cr3t-from-pulumi", "{out:?}");
    // And rinfra's own file, read back by the same algorithm.
    let set = Command::new(env!("CARGO_BIN_EXE_rinfra"))
        .current_dir(dir.path())
        .args(["config", "set", "token", "-s", "dev", "--secret", "mine"])
        .env("RINFRA_CONFIG_PASSPHRASE", "correct horse battery staple")
        .output()
        .unwrap();
    assert!(set.status.success(), "{set:?}");
    let text = std::fs::read_to_string(dir.path().join("Pulumi.dev.yaml")).unwrap();
    assert!(text.contains(salt), "the salt is kept: {text}");
    assert!(!text.contains("mine"), "{text}");
    let get = Command::new(env!("CARGO_BIN_EXE_rinfra"))
        .current_dir(dir.path())
        .args(["config", "get", "token", "-s", "dev", "--show-secrets"])
        .env("RINFRA_CONFIG_PASSPHRASE", "correct horse battery staple")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "mine", "{get:?}");
    // A key the program declares secret is stored encrypted even without
    // --secret.
    let plain = Command::new(env!("CARGO_BIN_EXE_rinfra"))
        .current_dir(dir.path())
        .args(["config", "set", "token", "-s", "dev", "in-the-clear"])
        .env("RINFRA_CONFIG_PASSPHRASE", "correct horse battery staple")
        .output()
        .unwrap();
    assert!(plain.status.success(), "{plain:?}");
    assert!(!std::fs::read_to_string(dir.path().join("Pulumi.dev.yaml")).unwrap().contains("in-the-clear"));
}

#[test]
fn stack_export_and_import_check_checksum_stack_and_serial() {
    let dir = project_dir(&[("Pulumi.yaml", "name: proj\nruntime: yaml\nresources: {}\n")]);
    let d = dir.path();
    assert_eq!(rinfra(d, &["stack", "init", "dev"]).0, 0);
    assert_eq!(rinfra(d, &["stack", "init", "prod"]).0, 0);
    // A stack has a state once something writes one.
    assert_eq!(rinfra(d, &["stack", "export", "-s", "dev"]).0, 1);
    assert_eq!(rinfra(d, &["up", "-s", "dev", "--yes"]).0, 0);
    let (code, first, err) = rinfra(d, &["stack", "export", "-s", "dev"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!((v["project"].as_str(), v["stack"].as_str()), (Some("proj"), Some("dev")));
    std::fs::write(d.join("first.json"), &first).unwrap();

    // A round trip succeeds and bumps the serial.
    assert_eq!(rinfra(d, &["stack", "import", "-s", "dev", "--file", "first.json"]).0, 0);
    let (_, second, _) = rinfra(d, &["stack", "export", "-s", "dev"]);
    let serial = |t: &str| serde_json::from_str::<serde_json::Value>(t).unwrap()["serial"].as_u64().unwrap();
    assert_eq!(serial(&second), serial(&first) + 1);
    let history = rinfra(d, &["stack", "history", "-s", "dev"]).1;
    assert!(history.contains("stack import"), "{history}");

    // An older export is refused unless forced.
    let (code, _, err) = rinfra(d, &["stack", "import", "-s", "dev", "--file", "first.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("older than the state's"), "{err}");
    // A damaged one, or another stack's, is refused even with --force.
    std::fs::write(d.join("bad.json"), first.replace("\"dev\"", "\"dav\"")).unwrap();
    let (code, _, err) = rinfra(d, &["stack", "import", "-s", "dev", "--file", "bad.json", "--force"]);
    assert_eq!(code, 1);
    assert!(err.contains("fails its integrity check"), "{err}");
    let (code, _, err) = rinfra(d, &["stack", "import", "-s", "prod", "--file", "first.json", "--force"]);
    assert_eq!(code, 1);
    assert!(err.contains("belongs to stack `proj/dev`, not `proj/prod`"), "{err}");
    assert_eq!(rinfra(d, &["stack", "import", "-s", "dev", "--file", "first.json", "--force"]).0, 0);

    // Selection, listing and removal of an empty stack.
    assert_eq!(rinfra(d, &["stack", "select", "dev"]).0, 0);
    let ls = rinfra(d, &["stack", "ls"]).1;
    assert!(ls.contains("dev*") && ls.contains("prod"), "{ls}");
    assert_eq!(rinfra(d, &["stack", "rm", "dev", "--yes"]).0, 0);
    assert!(!d.join(".rinfra/dev.json").exists());
    let (code, _, err) = rinfra(d, &["preview"]);
    assert_eq!(code, 1);
    assert!(err.contains("no stack selected"), "{err}");
}

#[test]
fn canonical_type_tokens_validate_as_the_short_ones() {
    let program = "name: canon\nruntime: {name: yaml}\nresources:\n  s:\n    type: aws:kinesis/stream:Stream\n    properties:\n      name: s1\n      shardCount: 1\n  a:\n    type: aws:cloudwatch/metricAlarm:MetricAlarm\n    properties:\n      name: a1\n      comparisonOperator: GreaterThanThreshold\n      evaluationPeriods: 1\n      metricName: IncomingBytes\n      namespace: AWS/Kinesis\n      period: 60\n      statistic: Sum\n      threshold: 1\n      dimensions:\n        StreamName: ${s.name}\n";
    let dir = project_dir(&[("canon.yaml", program)]);
    let (code, out, err) = rinfra(dir.path(), &["validate", "-s", "canon.yaml", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["resources"], serde_json::json!(["s", "a"]));
    let (_, out, _) = rinfra(dir.path(), &["graph", "-s", "canon.yaml"]);
    assert!(out.contains("aws:kinesis:Stream"), "recorded by the short token: {out}");
}
