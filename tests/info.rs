//! `totalseg info` prints what the official `totalseg_info` prints (fixtures/info, made by
//! tools/fixtures/make_info_fixtures.py from the official code, with the developer task
//! `test` left out of its task list as totalseg-rs leaves it out).

use std::process::Command;

#[test]
fn info_output_equals_the_official_one() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/info/cases.json"),
    )
    .expect("fixture");
    let cases: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let cases = cases["cases"].as_array().expect("cases");
    assert!(cases.len() >= 7);
    for case in cases {
        let args: Vec<&str> = case["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().expect("arg"))
            .collect();
        let output = Command::new(env!("CARGO_BIN_EXE_totalseg"))
            .arg("info")
            .args(&args)
            .output()
            .expect("totalseg runs");
        assert!(output.status.success(), "{args:?}");
        assert_eq!(
            String::from_utf8(output.stdout).expect("utf-8"),
            case["stdout"].as_str().expect("stdout"),
            "totalseg info {args:?}"
        );
    }
}

#[test]
fn classes_need_a_task() {
    let output = Command::new(env!("CARGO_BIN_EXE_totalseg"))
        .args(["info", "-cl"])
        .output()
        .expect("totalseg runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--classes requires --task"));
    let output = Command::new(env!("CARGO_BIN_EXE_totalseg"))
        .args(["info", "-cl", "-ta", "totl"])
        .output()
        .expect("totalseg runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("total"));
}
