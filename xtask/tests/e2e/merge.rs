//! `cargo xtask dist merge`, end to end: dist folders built per arch (as the release workflow's
//! jobs build them) merge into the very bytes one `dist` run writes, and parts that are not
//! one release, overlap, or were changed after `dist` wrote them are refused by name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};

use crate::support::*;

/// `dist merge --out OUT PART...` as arguments for the xtask.
fn merge_args<'a>(out: &'a str, parts: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["dist", "merge", "--out", out];
    args.extend_from_slice(parts);
    args
}

struct Parts {
    /// `dist --arch amd64`
    amd64: Utf8PathBuf,
    /// `dist --arch i386`
    i386: Utf8PathBuf,
    /// `dist --arch amd64 --arch i386`
    both: Utf8PathBuf,
}

/// The three dist runs, built once for these tests (amd64 and i386 build fast with cargo).
fn parts() -> &'static Parts {
    static PARTS: OnceLock<Parts> = OnceLock::new();
    PARTS.get_or_init(|| {
        let base = root().join("target/e2e-shared/merge");
        let parts = Parts { amd64: base.join("amd64"), i386: base.join("i386"), both: base.join("both") };
        // A commit landing between the runs would make them two releases: build them again.
        for _ in 0..3 {
            xtask_ok(&["dist", "--arch", "amd64", "--out", parts.amd64.as_str()]);
            xtask_ok(&["dist", "--arch", "i386", "--out", parts.i386.as_str()]);
            xtask_ok(&["dist", "--arch", "amd64", "--arch", "i386", "--out", parts.both.as_str()]);
            let commits: BTreeSet<String> = [&parts.amd64, &parts.i386, &parts.both]
                .iter()
                .map(|dir| manifest(dir)["commit"].as_str().unwrap().to_string())
                .collect();
            if commits.len() == 1 {
                return parts;
            }
        }
        panic!("HEAD moved during each of three attempts to build the parts");
    })
}

/// Every file of a folder with its bytes.
fn contents(dir: &Utf8Path) -> BTreeMap<String, Vec<u8>> {
    dir.read_dir_utf8()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (entry.file_name().to_string(), std::fs::read(entry.path()).unwrap())
        })
        .collect()
}

fn assert_same_folder(actual: &Utf8Path, expected: &Utf8Path) {
    let (actual_files, expected_files) = (contents(actual), contents(expected));
    assert_eq!(
        actual_files.keys().collect::<Vec<_>>(),
        expected_files.keys().collect::<Vec<_>>(),
        "{actual} and {expected} hold different files"
    );
    for (name, bytes) in &expected_files {
        assert!(actual_files[name] == *bytes, "{actual}/{name} differs from {expected}/{name}");
    }
}

/// Rewrites SHA256SUMS over the folder's files, as `dist` would after a change.
fn rehash(dir: &Utf8Path) {
    let sums: String = contents(dir)
        .into_iter()
        .filter(|(name, _)| name != "SHA256SUMS")
        .map(|(name, bytes)| format!("{:x}  {name}\n", Sha256::digest(&bytes)))
        .collect();
    std::fs::write(dir.join("SHA256SUMS"), sums).unwrap();
}

/// The part's generated text files: manifest, Dockerfile.release, install.sh and the SBOMs.
fn text_files(dir: &Utf8Path) -> Vec<Utf8PathBuf> {
    let mut files: Vec<Utf8PathBuf> =
        ["dist-manifest.json", "Dockerfile.release", "install.sh"].iter().map(|n| dir.join(n)).collect();
    files.extend(contents(dir).into_keys().filter(|n| n.ends_with(".cdx.json")).map(|n| dir.join(n)));
    files
}

/// Replaces `from` with `to` in the part's text files, as if it had been built that way.
fn rewrite(dir: &Utf8Path, from: &str, to: &str) {
    for path in text_files(dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace(from, to)).unwrap();
    }
}

/// Gives the part's manifest and SBOMs another release version, as a build of it would have.
fn set_version(dir: &Utf8Path, version: &str) {
    for path in text_files(dir).into_iter().filter(|p| p.extension() == Some("json")) {
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let field = if json.get("bomFormat").is_some() {
            &mut json["metadata"]["component"]["version"]
        } else {
            &mut json["version"]
        };
        *field = version.into();
        std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    }
}

fn archive_name(dir: &Utf8Path, arch: &str) -> String {
    artifact(dir, arch)["name"].as_str().unwrap().to_string()
}

#[test]
fn merging_per_arch_parts_gives_the_bytes_of_one_run() {
    let parts = parts();
    let out = scratch("merge-equal");
    let merged = out.join("dist");
    let stdout = xtask_ok(&merge_args(merged.as_str(), &[parts.amd64.as_str(), parts.i386.as_str()]));
    assert!(stdout.contains("merged 2 archives from 2 part(s)"), "{stdout}");
    assert_same_folder(&merged, &parts.both);
    xtask_ok(&["verify", merged.as_str()]);

    // Part order does not matter: artifacts follow the arch matrix, as dist writes them.
    let reversed = out.join("reversed");
    xtask_ok(&merge_args(reversed.as_str(), &[parts.i386.as_str(), parts.amd64.as_str()]));
    assert_same_folder(&reversed, &parts.both);

    // A dry run checks and prints the plan, and writes nothing.
    let dry = out.join("dry");
    let plan = xtask_ok(&[
        "dist",
        "merge",
        "--dry-run",
        "--out",
        dry.as_str(),
        parts.amd64.as_str(),
        parts.i386.as_str(),
    ]);
    assert!(plan.contains("merge plan: exonode") && plan.contains("amd64    from"), "{plan}");
    assert!(!dry.exists());
}

#[test]
fn files_named_after_an_archive_travel_with_it() {
    let parts = parts();
    let out = scratch("merge-extra-files");
    // A detached signature beside the archive, say: merge knows nothing of signatures, only
    // that the file is named after the amd64 archive.
    let amd64 = out.join("amd64");
    copy_dir(&parts.amd64, &amd64);
    let signature = format!("{}.sig", archive_name(&amd64, "amd64"));
    std::fs::write(amd64.join(&signature), "-----BEGIN SSH SIGNATURE-----\n").unwrap();
    rehash(&amd64);

    let merged = out.join("dist");
    xtask_ok(&merge_args(merged.as_str(), &[amd64.as_str(), parts.i386.as_str()]));
    assert_eq!(
        std::fs::read(merged.join(&signature)).unwrap(),
        std::fs::read(amd64.join(&signature)).unwrap()
    );
    let sums = std::fs::read_to_string(merged.join("SHA256SUMS")).unwrap();
    assert!(sums.contains(&format!("  {signature}\n")), "{sums}");
    xtask_ok(&["verify", merged.as_str()]);

    // A file that belongs to no archive cannot be merged sensibly: refused, by name.
    std::fs::write(amd64.join("NOTES.txt"), "hello\n").unwrap();
    rehash(&amd64);
    let err = xtask_fails(&merge_args(out.join("notes").as_str(), &[amd64.as_str(), parts.i386.as_str()]));
    assert!(err.contains(&format!("part {amd64}: NOTES.txt belongs to no artifact")), "{err}");
}

#[test]
fn an_arch_in_two_parts_is_refused() {
    let parts = parts();
    let out = scratch("merge-duplicate").join("dist");
    let (amd64, both) = (parts.amd64.as_str(), parts.both.as_str());

    let err = xtask_fails(&merge_args(out.as_str(), &[amd64, amd64]));
    assert!(
        err.contains(&format!(
            "arch amd64 is in part {amd64} and in part {amd64}; the same folder is passed twice"
        )),
        "{err}"
    );
    let err = xtask_fails(&merge_args(out.as_str(), &[amd64, both]));
    assert!(
        err.contains(&format!("arch amd64 is in part {amd64} and in part {both}; pass each arch once")),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn a_part_changed_after_dist_wrote_it_is_refused_naming_part_and_file() {
    let parts = parts();
    let out = scratch("merge-tampered");
    let tampered = out.join("amd64");
    copy_dir(&parts.amd64, &tampered);
    let archive = archive_name(&tampered, "amd64");
    flip_byte(&tampered.join(&archive), 100);

    let err = xtask_fails(&merge_args(out.join("dist").as_str(), &[tampered.as_str(), parts.i386.as_str()]));
    assert!(err.contains(&format!("part {tampered} fails its own checksums")), "{err}");
    assert!(err.contains(&format!("{archive}: sha256")), "{err}");
    assert!(!out.join("dist").exists());
}

#[test]
fn parts_of_another_commit_or_version_are_refused() {
    let parts = parts();
    let out = scratch("merge-other-release");
    let commit = manifest(&parts.i386)["commit"].as_str().unwrap().to_string();
    let other_commit = "f".repeat(40);

    // Only the manifest rewritten: the part no longer matches its own SHA256SUMS.
    let edited = out.join("edited");
    copy_dir(&parts.i386, &edited);
    rewrite(&edited, &commit, &other_commit);
    let err = xtask_fails(&merge_args(out.join("dist").as_str(), &[parts.amd64.as_str(), edited.as_str()]));
    assert!(err.contains(&format!("part {edited} fails its own checksums")), "{err}");
    assert!(err.contains("dist-manifest.json: sha256"), "{err}");

    // Rewritten consistently, as a real build of another commit would be: a different release.
    rehash(&edited);
    xtask_ok(&["verify", edited.as_str()]);
    let err = xtask_fails(&merge_args(out.join("dist").as_str(), &[parts.amd64.as_str(), edited.as_str()]));
    assert!(
        err.contains(&format!(
            "part {edited} is from commit ffffffffffff, but part {} is from commit {}",
            parts.amd64,
            &commit[..12]
        )),
        "{err}"
    );

    let version = manifest(&parts.i386)["version"].as_str().unwrap().to_string();
    let other_version = out.join("version");
    copy_dir(&parts.i386, &other_version);
    set_version(&other_version, "9.9.9");
    rehash(&other_version);
    xtask_ok(&["verify", other_version.as_str()]);
    let err =
        xtask_fails(&merge_args(out.join("dist").as_str(), &[parts.amd64.as_str(), other_version.as_str()]));
    assert!(
        err.contains(&format!(
            "part {other_version} is version 9.9.9, but part {} is version {version}",
            parts.amd64
        )),
        "{err}"
    );
    assert!(!out.join("dist").exists());
}

#[test]
fn folders_that_are_not_dist_outputs_are_refused() {
    let parts = parts();
    let out = scratch("merge-not-dist");
    let notes = out.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("README.md"), "not a dist folder\n").unwrap();
    let err = xtask_fails(&merge_args(out.join("dist").as_str(), &[parts.amd64.as_str(), notes.as_str()]));
    assert!(
        err.contains(&format!("part {notes}: not a dist folder (it has no dist-manifest.json)")),
        "{err}"
    );

    let missing = out.join("missing");
    let err = xtask_fails(&merge_args(out.join("dist").as_str(), &[missing.as_str()]));
    assert!(err.contains(&format!("part {missing}: not a folder")), "{err}");

    // The output may not be one of its own inputs: it would be removed before it is read.
    let err = xtask_fails(&merge_args(parts.amd64.as_str(), &[parts.amd64.as_str(), parts.i386.as_str()]));
    assert!(err.contains("is also the part"), "{err}");
    assert!(parts.amd64.join("dist-manifest.json").exists());
    assert!(!out.join("dist").exists());
}
