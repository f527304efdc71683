//! Bad projects, stack names, config files and passphrases are refused by
//! the real binary with a clear message, exit code 1, no connection to the
//! cloud and nothing written. The messages are snapshot-tested.

use crate::support::counting_endpoint;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;

const PROGRAM: &str = "name: proj
runtime: yaml
config:
  prefix:
    type: String
  shards:
    type: Integer
    default: 1
resources:
  stream:
    type: aws:kinesis:Stream
    properties:
      name: ${prefix}-stream
      shardCount: ${shards}
";

const VECTOR_SALT: &str = include_str!("../../state/tests/vector/encryptionsalt.txt");
const VECTOR_SECRET: &str = include_str!("../../state/tests/vector/secret.txt");

/// Every file under `dir`, with its content.
fn snapshot_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Runs `args` in a project made of `files`; checks the refusal and
/// returns stderr.
fn refused(files: &[(&str, &str)], pass: Option<&str>, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let before = snapshot_of(dir.path());
    let (url, count) = counting_endpoint();
    let mut cmd = crate::support::project_command(dir.path(), &url, args);
    if let Some(p) = pass {
        cmd.env("RINFRA_CONFIG_PASSPHRASE", p);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(count.load(Ordering::SeqCst), 0, "the cloud was called: {stderr}");
    assert_eq!(snapshot_of(dir.path()), before, "something was written: {stderr}");
    stderr.replace(&dir.path().display().to_string(), "[dir]")
}

#[test]
fn an_unknown_stack_suggests_stack_init() {
    let e = refused(
        &[("Pulumi.yaml", PROGRAM), ("Pulumi.dev.yaml", "config:\n  proj:prefix: a\n")],
        None,
        &["up", "--yes", "-s", "prod"],
    );
    insta::assert_snapshot!("project_unknown_stack", e);
}

#[test]
fn no_selected_stack_lists_the_stacks() {
    let e =
        refused(&[("Pulumi.yaml", PROGRAM), ("Pulumi.dev.yaml", "config:\n  proj:prefix: a\n")], None, &["preview"]);
    insta::assert_snapshot!("project_none_selected", e);
}

#[test]
fn an_undeclared_config_key_gets_did_you_mean() {
    let e = refused(
        &[("Pulumi.yaml", PROGRAM), ("Pulumi.dev.yaml", "config:\n  proj:prefix: a\n  proj:shard: 2\n")],
        None,
        &["up", "--yes", "-s", "dev"],
    );
    insta::assert_snapshot!("project_undeclared_key", e);
}

#[test]
fn a_config_value_of_the_wrong_type_is_located() {
    let e = refused(
        &[("Pulumi.yaml", PROGRAM), ("Pulumi.dev.yaml", "config:\n  proj:prefix: a\n  proj:shards: many\n")],
        None,
        &["up", "--yes", "-s", "dev"],
    );
    insta::assert_snapshot!("project_wrong_type", e);
}

#[test]
fn a_secure_value_with_the_wrong_passphrase_is_refused() {
    let file = format!(
        "encryptionsalt: {}\nconfig:\n  proj:prefix:\n    secure: {}\n",
        VECTOR_SALT.trim(),
        VECTOR_SECRET.trim()
    );
    let e =
        refused(&[("Pulumi.yaml", PROGRAM), ("Pulumi.dev.yaml", &file)], Some("wrong"), &["up", "--yes", "-s", "dev"]);
    insta::assert_snapshot!("project_wrong_passphrase", e);
    let e = refused(&[("Pulumi.yaml", PROGRAM), ("Pulumi.dev.yaml", &file)], None, &["up", "--yes", "-s", "dev"]);
    insta::assert_snapshot!("project_missing_passphrase", e);
}

#[test]
fn a_stack_config_file_with_yaml_errors_is_located() {
    let e = refused(
        &[("Pulumi.yaml", PROGRAM), ("Pulumi.dev.yaml", "config:\n  proj:prefix: [unclosed\n")],
        None,
        &["up", "--yes", "-s", "dev"],
    );
    insta::assert_snapshot!("project_config_yaml_error", e);
}

#[test]
fn a_stack_config_file_of_another_project_is_refused() {
    let e = refused(
        &[("Pulumi.yaml", PROGRAM), ("Pulumi.dev.yaml", "config:\n  other:prefix: a\n")],
        None,
        &["up", "--yes", "-s", "dev"],
    );
    insta::assert_snapshot!("project_other_projects_config", e);
}

#[test]
fn a_state_of_another_project_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.json");
    rinfra_state::save(&path, &mut rinfra_state::StateFile::new(&rinfra_state::StackId::of("other", "dev"))).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let e = refused(
        &[("Pulumi.yaml", PROGRAM), ("Pulumi.dev.yaml", "config:\n  proj:prefix: a\n"), (".rinfra/dev.json", &text)],
        None,
        &["up", "--yes", "-s", "dev"],
    );
    insta::assert_snapshot!("project_foreign_state", e);
}

#[test]
fn a_name_that_is_both_a_file_and_a_stack_is_an_error() {
    let e = refused(
        &[("Pulumi.yaml", PROGRAM), ("Pulumi.dev.yaml", "config:\n  proj:prefix: a\n"), ("dev", PROGRAM)],
        None,
        &["up", "--yes", "-s", "dev"],
    );
    insta::assert_snapshot!("project_ambiguous_stack", e);
}

#[test]
fn config_set_checks_the_key_and_the_type() {
    let files = [("Pulumi.yaml", PROGRAM), ("Pulumi.dev.yaml", "config:\n  proj:prefix: a\n")];
    let e = refused(&files, None, &["config", "set", "-s", "dev", "prefx", "b"]);
    insta::assert_snapshot!("config_set_undeclared", e);
    let e = refused(&files, None, &["config", "set", "-s", "dev", "shards", "two"]);
    insta::assert_snapshot!("config_set_wrong_type", e);
}

#[test]
fn a_project_file_with_yaml_errors_is_located() {
    let broken = "name: proj\nruntime: yaml\noutputs:\n  x: {fn::toBase64: ${y}}\n";
    let e = refused(&[("Pulumi.yaml", broken), ("Pulumi.dev.yaml", "config: {}\n")], None, &["preview", "-s", "dev"]);
    insta::assert_snapshot!("project_file_yaml_error", e);
}
