//! `cargo xtask dist merge --out DIR PART...`: combines dist folders built per arch (one CI job
//! each) into the folder one `dist` run over the same arches would have written, byte for byte.
//! Each part is checked on its own (a dist folder, its checksums hold, its generated files are
//! what this checkout generates), then against the others (one release, no arch twice); only
//! then are the per-artifact files copied and the shared files regenerated from the manifest.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::Shell;

use crate::flags;
use crate::project::config::Config;
use crate::project::matrix;
use crate::project::workspace::{ProjectFacts, Workspace};
use crate::release::dist_dir::DistDir;
use crate::release::dist_signing;
use crate::release::files;
use crate::release::layout::{self, DOCKERFILE_RELEASE, INSTALL_SH, MANIFEST_FILE, SHARED_FILES, SUMS_FILE};
use crate::release::manifest::{Artifact, Manifest};
use crate::release::provenance;
use crate::sign::Signing;
use crate::util::report::short;
use crate::util::staging::Staging;

/// One input folder, read and checked on its own.
#[derive(Debug)]
pub struct Part {
    /// As given on the command line, for messages.
    pub label: String,
    pub dir: Utf8PathBuf,
    pub manifest: Manifest,
    /// Per artifact (by archive name): the archive and every file named after it.
    pub files: BTreeMap<String, Vec<String>>,
}

/// Everything `merge` will do, decided before anything is written, with every input it needs
/// read up front: `--dry-run` prints this value and a run executes it.
pub struct MergePlan {
    pub out_dir: Utf8PathBuf,
    pub manifest: Manifest,
    /// Per artifact, in matrix order.
    pub copies: Vec<ArtifactCopy>,
    /// The digests the regenerated provenance records.
    pub inputs: provenance::Inputs,
    pub signing: Signing,
}

/// The files of one artifact, copied from the part that holds it.
#[derive(Debug, PartialEq, Eq)]
pub struct ArtifactCopy {
    pub arch: String,
    pub part: String,
    pub from: Utf8PathBuf,
    pub files: Vec<String>,
}

impl flags::DistMerge {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let ws = Workspace::load(sh)?;
        let facts = ws.project_facts();
        let out_dir = DistDir::chosen(&ws, self.out)?.path().to_path_buf();
        for part in &self.parts {
            if same_folder(part, &out_dir) {
                bail!("--out {out_dir} is also the part {part}; write the merged folder somewhere else");
            }
        }
        let signing = Signing::resolve(
            &ws.root,
            &ws.config.sign,
            self.sign.sign_key.as_deref(),
            self.sign.keyless,
            self.dry_run,
        )?;
        let parts = self.parts.iter().map(|dir| read_part(dir)).collect::<Result<Vec<Part>>>()?;
        if let (None, Some(signed)) = (signing.key(), parts.iter().find(|p| p.manifest.signature.is_some())) {
            bail!(
                "part {} is signed, and the merged {SUMS_FILE} would not be: pass --sign-key KEY (or set \
                 [sign] in release.toml) so the merged release is signed too",
                signed.label
            );
        }
        // The parts must agree with each other (commit, version) before each is checked against
        // what this checkout generates: the first disagreement is the one worth naming.
        let plan = MergePlan::new(&parts, out_dir, provenance::Inputs::read(&ws.root)?, signing)?;
        for part in &parts {
            check_generated_files(part, &ws.config, &facts)?;
        }
        print!("{}", plan.render());
        if self.dry_run {
            return Ok(());
        }
        plan.execute(&ws.config, &facts)
    }
}

fn same_folder(a: &Utf8Path, b: &Utf8Path) -> bool {
    match (a.canonicalize_utf8(), b.canonicalize_utf8()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Reads one part and checks it on its own: a dist folder whose files match its checksums,
/// holding only per-artifact files besides the shared ones.
pub fn read_part(dir: &Utf8Path) -> Result<Part> {
    let label = dir.to_string();
    if !dir.is_dir() {
        bail!("part {label}: not a folder; pass folders made by `cargo xtask dist --arch NAME --out DIR`");
    }
    let part = DistDir::at(dir);
    if !part.manifest_path().is_file() {
        bail!(
            "part {label}: not a dist folder (it has no {MANIFEST_FILE}); pass folders made by \
             `cargo xtask dist --arch NAME --out DIR`"
        );
    }
    let problems = part.problems().with_context(|| format!("part {label}: cannot check it"))?;
    if !problems.is_empty() {
        bail!(
            "part {label} fails its own checksums, so it was changed or damaged after `dist` wrote it; \
             build or download it again:\n  {}",
            problems.join("\n  ")
        );
    }
    let manifest = part.read_manifest().with_context(|| format!("part {label}"))?;

    let mut files: BTreeMap<String, Vec<String>> =
        manifest.artifacts.iter().map(|a| (a.name.clone(), Vec::new())).collect();
    for entry in dir.read_dir_utf8().with_context(|| format!("part {label}: cannot list {dir}"))? {
        let name = entry.with_context(|| format!("part {label}: cannot list {dir}"))?.file_name().to_string();
        // Shared files are regenerated, and the signature files made again by merge's own key.
        if layout::is_folder_file(&name) {
            continue;
        }
        match owner(&manifest.artifacts, &name) {
            Some(archive) => files.get_mut(archive).expect("one entry per artifact").push(name),
            None => bail!(
                "part {label}: {name} belongs to no artifact (its name does not start with an archive's \
                 name), so merge cannot tell how to combine it; remove it or rebuild the part with this xtask"
            ),
        }
    }
    for names in files.values_mut() {
        names.sort();
    }
    Ok(Part { label, dir: dir.to_path_buf(), manifest, files })
}

/// A part's Dockerfile.release and install.sh must be what this checkout's release.toml and
/// templates generate from its manifest: otherwise the merged ones would not be what `dist`
/// wrote for the part.
fn check_generated_files(part: &Part, config: &Config, facts: &ProjectFacts) -> Result<()> {
    let (label, manifest) = (&part.label, &part.manifest);
    for (file, expected) in [
        (DOCKERFILE_RELEASE, files::dockerfile_release(manifest, config, facts)?),
        (INSTALL_SH, files::install_sh(manifest, config)?),
    ] {
        let path = part.dir.join(file);
        let actual =
            std::fs::read_to_string(&path).with_context(|| format!("part {label}: cannot read {path}"))?;
        if actual != expected {
            bail!(
                "part {label}: its {file} is not the one this checkout generates for its manifest, so it was \
                 built with another release.toml or xtask; merge from the checkout that built the parts, \
                 or rebuild them from this one"
            );
        }
    }
    Ok(())
}

/// The archive a file belongs to (see `layout::belongs_to`).
fn owner<'a>(artifacts: &'a [Artifact], file: &str) -> Option<&'a str> {
    artifacts.iter().find(|a| layout::belongs_to(file, &a.name, &a.package_names())).map(|a| a.name.as_str())
}

/// Checks that the parts are one release with no arch twice, and returns the manifest one
/// `dist` run over all their arches would write: the same release, artifacts in matrix order.
pub fn merge_manifests(parts: &[(&str, &Manifest)]) -> Result<Manifest> {
    let Some(&(first_label, first)) = parts.first() else {
        bail!("no parts to merge; pass the dist folders: cargo xtask dist merge --out DIR PART...");
    };
    for &(label, manifest) in &parts[1..] {
        let differs = |what: &str, theirs: &str, ours: &str| {
            anyhow::anyhow!(
                "part {label} is {what} {theirs}, but part {first_label} is {what} {ours}; every part must \
                 be built from the same checkout (rebuild {label})"
            )
        };
        if manifest.name != first.name {
            return Err(differs("a build of", &manifest.name, &first.name));
        }
        if manifest.version != first.version {
            return Err(differs("version", &manifest.version, &first.version));
        }
        if manifest.commit != first.commit {
            return Err(differs("from commit", short(&manifest.commit), short(&first.commit)));
        }
        if manifest.source_date_epoch != first.source_date_epoch {
            return Err(differs(
                "dated (SOURCE_DATE_EPOCH)",
                &manifest.source_date_epoch.to_string(),
                &first.source_date_epoch.to_string(),
            ));
        }
    }

    let release = first.release();
    // arch -> (index, label) of the part that has it
    let mut seen: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    let mut artifacts: Vec<(usize, Artifact)> = Vec::new();
    for (index, &(label, manifest)) in parts.iter().enumerate() {
        for artifact in &manifest.artifacts {
            let arch = matrix::by_name(&artifact.arch).with_context(|| {
                format!(
                    "part {label}: arch {:?} is not in the matrix ({})",
                    artifact.arch,
                    matrix::names().join(", ")
                )
            })?;
            let expected = layout::archive_name(&release, arch.target);
            if artifact.target != arch.target || artifact.name != expected {
                bail!(
                    "part {label}: the {} artifact {} ({}) is not what dist names that arch ({}, {})",
                    arch.name,
                    artifact.name,
                    artifact.target,
                    expected,
                    arch.target
                );
            }
            if let Some((other_index, other)) = seen.insert(arch.name, (index, label)) {
                if other_index == index {
                    bail!("part {label} lists arch {} twice in its {MANIFEST_FILE}", arch.name);
                }
                let hint =
                    if other == label { "the same folder is passed twice" } else { "pass each arch once" };
                bail!("arch {} is in part {other} and in part {label}; {hint}", arch.name);
            }
            artifacts.push((matrix::rank(arch), artifact.clone()));
        }
    }
    artifacts.sort_by_key(|(rank, _)| *rank);
    Ok(Manifest::new(&release, artifacts.into_iter().map(|(_, a)| a).collect()))
}

impl ArtifactCopy {
    /// `NAME.tar.gz (+ .cdx.json, .sha256)`
    fn describe(&self) -> String {
        let Some((archive, others)) = self.files.split_first() else { return String::new() };
        let others: Vec<&str> = others.iter().filter_map(|f| f.strip_prefix(archive.as_str())).collect();
        if others.is_empty() {
            archive.clone()
        } else {
            format!("{archive} (+ {})", others.join(", "))
        }
    }
}

impl MergePlan {
    pub fn new(
        parts: &[Part],
        out_dir: Utf8PathBuf,
        inputs: provenance::Inputs,
        signing: Signing,
    ) -> Result<MergePlan> {
        let labelled: Vec<(&str, &Manifest)> =
            parts.iter().map(|p| (p.label.as_str(), &p.manifest)).collect();
        let manifest = merge_manifests(&labelled)?;
        let copies = manifest
            .artifacts
            .iter()
            .map(|artifact| {
                let part = parts
                    .iter()
                    .find(|p| p.manifest.artifacts.iter().any(|a| a.name == artifact.name))
                    .expect("every merged artifact comes from a part");
                ArtifactCopy {
                    arch: artifact.arch.clone(),
                    part: part.label.clone(),
                    from: part.dir.clone(),
                    files: part.files[&artifact.name].clone(),
                }
            })
            .collect();
        Ok(MergePlan { out_dir, manifest, copies, inputs, signing })
    }

    pub fn render(&self) -> String {
        let m = &self.manifest;
        let mut out = format!(
            "merge plan: {} {} from commit {} (source date {})\noutput: {} (assembled aside, renamed into place when complete)\n",
            m.name,
            m.version,
            short(&m.commit),
            m.source_date,
            self.out_dir
        );
        for copy in &self.copies {
            let _ = writeln!(out, "  {:<8} from {}: {}", copy.arch, copy.part, copy.describe());
        }
        let _ = writeln!(out, "  then:  {}", SHARED_FILES.join(", "));
        out.push_str(&dist_signing::plan_line(&self.signing, &self.out_dir));
        out
    }

    fn execute(&self, config: &Config, facts: &ProjectFacts) -> Result<()> {
        let (inputs, signing) = (&self.inputs, &self.signing);
        let staging = Staging::create(&self.out_dir, MANIFEST_FILE)?;
        for copy in &self.copies {
            for name in &copy.files {
                let (from, to) = (copy.from.join(name), staging.dir.join(name));
                std::fs::copy(&from, &to).with_context(|| format!("cannot copy {from} to {to}"))?;
            }
        }
        files::write_all(&staging.dir, &self.manifest, config, facts, inputs, signing.key())?;
        dist_signing::finish(signing, &staging.dir)?;
        // The parts were verified; this catches a part changed while it was being copied.
        let problems = DistDir::at(&staging.dir).problems()?;
        if !problems.is_empty() {
            bail!(
                "the merged folder does not verify (was a part changed meanwhile?):\n  {}",
                problems.join("\n  ")
            );
        }
        let dest = staging.commit()?;
        let parts: BTreeSet<&str> = self.copies.iter().map(|c| c.part.as_str()).collect();
        println!(
            "merged {} archives from {} part(s), with {MANIFEST_FILE}, {DOCKERFILE_RELEASE}, {INSTALL_SH}, \
             {SUMS_FILE}, into {dest}",
            self.copies.len(),
            parts.len()
        );
        Ok(())
    }
}

#[cfg(test)]
mod synthetic_tests {
    use super::*;
    use crate::fixtures::{self, write_dist, write_dist_of};

    fn files(dir: &Utf8Path) -> BTreeMap<String, Vec<u8>> {
        dir.read_dir_utf8()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().to_string(), std::fs::read(e.path()).unwrap())
            })
            .collect()
    }

    #[test]
    fn two_parts_merge_into_the_bytes_of_one_run_and_the_plan_says_so() {
        let root = fixtures::scratch("merge-parts");
        let (whole, amd64, i386) = (root.join("whole"), root.join("amd64"), root.join("i386"));
        for (dir, arches) in [(&whole, &["amd64", "i386"][..]), (&amd64, &["amd64"]), (&i386, &["i386"])] {
            std::fs::create_dir(dir).unwrap();
            write_dist_of(dir, arches);
        }
        let parts = vec![read_part(&i386).unwrap(), read_part(&amd64).unwrap()];
        let (config, facts) = (fixtures::config(), fixtures::facts());
        for part in &parts {
            check_generated_files(part, &config, &facts).unwrap();
        }
        let out = root.join("merged");
        let plan = MergePlan::new(&parts, out.clone(), fixtures::inputs(), Signing::Unsigned).unwrap();
        let archive = |target: &str| layout::archive_name(&fixtures::release(), target);
        assert_eq!(
            plan.render(),
            format!(
                "merge plan: exonode 1.2.3 from commit c0ffeec0ffee (source date 1970-01-02T00:00:00Z)\n\
                 output: {out} (assembled aside, renamed into place when complete)\n\
                 \x20 amd64    from {amd64}: {} (+ .cdx.json, .sha256)\n\
                 \x20 i386     from {i386}: {} (+ .cdx.json, .sha256)\n\
                 \x20 then:  dist-manifest.json, Dockerfile.release, install.sh, provenance.intoto.json, SHA256SUMS\n\
                 signing: unsigned: no [sign] key in release.toml, no --sign-key\n",
                archive("x86_64-unknown-linux-musl"),
                archive("i686-unknown-linux-musl"),
            )
        );
        plan.execute(&config, &facts).unwrap();
        assert_eq!(files(&out), files(&whole), "merged parts differ from one run");
        let lone = ArtifactCopy {
            arch: "amd64".into(),
            part: "p".into(),
            from: out,
            files: vec!["a.tar.gz".into()],
        };
        assert_eq!(lone.describe(), "a.tar.gz");
    }

    #[test]
    fn a_part_is_a_dist_folder_that_passes_its_own_checks_and_was_generated_here() {
        let root = fixtures::scratch("merge-refusals");
        let err = read_part(&root.join("nope")).unwrap_err().to_string();
        assert!(
            err.ends_with("not a folder; pass folders made by `cargo xtask dist --arch NAME --out DIR`"),
            "{err}"
        );
        let err = read_part(&root).unwrap_err().to_string();
        assert!(err.contains("not a dist folder (it has no dist-manifest.json)"), "{err}");

        let part = root.join("part");
        std::fs::create_dir(&part).unwrap();
        let mut manifest = write_dist(&part);
        assert!(read_part(&part).is_ok());
        std::fs::write(part.join("install.sh"), "#!/bin/sh\necho another installer\n").unwrap();
        let err = format!("{:#}", read_part(&part).unwrap_err());
        assert!(err.contains("fails its own checksums") && err.contains("install.sh: sha256"), "{err}");

        // Resealed, it passes its own checks, but this checkout would not generate that installer.
        fixtures::reseal(&part, &mut manifest);
        let read = read_part(&part).unwrap();
        let err =
            check_generated_files(&read, &fixtures::config(), &fixtures::facts()).unwrap_err().to_string();
        assert!(err.contains("its install.sh is not the one this checkout generates"), "{err}");
    }

    #[test]
    fn the_output_folder_must_not_be_a_part() {
        let root = fixtures::scratch("merge-same");
        let other = root.join("other");
        std::fs::create_dir(&other).unwrap();
        let merge = flags::DistMerge {
            parts: vec![other.clone(), root.join("other/.")],
            out: Some(other.clone()),
            sign: flags::SignFlags { sign_key: None, keyless: false },
            dry_run: true,
        };
        let err = merge.run(&Shell::new().unwrap()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("--out {other} is also the part {other}; write the merged folder somewhere else")
        );
        assert!(same_folder(&root, &root.join("other/..")));
        assert!(!same_folder(&root, &other));
        assert!(!same_folder(&root.join("missing"), &root.join("missing")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::workspace::Release;
    use crate::release::manifest::{Binary, BuiltWith};

    fn release() -> Release {
        Release {
            name: "exonode".into(),
            version: "0.1.0".into(),
            commit: "c".repeat(40),
            source_date_epoch: 86400,
        }
    }

    fn artifact(release: &Release, arch: &str) -> Artifact {
        let target = matrix::by_name(arch).unwrap().target;
        Artifact {
            name: layout::archive_name(release, target),
            target: target.into(),
            arch: arch.into(),
            platform: matrix::by_name(arch).unwrap().platform.to_string(),
            size: 1,
            sha256: "a".repeat(64),
            binary: Binary {
                path: format!("{}/exonode", layout::archive_stem(release, target)),
                size: 1,
                sha256: "b".repeat(64),
            },
            sbom: layout::sbom_name(&layout::archive_name(release, target)),
            built_with: BuiltWith { rustc: "rustc 1.0.0".into(), ..BuiltWith::fixture() },
            run_check: "this host".into(),
            deb: None,
            rpm: None,
        }
    }

    fn part(release: &Release, arches: &[&str]) -> Manifest {
        Manifest::new(release, arches.iter().map(|a| artifact(release, a)).collect())
    }

    #[test]
    fn merged_artifacts_follow_the_matrix_whatever_the_part_order() {
        let r = release();
        let (a, b, c) = (part(&r, &["i386"]), part(&r, &["arm32v5", "amd64"]), part(&r, &["arm64v8"]));
        let merged = merge_manifests(&[("A", &a), ("B", &b), ("C", &c)]).unwrap();
        let arches: Vec<&str> = merged.artifacts.iter().map(|a| a.arch.as_str()).collect();
        assert_eq!(arches, ["amd64", "arm64v8", "arm32v5", "i386"]);
        // The very manifest a single run would write.
        assert_eq!(merged, part(&r, &["amd64", "arm64v8", "arm32v5", "i386"]));
    }

    #[test]
    fn an_arch_in_two_parts_is_refused_naming_both() {
        let r = release();
        let (a, b) = (part(&r, &["amd64"]), part(&r, &["i386", "amd64"]));
        let err = merge_manifests(&[("dist-a", &a), ("dist-b", &b)]).unwrap_err().to_string();
        assert_eq!(err, "arch amd64 is in part dist-a and in part dist-b; pass each arch once");
        let err = merge_manifests(&[("dist-a", &a), ("dist-a", &a)]).unwrap_err().to_string();
        assert!(err.ends_with("the same folder is passed twice"), "{err}");
        let twice = part(&r, &["amd64", "amd64"]);
        let err = merge_manifests(&[("dist-c", &twice)]).unwrap_err().to_string();
        assert_eq!(err, "part dist-c lists arch amd64 twice in its dist-manifest.json");
    }

    #[test]
    fn parts_of_different_releases_are_refused_naming_the_difference() {
        let r = release();
        let a = part(&r, &["amd64"]);
        let cases: [(Release, &str); 4] = [
            (
                Release { commit: "d".repeat(40), ..r.clone() },
                "part B is from commit dddddddddddd, but part A is from commit cccccccccccc",
            ),
            (
                Release { version: "0.2.0".into(), ..r.clone() },
                "part B is version 0.2.0, but part A is version 0.1.0",
            ),
            (
                Release { source_date_epoch: 1, ..r.clone() },
                "part B is dated (SOURCE_DATE_EPOCH) 1, but part A is dated (SOURCE_DATE_EPOCH) 86400",
            ),
            (
                Release { name: "other".into(), ..r.clone() },
                "part B is a build of other, but part A is a build of exonode",
            ),
        ];
        for (other, expected) in cases {
            let b = part(&other, &["i386"]);
            let err = merge_manifests(&[("A", &a), ("B", &b)]).unwrap_err().to_string();
            assert!(err.starts_with(expected), "expected {expected:?}, got {err:?}");
            assert!(err.contains("rebuild B"), "{err}");
        }
    }

    #[test]
    fn artifacts_dist_would_not_write_are_refused() {
        let r = release();
        let mut odd = part(&r, &["amd64"]);
        odd.artifacts[0].arch = "sparc".into();
        let err = merge_manifests(&[("P", &odd)]).unwrap_err().to_string();
        assert!(err.starts_with("part P: arch \"sparc\" is not in the matrix"), "{err}");
        let mut renamed = part(&r, &["amd64"]);
        renamed.artifacts[0].name = "exonode.tar.gz".into();
        let err = merge_manifests(&[("P", &renamed)]).unwrap_err().to_string();
        assert!(err.contains("exonode.tar.gz") && err.contains("not what dist names"), "{err}");
        assert!(merge_manifests(&[]).unwrap_err().to_string().starts_with("no parts"));
    }

    #[test]
    fn files_belong_to_the_archive_they_are_named_after() {
        let r = release();
        let m = part(&r, &["amd64", "i386"]);
        let amd64 = m.artifacts[0].name.as_str();
        assert_eq!(owner(&m.artifacts, amd64), Some(amd64));
        assert_eq!(owner(&m.artifacts, &format!("{amd64}.sha256")), Some(amd64));
        assert_eq!(owner(&m.artifacts, &format!("{amd64}.cdx.json")), Some(amd64));
        // A longer name that merely starts with the archive's is not its file.
        assert_eq!(owner(&m.artifacts, &format!("{amd64}x")), None);
        assert_eq!(owner(&m.artifacts, "notes.txt"), None);
    }
}
