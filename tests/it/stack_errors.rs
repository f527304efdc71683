//! Every malformed stack under `tests/bad_stacks/` is refused by the real
//! binary with a located diagnostic, exit code 1, and no connection to the
//! cloud. The diagnostics are snapshot-tested.

use crate::support::counting_endpoint;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

fn run(root: &Path, stack: &str, url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rinfra"))
        .current_dir(root)
        .args(args)
        .args(["-s", stack, "--endpoint-url", url])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn every_bad_stack_gets_a_located_diagnostic_and_no_api_call() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (url, count) = counting_endpoint();
    // Every bad stack is named `bad`; a state for it must stay untouched.
    let state_dir = tempfile::tempdir().unwrap();
    let state_path = state_dir.path().join("bad.json");
    // A real state, checksum and all, so "untouched" is checked against a
    // file rinfra would have accepted and could have rewritten.
    let mut st = rinfra_state::StateFile::new(&rinfra_state::StackId::single("bad"));
    rinfra_state::save(&state_path, &mut st).unwrap();
    std::fs::remove_file(rinfra_state::backup_path(&state_path)).ok();
    let seed = std::fs::read_to_string(&state_path).unwrap();
    assert!(
        rinfra_state::load(&state_path, &rinfra_state::StackId::single("bad")).unwrap().is_some(),
        "the seed state is valid"
    );
    let state_arg = state_path.display().to_string();
    let mut names: Vec<String> = std::fs::read_dir(root.join("tests/bad_stacks"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 40, "only {} bad stacks", names.len());
    for name in &names {
        let stack = format!("tests/bad_stacks/{name}");
        // `up --yes` is the command that would do the most harm.
        let (code, stdout, stderr) = run(&root, &stack, &url, &["up", "--yes", "--state", &state_arg]);
        assert_eq!(code, 1, "{name} should be refused\n{stdout}\n{stderr}");
        assert!(stdout.is_empty(), "{name}: nothing on stdout, got {stdout}");
        assert!(stderr.contains(&format!("--> {stack}")), "{name}: no location\n{stderr}");
        insta::assert_snapshot!(name.trim_end_matches(".yaml"), stderr);
    }
    assert_eq!(count.load(Ordering::SeqCst), 0, "a bad stack reached the endpoint");
    assert_eq!(std::fs::read_to_string(&state_path).unwrap(), seed, "a bad stack touched the state");
    assert_eq!(std::fs::read_dir(state_dir.path()).unwrap().count(), 1, "no lock, backup or temporary file was left");
}

#[test]
fn a_huge_stack_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    let mut text = String::from("name: huge\nresources: {}\nvariables:\n");
    let mut i = 0;
    while text.len() < 5 * 1024 * 1024 {
        text.push_str(&format!("  v{i}: \"{}\"\n", "x".repeat(200)));
        i += 1;
    }
    std::fs::write(&path, text).unwrap();
    let (url, count) = counting_endpoint();
    let (code, _, stderr) = run(dir.path(), "huge.yaml", &url, &["preview"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("the limit is 4194304 bytes"), "{stderr}");
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[test]
fn plain_http_to_another_host_is_warned_about() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // `validate` never connects, so no traffic leaves this machine.
    let project = root.join("stacks/datacenter");
    let (code, _, stderr) = run(&project, "dev", "http://10.255.0.1:4566", &["validate"]);
    assert_eq!(code, 0);
    assert!(stderr.contains("warning: the endpoint http://10.255.0.1:4566 is plain http"), "{stderr}");
    let (_, _, quiet) = run(&project, "dev", "http://127.0.0.1:4566", &["validate"]);
    assert!(!quiet.contains("warning"), "{quiet}");
}

#[test]
fn corrupt_states_are_refused_and_left_alone() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (url, count) = counting_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let good =
        r#"{"version":1,"stack":"datacenter","serial":1,"lineage":"l","resources":{},"outputs":{},"checksum":"x"}"#;
    // A valid state, checksum and all, of another stack.
    let other = dir.path().join("other.json");
    rinfra_state::save(&other, &mut rinfra_state::StateFile::new(&rinfra_state::StackId::single("xfusion"))).unwrap();
    let foreign = std::fs::read_to_string(&other).unwrap();
    let cases = [
        ("truncated", &good[..40], "is not valid"),
        ("wrong checksum", good, "fails its integrity check"),
        ("wrong version", &good.replace("\"version\":1", "\"version\":7")[..], "has version 7"),
        ("another stack", &foreign[..], "belongs to stack `xfusion`"),
    ];
    for (what, text, message) in cases {
        let path = dir.path().join("state.json");
        std::fs::write(&path, text).unwrap();
        let state = path.display().to_string();
        for cmd in [&["up", "--yes"][..], &["preview"], &["destroy", "--yes"], &["state", "verify"]] {
            let mut args = cmd.to_vec();
            args.extend(["--state", &state]);
            let (code, _, stderr) = run(&root.join("stacks/datacenter"), "dev", &url, &args);
            assert_eq!(code, 1, "{what}: {stderr}");
            assert!(stderr.contains(message), "{what}: {stderr}");
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{what}: the state was written");
        assert!(!dir.path().join("state.json.bak").exists() && !dir.path().join("state.json.lock").exists());
    }
    assert_eq!(count.load(Ordering::SeqCst), 0);
}
