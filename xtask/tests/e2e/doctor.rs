//! `cargo xtask doctor` on this host, and on the same host with a tool hidden from PATH: it
//! names what is missing and its fix, and fails only when the release itself needs it. It
//! builds nothing.

use crate::support::*;

fn doctor(args: &[&str], path: Option<&str>) -> (bool, String, String) {
    let env: Vec<(&str, &str)> = path.map(|path| ("PATH", path)).into_iter().collect();
    doctor_env(args, &env)
}

fn doctor_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let args: Vec<&str> = ["doctor"].into_iter().chain(args.iter().copied()).collect();
    let output = xtask_env(&args, env);
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

/// The row of `tool` with the indented lines under it (what needs it, what provides it).
fn line(stdout: &str, tool: &str) -> String {
    let mut lines = stdout
        .lines()
        .skip_while(|l| !(l.split_whitespace().nth(1) == tool.split_whitespace().next() && l.contains(tool)));
    let head = lines.next().unwrap_or_else(|| panic!("no line for {tool}:\n{stdout}"));
    let under: Vec<&str> = lines.take_while(|l| l.starts_with("        ")).map(str::trim).collect();
    [head].into_iter().chain(under).collect::<Vec<_>>().join(" ")
}

#[test]
fn doctor_fits_100_columns() {
    let (_, stdout, _) = doctor(&[], None);
    // Only a word too long to wrap (a command with its paths) may pass the edge.
    for l in stdout.lines() {
        let unbreakable = l.split_whitespace().any(|word| word.len() > 92);
        assert!(l.chars().count() <= 100 || unbreakable, "wider than 100 columns: {l}");
    }
}

#[test]
fn doctor_passes_on_the_test_host_and_reports_as_json() {
    let (ok, stdout, _) = doctor(&["--json"], None);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(ok && report["ready"] == true, "{stdout}");
    let tools = report["tools"].as_array().unwrap();
    for tool in ["qemu-arm-static -cpu arm1176", "qemu-aarch64-static -cpu cortex-a53", "lintian"] {
        let entry = tools.iter().find(|t| t["tool"] == tool).unwrap_or_else(|| panic!("no {tool}: {stdout}"));
        assert_eq!(entry["status"], "found", "{entry}");
        assert!(entry["version"].as_str().is_some_and(|v| !v.is_empty()), "{entry}");
    }
}

#[test]
fn doctor_without_qemu_user_names_the_plan_step_that_fetches_each_emulator() {
    let path = path_without("doctor-without-qemu", |name| name.starts_with("qemu-"));
    let tools = scratch("doctor-without-qemu-tools");
    let (ok, stdout, _) = doctor_env(&[], &[("PATH", &path), ("EXOTOOL_TOOLS_DIR", tools.as_str())]);
    assert!(ok, "dist fetches qemu-user-static itself:\n{stdout}");
    for cpu in ["cortex-a7", "arm1176", "arm926"] {
        let line = line(&stdout, &format!("qemu-arm-static -cpu {cpu}"));
        assert!(line.starts_with("fetch") && line.contains("qemu-user-static from Debian"), "{line}");
    }
    assert!(line(&stdout, "qemu-mips64el-static").starts_with("fetch"), "{stdout}");
}

#[test]
fn doctor_without_qemu_user_or_apt_names_each_emulator_and_its_fix_and_fails() {
    let path = path_without("doctor-without-apt", |name| name.starts_with("qemu-") || name == "apt-get");
    let tools = scratch("doctor-without-apt-tools");
    let (ok, stdout, stderr) = doctor_env(&[], &[("PATH", &path), ("EXOTOOL_TOOLS_DIR", tools.as_str())]);
    assert!(!ok, "a release of foreign arches needs qemu-user:\n{stdout}");
    for cpu in ["cortex-a7", "arm1176", "arm926"] {
        let line = line(&stdout, &format!("qemu-arm-static -cpu {cpu}"));
        assert!(line.starts_with("MISSING") && line.contains("apt-get install qemu-user-static"), "{line}");
        assert!(line.contains("no apt-get"), "{line}");
    }
    assert!(line(&stdout, "qemu-aarch64-static").starts_with("MISSING"), "{stdout}");
    assert!(stdout.lines().last().is_some_and(|l| !l.starts_with("doctor:")), "the verdict is the error");
    assert!(
        stderr.trim_end().ends_with("the fix is on each MISSING line")
            && stderr.contains("error: doctor: not ready: 8 missing"),
        "{stderr}"
    );
}

#[test]
fn doctor_without_cosign_fails_only_when_keyless_signing_needs_it() {
    let path = path_without("doctor-without-cosign", |name| name == "cosign");
    let (ok, stdout, _) = doctor(&[], Some(&path));
    assert!(ok, "cosign is only for --keyless:\n{stdout}");
    let cosign = line(&stdout, "cosign");
    assert!(cosign.starts_with("absent") && cosign.contains("sigstore/cosign-installer"), "{cosign}");
    assert!(stdout.lines().last().unwrap().contains("optional and absent: cosign"), "{stdout}");

    let (ok, stdout, stderr) = doctor(&["--keyless"], Some(&path));
    assert!(!ok && line(&stdout, "cosign").starts_with("MISSING"), "{stdout}");
    assert!(stderr.contains("not ready: 1 missing") && stderr.contains("(cosign)"), "{stderr}");
}
