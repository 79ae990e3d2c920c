//! A `dist` run executes the steps its `--dry-run` plans, no more, no fewer (each records them
//! in EXOTOOL_RECORD_STEPS): one arch from a fresh state (an empty target dir and tool cache),
//! then warm, and every arch warm, where each build is up to date and cargo is not run.

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};

use crate::support::*;

const RECORD: &str = "EXOTOOL_RECORD_STEPS";

/// What one dry run planned and the real run after it executed, and the folder it wrote.
struct Steps {
    planned: Vec<String>,
    executed: Vec<String>,
    out: Utf8PathBuf,
}

/// `cargo xtask ARGS --dry-run`, then `cargo xtask ARGS`, each recording its steps.
fn plan_then_run(name: &str, args: &[&str], env: &[(&str, &str)]) -> Steps {
    let dir = scratch(name);
    let out = dir.join("dist");
    let (planned, executed) = (dir.join("planned"), dir.join("executed"));
    let mut args = args.to_vec();
    args.extend(["--out", out.as_str()]);

    let dry_run = [&args[..], &["--dry-run"]].concat();
    let recording = [env, &[(RECORD, planned.as_str())]].concat();
    assert!(xtask_env(&dry_run, &recording).status.success(), "the dry run failed");
    assert!(!out.exists(), "a dry run writes nothing");
    let recording = [env, &[(RECORD, executed.as_str())]].concat();
    assert!(xtask_env(&args, &recording).status.success(), "the run failed");
    xtask_ok(&["verify", out.as_str()]);
    Steps { planned: lines(&planned), executed: lines(&executed), out }
}

fn lines(path: &Utf8Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect()
}

/// Steps by what they belong to (`toolchain`, an arch, `then`), in order: arches run side by
/// side, so only each one's own order is fixed.
fn by_owner(steps: &[String]) -> BTreeMap<&str, Vec<&str>> {
    let mut owners: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for step in steps {
        let owner = step.split(':').next().unwrap();
        owners.entry(owner).or_default().push(step);
    }
    owners
}

fn assert_ran_as_planned(steps: &Steps) {
    assert!(!steps.planned.iter().any(|s| s.contains("if rustup refuses")), "{:?}", steps.planned);
    assert_eq!(by_owner(&steps.executed), by_owner(&steps.planned), "executed steps differ from the plan's");
    // The toolchain's steps come first and the files last, whatever the arches' interleaving.
    let phase = |step: &String| match step.split(':').next().unwrap() {
        "toolchain" => 0,
        "then" => 2,
        _ => 1,
    };
    let phases: Vec<i32> = steps.executed.iter().map(phase).collect();
    assert!(phases.windows(2).all(|w| w[0] <= w[1]), "out of order: {:?}", steps.executed);
    assert_eq!(steps.executed.last().map(String::as_str), Some("then:rename"));
}

/// Every file of `a` is in `b` with the same bytes, and the other way round.
fn assert_same_files(a: &Utf8Path, b: &Utf8Path) {
    let names = |dir: &Utf8Path| {
        let mut names: Vec<String> =
            dir.read_dir_utf8().unwrap().map(|e| e.unwrap().file_name().to_string()).collect();
        names.sort();
        names
    };
    assert_eq!(names(a), names(b));
    for name in names(a) {
        assert!(
            std::fs::read(a.join(&name)).unwrap() == std::fs::read(b.join(&name)).unwrap(),
            "{name} differs"
        );
    }
}

#[test]
fn one_arch_from_a_fresh_state_and_again_warm_runs_the_planned_steps() {
    // A target dir of its own: no build, no kept cargo metadata, an empty tool cache.
    let target_dir = scratch("plan-steps-fresh-target");
    let env = [("CARGO_TARGET_DIR", target_dir.as_str())];
    let fresh = plan_then_run("plan-steps-fresh", &["dist", "--arch", "amd64"], &env);
    assert!(fresh.planned.contains(&"amd64:build".to_string()), "{:?}", fresh.planned);
    assert_ran_as_planned(&fresh);

    let warm = plan_then_run("plan-steps-fresh-warm", &["dist", "--arch", "amd64"], &env);
    assert!(warm.planned.contains(&"amd64:up-to-date".to_string()), "nothing changed: {:?}", warm.planned);
    assert!(!warm.planned.contains(&"amd64:build".to_string()));
    assert_ran_as_planned(&warm);
    assert_same_files(&fresh.out, &warm.out);
    let _ = std::fs::remove_dir_all(&target_dir);
}

#[test]
fn every_arch_warm_runs_the_planned_steps_and_gives_the_same_bytes_without_cargo() {
    let shared = shared_dist();
    let warm = plan_then_run("plan-steps-warm", &["dist"], &[]);
    for arch in ALL_ARCHES {
        assert!(warm.planned.contains(&format!("{arch}:up-to-date")), "{arch}: {:?}", warm.planned);
    }
    assert_ran_as_planned(&warm);
    assert_same_files(shared, &warm.out);
}
