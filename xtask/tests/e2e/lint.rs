//! `cargo xtask lint`, end to end with the real linters: the repository is clean, and a bad
//! Dockerfile, shell script, workflow or template seeded into a copy of it fails the run,
//! named with the linter's finding.

use std::sync::OnceLock;

use camino::{Utf8Path, Utf8PathBuf};

use crate::support::*;

/// `cargo xtask lint` on the repository, run once: it also fetches the linters the other
/// tests use, so they never fetch concurrently.
fn lint_repo() -> &'static str {
    static OUTPUT: OnceLock<String> = OnceLock::new();
    OUTPUT.get_or_init(|| xtask_ok(&["lint", "--dist-dir", shared_dist().as_str()]))
}

#[test]
fn the_repository_is_lint_clean() {
    let out = lint_repo();
    for line in [
        "ok    hadolint          docker/Dockerfile",
        "ok    hadolint          docker/Dockerfile.builder",
        "ok    hadolint          docker/Dockerfile.source",
        "ok    hadolint          Dockerfile.release (generated from xtask/templates/Dockerfile.release.in)",
        "ok    shellcheck        ci/setup-host.sh",
        "ok    shellcheck        ci/test.sh",
        "ok    shellcheck        docker/hooks/build",
        "ok    shellcheck        docker/hooks/push",
        "ok    shellcheck        docker/hooks/common.sh",
        "ok    shellcheck        install.sh (generated from xtask/templates/install.sh.in)",
        "ok    check-jsonschema  .github/workflows/ci.yml",
        "ok    check-jsonschema  .github/workflows/release.yml",
        "ok    check-jsonschema  .github/dependabot.yml",
        "ok    actionlint        .github/workflows/ci.yml",
        "ok    actionlint        .github/workflows/release.yml",
        "ok    zizmor            .github/workflows/ci.yml",
        "ok    zizmor            .github/workflows/release.yml",
        "ok    gitlab-ci-local   .gitlab-ci.yml",
        "ok    systemd verify    packaging/deb/exonode.service",
        "ok    systemd security  packaging/deb/exonode.service",
        "ok    lintian           exonode_0.1.0-1_amd64.deb",
        "ok    lintian           exonode_0.1.0-1_arm64.deb",
        "ok    lintian           exonode_0.1.0-1_armhf.deb",
        "ok    lintian           exonode_0.1.0-1_armel.deb",
        "ok    lintian           exonode_0.1.0-1_i386.deb",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in:\n{out}");
    }
    assert!(out.contains("no findings"), "{out}");

    let plan = xtask_ok(&["lint", "--dry-run"]);
    let workflow = root().join(".github/workflows/ci.yml");
    assert!(
        plan.lines().any(|l| l.ends_with(&format!("--builtin-schema vendor.github-workflows {workflow}"))),
        "{plan}"
    );
    assert!(plan.lines().any(|l| l.contains("shellcheck") && l.ends_with("/install.sh")), "{plan}");
}

/// A copy of the parts of the tree that lint reads (their files, not subfolders).
fn tree_copy(name: &str) -> Utf8PathBuf {
    let tree = scratch(name);
    for dir in [
        "docker",
        "docker/hooks",
        "ci",
        ".ci",
        ".github",
        ".github/workflows",
        "xtask/templates",
        "packaging/deb",
    ] {
        std::fs::create_dir_all(tree.join(dir)).unwrap();
        for entry in root().join(dir).read_dir_utf8().unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), tree.join(dir).join(entry.file_name())).unwrap();
            }
        }
    }
    for file in ["release.toml", ".gitlab-ci.yml"] {
        std::fs::copy(root().join(file), tree.join(file)).unwrap();
    }
    tree
}

/// Lints `tree`, expecting failure; returns (stdout, stderr).
fn lint_fails(tree: &Utf8Path) -> (String, String) {
    let no_packages = tree.join("no-dist");
    let output = xtask(&["lint", "--root", tree.as_str(), "--dist-dir", no_packages.as_str()]);
    assert!(!output.status.success(), "lint --root {tree} should have failed");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_seeded_bad_file_fails_lint_and_is_named() {
    lint_repo();
    let tree = tree_copy("lint-seeded");
    let no_packages = tree.join("no-dist");
    let clean = xtask_ok(&["lint", "--root", tree.as_str(), "--dist-dir", no_packages.as_str()]);
    assert!(clean.contains("no findings"), "{clean}");
    assert!(clean.contains(&format!("skip  lintian           no .deb in {no_packages}")), "{clean}");

    // (file, text, the linters that must fail it, a finding each must name)
    let workflow = ".github/workflows/nightly.yml";
    let seeds: [(&str, &str, &[&str], &[&str]); 5] = [
        (
            "docker/Dockerfile.debug",
            "FROM busybox:1.36\nRUN cd /tmp && touch x\n",
            &["hadolint"],
            &["DL3003"],
        ),
        ("ci/publish.sh", "#!/bin/sh\nset -eu\nrm -rf $1/dist\n", &["shellcheck"], &["SC2086"]),
        (
            workflow,
            "on: push\njobs:\n  build:\n    steps:\n      - run: true\n",
            &["check-jsonschema", "actionlint", "zizmor"],
            &["runs-on", "\"runs-on\" section is missing"],
        ),
        // Schema-valid, but the action is pinned by a tag and runs on a retired runtime; and a
        // `run:` script finding.
        (
            workflow,
            "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      \
             - uses: actions/checkout@v4\n      - run: echo $GITHUB_SHA\n",
            &["actionlint", "zizmor"],
            &["node20", "SC2086", "unpinned-uses"],
        ),
        // Pinned, no credentials kept, but a pull_request_target run checks out the PR's code.
        (
            workflow,
            "on: pull_request_target\npermissions: {}\njobs:\n  build:\n    runs-on: ubuntu-latest\n    \
             steps:\n      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1\n        \
             with:\n          ref: ${{ github.event.pull_request.head.sha }}\n          \
             persist-credentials: false\n      - run: make test\n",
            &["zizmor"],
            &["dangerous-triggers"],
        ),
    ];
    for (file, text, linters, findings) in seeds {
        std::fs::write(tree.join(file), text).unwrap();
        let (stdout, stderr) = lint_fails(&tree);
        for linter in linters {
            assert!(stdout.lines().any(|l| l == format!("FAIL  {linter:<16}  {file}")), "{file}:\n{stdout}");
            assert!(stderr.contains(&format!("{file} ({linter})")), "{stderr}");
        }
        for finding in findings {
            assert!(stdout.contains(finding), "expected {finding} for {file}:\n{stdout}");
        }
        assert!(stderr.contains(&format!("lint: {} of ", linters.len())), "{stderr}");
        std::fs::remove_file(tree.join(file)).unwrap();
    }

    // GitLab's schema, over the pipeline as GitLab expands it: a misspelt keyword in a job, and
    // a `when:` GitLab does not know, in a template the job extends.
    let gitlab_ci = tree.join(".gitlab-ci.yml");
    let text = std::fs::read_to_string(&gitlab_ci).unwrap();
    let broken = format!(
        "{text}\n.late:\n  when: sometimes\nnightly:\n  stage: check\n  extends: .late\n  script: [make]\n  artifact: {{}}\n"
    );
    std::fs::write(&gitlab_ci, broken).unwrap();
    let (stdout, stderr) = lint_fails(&tree);
    assert!(stdout.lines().any(|l| l == "FAIL  gitlab-ci-local   .gitlab-ci.yml"), "{stdout}");
    for finding in
        ["'artifact' property is not expected to be here at nightly", "(found sometimes) at nightly.when"]
    {
        assert!(stdout.contains(finding), "expected {finding}:\n{stdout}");
    }
    assert!(stderr.contains("lint: 1 of "), "{stderr}");
    std::fs::write(&gitlab_ci, &text).unwrap();

    // The unit: a value systemd would ignore (verify exits 0 but says so), and a unit without
    // its sandboxing (exposure above 2.0).
    let unit = tree.join("packaging/deb/exonode.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let weakened: String = text
        .lines()
        .filter(|l| !["Protect", "Private", "SystemCall", "Restrict"].iter().any(|p| l.starts_with(p)))
        .map(|l| format!("{l}\n"))
        .collect();
    for (edited, linter, finding) in [
        (
            text.replace("ProtectSystem=strict", "ProtectSystem=sometimes"),
            "systemd verify",
            "Failed to parse",
        ),
        (weakened, "systemd security", "Overall exposure level"),
    ] {
        std::fs::write(&unit, edited).unwrap();
        let (stdout, stderr) = lint_fails(&tree);
        let file = "packaging/deb/exonode.service";
        assert!(stdout.lines().any(|l| l == format!("FAIL  {linter:<16}  {file}")), "{linter}:\n{stdout}");
        assert!(stdout.contains(finding), "expected {finding}:\n{stdout}");
        assert!(stderr.contains("lint: 1 of "), "{stderr}");
        std::fs::write(&unit, &text).unwrap();
    }

    // Generated files are linted from the tree's templates.
    let template = tree.join("xtask/templates/install.sh.in");
    let text = std::fs::read_to_string(&template).unwrap();
    std::fs::write(&template, text.replace("set -eu\n", "set -eu\ncd $PREFIX\n")).unwrap();
    let (stdout, stderr) = lint_fails(&tree);
    assert!(
        stdout.contains("FAIL  shellcheck        install.sh (generated from xtask/templates/install.sh.in)"),
        "{stdout}"
    );
    assert!(stdout.contains("SC2086"), "{stdout}");
    assert!(
        stderr.contains("install.sh (generated from xtask/templates/install.sh.in) (shellcheck)"),
        "{stderr}"
    );
}
