//! `cargo xtask repo`: a signed apt and rpm repository that real apt (Debian 12, in a container
//! on the host's loopback) and dnf (into a throwaway root) install from and upgrade from, whose
//! indexes match what dpkg-scanpackages and createrepo_c say of the same pools, whose rpms
//! `rpm -K` checks against the key, and that refuses what it must.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use camino::{Utf8Path, Utf8PathBuf};

use crate::support::*;

const PASSPHRASE: &str = "correct horse battery staple";
const DEBIAN_IMAGE: &str = "debian:bookworm-slim";

/// An ed25519 key made by gpg in its own GNUPGHOME: (armored secret key file, fingerprint).
fn gpg_key(dir: &Utf8Path, name: &str, passphrase: &str) -> (Utf8PathBuf, String) {
    let home = dir.join(format!("gnupg-{name}"));
    std::fs::create_dir_all(&home).unwrap();
    let gpg = |args: &[&str]| {
        let mut all = vec![
            "--homedir",
            home.as_str(),
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            passphrase,
        ];
        all.extend_from_slice(args);
        run_ok("gpg", &all)
    };
    gpg(&["--quick-gen-key", &format!("{name} <{name}@example.invalid>"), "ed25519", "sign", "never"]);
    let fingerprint = gpg(&["--list-keys", "--with-colons"])
        .lines()
        .find_map(|l| l.strip_prefix("fpr:::::::::").map(|f| f.trim_end_matches(':').to_string()))
        .unwrap();
    let file = dir.join(format!("{name}.asc"));
    std::fs::write(&file, gpg(&["--armor", "--export-secret-keys"])).unwrap();
    (file, fingerprint)
}

fn repo(from: &[&Utf8Path], into: &Utf8Path, key: &Utf8Path, url: &str) -> std::process::Output {
    let mut args = vec!["repo", "--into", into.as_str(), "--repo-key", key.as_str(), "--url", url];
    for dist in from {
        args.extend(["--from", dist.as_str()]);
    }
    xtask_env(&args, &[("REPO_KEY_PASSPHRASE", PASSPHRASE)])
}

fn repo_ok(from: &[&Utf8Path], into: &Utf8Path, key: &Utf8Path, url: &str) -> String {
    let output = repo(from, into, key, url);
    assert!(output.status.success(), "repo failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn repo_fails(from: &[&Utf8Path], into: &Utf8Path, key: &Utf8Path, url: &str) -> String {
    let output = repo(from, into, key, url);
    assert!(!output.status.success(), "repo succeeded: {}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8(output.stderr).unwrap()
}

/// Every file under `dir` with its bytes' digest: "left as it was" means this is unchanged.
fn tree(dir: &Utf8Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in folder.read_dir_utf8().unwrap() {
            let path = entry.unwrap().path().to_path_buf();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().to_string();
                files.insert(name, sha256_hex(&std::fs::read(&path).unwrap()));
            }
        }
    }
    files
}

/// Release 0.2.0 of amd64, built once for the tests that need a second release.
fn shared_newer_release() -> &'static (Utf8PathBuf, Utf8PathBuf) {
    static NEWER: std::sync::OnceLock<(Utf8PathBuf, Utf8PathBuf)> = std::sync::OnceLock::new();
    NEWER.get_or_init(|| newer_release(&scratch("repo-newer-release"), "0.2.0"))
}

/// The release after the shared dist's: a checkout whose workspace version is `version`,
/// built for amd64 alone. Returns the checkout and the dist.
fn newer_release(dir: &Utf8Path, version: &str) -> (Utf8PathBuf, Utf8PathBuf) {
    let checkout = dir.join("checkout");
    checkout_like_root(&checkout);
    let manifest = checkout.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replacen("version = \"0.1.0\"", &format!("version = \"{version}\""), 1))
        .unwrap();
    let lock = checkout.join("Cargo.lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    let text = ["exonode", "xtask"].iter().fold(text, |text, member| {
        text.replace(
            &format!("name = \"{member}\"\nversion = \"0.1.0\""),
            &format!("name = \"{member}\"\nversion = \"{version}\""),
        )
    });
    std::fs::write(&lock, text).unwrap();
    let out = dir.join("dist-newer");
    xtask_in(&checkout, &["dist", "--arch", "amd64", "--out", out.as_str()]);
    (checkout, out)
}

/// The same version built again from another commit: the same file names, other bytes.
fn rebuilt_at_another_commit(dir: &Utf8Path, checkout: &Utf8Path) -> Utf8PathBuf {
    let git = ["-C", checkout.as_str(), "-c", "user.name=t", "-c", "user.email=t@example.invalid"];
    run_ok("git", &[&git[..], &["commit", "--quiet", "--all", "--message", "rebuild"]].concat());
    let out = dir.join("dist-rebuilt");
    xtask_in(checkout, &["dist", "--arch", "amd64", "--out", out.as_str()]);
    out
}

/// A Debian 12 container on the host's network whose only apt source is `sources`.
struct AptClient {
    name: String,
}

impl AptClient {
    fn start(sources: &Utf8Path) -> AptClient {
        let name = unique("apt-client").replace('/', "-");
        let mount = format!("{sources}:/etc/apt/sources.list.d/exonode.sources:ro");
        run_ok(
            "docker",
            &[
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "host",
                "-v",
                &mount,
                DEBIAN_IMAGE,
                "sleep",
                "infinity",
            ],
        );
        let client = AptClient { name };
        client.sh("rm -f /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list");
        client
    }

    fn run(&self, script: &str) -> std::process::Output {
        Command::new("docker").args(["exec", &self.name, "sh", "-c", script]).output().unwrap()
    }

    fn sh(&self, script: &str) -> String {
        let output = self.run(script);
        let text =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "`{script}` failed in the apt client:\n{text}");
        text
    }
}

impl Drop for AptClient {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).output();
    }
}

/// dpkg-scanpackages' stanzas of the pool, by Filename, each as its fields.
fn scanpackages(repo: &Utf8Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let output = Command::new("dpkg-scanpackages")
        .args(["--multiversion", "pool", "/dev/null"])
        .current_dir(repo)
        .output()
        .expect("cannot run dpkg-scanpackages (apt-get install dpkg-dev)");
    assert!(output.status.success());
    stanzas(&String::from_utf8(output.stdout).unwrap())
}

fn stanzas(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    text.split("\n\n")
        .filter(|s| !s.trim().is_empty())
        .map(|stanza| {
            let mut fields = BTreeMap::new();
            let mut last = String::new();
            for line in stanza.lines() {
                if line.starts_with(' ') {
                    fields.entry(last.clone()).and_modify(|v: &mut String| v.push_str(&format!("\n{line}")));
                } else {
                    let (name, value) = line.split_once(": ").unwrap();
                    last = name.to_string();
                    fields.insert(last.clone(), value.to_string());
                }
            }
            (fields["Filename"].clone(), fields)
        })
        .collect()
}

fn our_stanzas(repo: &Utf8Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut all = BTreeMap::new();
    for entry in repo.join("dists/stable/main").read_dir_utf8().unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path().join("Packages")).unwrap();
        all.extend(stanzas(&text));
    }
    all
}

#[test]
fn apt_installs_from_the_signed_repository_and_upgrades_keeping_the_edited_settings() {
    require_docker();
    require_tools(&["gpg", "dpkg-scanpackages", "python3"]);
    let dir = scratch("repo-apt");
    let (key, fingerprint) = gpg_key(&dir, "exonode-repo", PASSPHRASE);
    let served = dir.join("www");
    std::fs::create_dir_all(&served).unwrap();
    let server = HttpServer::serve(&served);
    let repo_dir = served.join("apt");
    let url = format!("{}/apt", server.url());

    // A wrong passphrase is named, before anything is written.
    let output = xtask_env(
        &["repo", "--from", shared_dist().as_str(), "--into", repo_dir.as_str(), "--repo-key", key.as_str()],
        &[("REPO_KEY_PASSPHRASE", "wrong")],
    );
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && err.contains("is REPO_KEY_PASSPHRASE its passphrase?"), "{err}");
    assert!(!repo_dir.exists());

    let out = repo_ok(&[shared_dist()], &repo_dir, &key, &url);
    assert!(
        out.starts_with(&format!(
            "repo: exonode 0.1.0 into {repo_dir} (apt suite stable, rpm at rpm/, signed by {fingerprint})\n"
        )),
        "{out}"
    );
    assert!(out.contains(": 9 package(s) added, 0 already there;"), "{out}");
    let first = tree(&repo_dir);

    // The index says of each package what dpkg-scanpackages says (but SHA1, which apt ignores).
    let mut reference = scanpackages(&repo_dir);
    for fields in reference.values_mut() {
        fields.remove("SHA1");
    }
    assert_eq!(our_stanzas(&repo_dir), reference);
    for arch in ["amd64", "armhf"] {
        let folder = repo_dir.join("dists/stable/main").join(format!("binary-{arch}"));
        let packages = std::fs::read_to_string(folder.join("Packages")).unwrap();
        assert_eq!(run_ok("xz", &["-dc", folder.join("Packages.xz").as_str()]), packages);
        assert_eq!(run_ok("gzip", &["-dc", folder.join("Packages.gz").as_str()]), packages);
    }
    // armhf is the ARMv6 build, which runs on every armhf board.
    let armhf = &our_stanzas(&repo_dir)["pool/main/e/exonode/exonode_0.1.0-1_armhf.deb"];
    assert_eq!(armhf["Architecture"], "armhf");
    let pooled = repo_dir.join("pool/main/e/exonode/exonode_0.1.0-1_armhf.deb");
    let unpacked = dir.join("armhf");
    run_ok("dpkg-deb", &["-x", pooled.as_str(), unpacked.as_str()]);
    assert!(std::fs::read(unpacked.join("usr/bin/exonode")).unwrap() == shared_binary("arm32v6"));

    // Adding the same release again changes no byte.
    let again = repo_ok(&[shared_dist()], &repo_dir, &key, &url);
    assert!(again.contains("repo: nothing to add;"), "{again}");
    assert_eq!(tree(&repo_dir), first);

    // apt trusts it through the .sources file alone (the key inline), and installs.
    let client = AptClient::start(&repo_dir.join("exonode.sources"));
    client.sh("apt-get update");
    client.sh("apt-get install -y exonode");
    assert!(client.sh("exonode --version").starts_with("exonode 0.1.0 "));
    client.sh("echo 'EXONODE_ARGS=\"--edited\"' >> /etc/default/exonode");

    // A newer release: upgrade moves to it, the edited settings stay, the older one is kept.
    let (checkout, newer) = shared_newer_release().clone();
    let out = repo_ok(&[&newer], &repo_dir, &key, &url);
    assert!(out.contains(": 1 package(s) added, 0 already there; 10 in all"), "{out}");
    let second = tree(&repo_dir);
    let is_index = |path: &str| path.starts_with("dists/") || path.starts_with("rpm/repodata/");
    for (path, digest) in first.iter().filter(|(path, _)| !is_index(path)) {
        assert_eq!(second.get(path), Some(digest), "{path} changed");
    }
    client.sh("apt-get update");
    client.sh("apt-get upgrade -y");
    assert!(client.sh("exonode --version").starts_with("exonode 0.2.0 "));
    assert!(client.sh("cat /etc/default/exonode").contains("--edited"));
    let policy = client.sh("apt-cache policy exonode");
    assert!(policy.contains("0.1.0-1 500") && policy.contains("*** 0.2.0-1 500"), "{policy}");

    // dnf, from the rpm half through the .repo file alone (packages and metadata both checked
    // against the key it names): the older release installs, upgrade moves to the newer one,
    // and the edited settings (%config(noreplace)) stay.
    let dnf = DnfRoot::new(&dir.join("dnf-root"), &repo_dir.join("exonode.repo"));
    dnf.run_ok(&["install", "exonode-0.1.0"]);
    assert_eq!(dnf.installed(), "exonode-0.1.0-1.x86_64");
    let settings = dnf.root.join("etc/default/exonode");
    let edited = format!("{}EXONODE_ARGS=\"--edited\"\n", std::fs::read_to_string(&settings).unwrap());
    std::fs::write(&settings, &edited).unwrap();
    dnf.run_ok(&["upgrade"]);
    assert_eq!(dnf.installed(), "exonode-0.2.0-1.x86_64");
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), edited);

    // Refused by apt: an index that does not match its Release, and a Release signed by
    // another key than the one in the .sources file.
    let (other_key, _) = gpg_key(&dir, "another", PASSPHRASE);
    let tampered = served.join("tampered");
    copy_tree(&repo_dir, &tampered);
    for index in ["Packages.gz", "Packages.xz"] {
        flip_byte(&tampered.join("dists/stable/main/binary-amd64").join(index), 30);
    }
    let signed_by_other = served.join("other-signer");
    repo_ok(&[shared_dist(), &newer], &signed_by_other, &other_key, &url);
    for (folder, says) in [(&tampered, "Hash Sum mismatch"), (&signed_by_other, "NO_PUBKEY")] {
        let name = folder.file_name().unwrap();
        let output = client.run(&format!(
            "mkdir -p /tmp/{name}/parts /tmp/{name}/lists/partial && \
             sed 's#{url}#{}/{name}#' /etc/apt/sources.list.d/exonode.sources > /tmp/{name}/parts/exonode.sources && \
             apt-get update -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/tmp/{name}/parts \
             -o Dir::State::Lists=/tmp/{name}/lists 2>&1",
            server.url()
        ));
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(!output.status.success() && text.contains(says), "apt took the {name} repository:\n{text}");
    }

    // Refused by repo, the repository left as it was: another signing key, a different file
    // under a name the pool holds, and an index changed by hand.
    let before = tree(&repo_dir);
    let err = repo_fails(&[shared_dist()], &repo_dir, &other_key, &url);
    assert!(err.contains(&format!("{repo_dir} is signed by key {fingerprint}")), "{err}");
    let rebuilt = rebuilt_at_another_commit(&dir, &checkout);
    let err = repo_fails(&[&rebuilt], &repo_dir, &key, &url);
    assert!(
        err.contains(&format!("{repo_dir}/pool/main/e/exonode/exonode_0.2.0-1_amd64.deb holds another file")),
        "{err}"
    );
    assert_eq!(tree(&repo_dir), before);
    // The same refusal from the rpm half, in a copy whose apt half is gone.
    let rpm_only = served.join("rpm-only");
    copy_tree(&repo_dir, &rpm_only);
    for apt_part in ["dists", "pool"] {
        std::fs::remove_dir_all(rpm_only.join(apt_part)).unwrap();
    }
    let err = repo_fails(&[&rebuilt], &rpm_only, &key, &url);
    assert!(
        err.contains(&format!("{rpm_only}/rpm/Packages/e/exonode-0.2.0-1.x86_64.rpm holds another file")),
        "{err}"
    );
    let edited = served.join("edited");
    copy_tree(&repo_dir, &edited);
    flip_byte(&edited.join("dists/stable/main/binary-arm64/Packages"), 10);
    let edited_before = tree(&edited);
    let err = repo_fails(&[&newer], &edited, &key, &url);
    assert!(err.contains("binary-arm64/Packages does not match"), "{err}");
    assert_eq!(tree(&edited), edited_before);
    drop(server);
}

/// A throwaway rpm root that dnf installs into, whose only repository is `repo_file`. A stand-in
/// package provides /bin/sh (what a base system would), and scriptlets are off: there is no
/// shell in the root to run them.
struct DnfRoot {
    root: Utf8PathBuf,
}

impl DnfRoot {
    fn new(root: &Utf8Path, repo_file: &Utf8Path) -> DnfRoot {
        require_tools(&["dnf", "rpm", "rpmbuild"]);
        let repos = root.join("etc/yum.repos.d");
        std::fs::create_dir_all(&repos).unwrap();
        std::fs::copy(repo_file, repos.join("exonode.repo")).unwrap();
        run_ok("rpm", &["--root", root.as_str(), "--initdb"]);
        let base = base_system_rpm(&root.with_file_name(format!("{}-base", root.file_name().unwrap())));
        run_ok("rpm", &["--root", root.as_str(), "-i", "--nodeps", base.as_str()]);
        DnfRoot { root: root.to_path_buf() }
    }

    fn dnf(&self, args: &[&str]) -> std::process::Output {
        let reposdir = format!("--setopt=reposdir={}", self.root.join("etc/yum.repos.d"));
        Command::new("dnf")
            .args(["-y", "--installroot", self.root.as_str(), "--releasever", "12", &reposdir])
            .args(["--setopt=tsflags=noscripts", "--setopt=gpgcheck=1", "--setopt=repo_gpgcheck=1"])
            .args(args)
            .output()
            .expect("cannot run dnf (apt-get install dnf)")
    }

    fn run_ok(&self, args: &[&str]) -> String {
        let output = self.dnf(args);
        let text = output_text(&output);
        assert!(output.status.success(), "dnf {args:?} failed:\n{text}");
        text
    }

    fn run_fails(&self, args: &[&str]) -> String {
        let output = self.dnf(args);
        let text = output_text(&output);
        assert!(!output.status.success(), "dnf {args:?} succeeded:\n{text}");
        text
    }

    fn installed(&self) -> String {
        run_ok("rpm", &["--root", self.root.as_str(), "-q", "exonode"]).trim().to_string()
    }
}

fn output_text(output: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// A noarch rpm that provides /bin/sh, built with rpmbuild in `dir`.
fn base_system_rpm(dir: &Utf8Path) -> Utf8PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let spec = dir.join("base.spec");
    std::fs::write(
        &spec,
        "Name: test-base\nVersion: 1\nRelease: 1\nSummary: stands in for a base system\nLicense: MIT\n\
         BuildArch: noarch\nProvides: /bin/sh\n%description\nProvides what a base system would.\n%files\n",
    )
    .unwrap();
    let top = format!("_topdir {dir}/build");
    run_ok("rpmbuild", &["-bb", "--quiet", "--define", &top, spec.as_str()]);
    dir.join("build/RPMS/noarch/test-base-1-1.noarch.rpm")
}

/// `rpm -K` of `file` with a database holding `keys` (armored public key files) alone.
fn rpm_check(db: &Utf8Path, keys: &[&Utf8Path], file: &Utf8Path) -> std::process::Output {
    let _ = std::fs::remove_dir_all(db);
    std::fs::create_dir_all(db).unwrap();
    for key in keys {
        run_ok("rpm", &["--dbpath", db.as_str(), "--import", key.as_str()]);
    }
    Command::new("rpm").args(["--dbpath", db.as_str(), "-K", file.as_str()]).output().unwrap()
}

/// A metadata file of an rpm repository, decompressed: `repodata/*-<kind>.xml.gz`.
fn metadata(rpm_repo: &Utf8Path, kind: &str) -> String {
    let suffix = format!("-{kind}.xml.gz");
    let entry = rpm_repo
        .join("repodata")
        .read_dir_utf8()
        .unwrap()
        .map(|e| e.unwrap().path().to_path_buf())
        .find(|p| p.as_str().ends_with(&suffix))
        .unwrap_or_else(|| panic!("{rpm_repo}/repodata has no {kind} file"));
    run_ok("gzip", &["-dc", entry.as_str()])
}

#[test]
fn rpms_are_signed_and_indexed_as_rpm_dnf_and_createrepo_c_expect() {
    require_tools(&["gpg", "rpm", "createrepo_c", "dnf", "python3"]);
    let dir = scratch("repo-rpm");
    let (key, _) = gpg_key(&dir, "exonode-repo", PASSPHRASE);
    let (other_key, _) = gpg_key(&dir, "another", PASSPHRASE);
    let served = dir.join("www");
    std::fs::create_dir_all(&served).unwrap();
    let server = HttpServer::serve(&served);
    let repo_dir = served.join("packages");
    let url = format!("{}/packages", server.url());
    let out = repo_ok(&[shared_dist()], &repo_dir, &key, &url);
    assert!(
        out.contains(&format!("repo: {repo_dir}/rpm: 10 rpm(s) added, 0 already there; 10 in all")),
        "{out}"
    );
    let rpms = repo_dir.join("rpm");

    // rpm -K: every package verifies with the repository's key, and (x86_64's shows) with no
    // or another key not.
    let public = repo_dir.join("KEY.asc");
    let other_public = dir.join("another.pub");
    let other_home = dir.join("gnupg-another");
    let exported = run_ok("gpg", &["--homedir", other_home.as_str(), "--armor", "--export"]);
    std::fs::write(&other_public, exported).unwrap();
    let db = dir.join("rpmdb");
    for entry in rpms.join("Packages/e").read_dir_utf8().unwrap() {
        let file = entry.unwrap().path().to_path_buf();
        let checked = rpm_check(&db, &[&public], &file);
        let text = output_text(&checked);
        assert!(checked.status.success() && text.contains("digests signatures OK"), "{text}");
        if !file.as_str().ends_with(".x86_64.rpm") {
            continue;
        }
        for keys in [&[][..], &[other_public.as_path()][..]] {
            let checked = rpm_check(&db, keys, &file);
            let text = output_text(&checked);
            assert!(!checked.status.success() && text.contains("SIGNATURES NOT OK"), "{keys:?}: {text}");
        }
    }

    // The metadata says what createrepo_c says of the same pool, but the file time (createrepo_c
    // takes the file's mtime; ours is the build time, for reproducibility).
    let reference = dir.join("createrepo");
    std::fs::create_dir_all(&reference).unwrap();
    copy_tree(&rpms.join("Packages"), &reference.join("Packages"));
    run_ok("createrepo_c", &["--quiet", "--no-database", reference.as_str()]);
    let comparable = |text: String| -> Vec<String> {
        text.trim_end()
            .lines()
            .map(|line| match line.find("<time file=") {
                Some(_) => line[line.find(" build=").unwrap()..].to_string(),
                None => line.to_string(),
            })
            .collect()
    };
    for kind in ["primary", "filelists", "other"] {
        let ours = comparable(metadata(&rpms, kind));
        let theirs = comparable(metadata(&reference, kind));
        let mut ours_sorted = ours.clone();
        let mut theirs_sorted = theirs.clone();
        ours_sorted.sort();
        theirs_sorted.sort();
        assert_eq!(ours_sorted, theirs_sorted, "{kind} differs from createrepo_c's");
        assert_eq!(ours.len(), theirs.len());
    }
    // createrepo_c --update reads our metadata back and keeps every package.
    let updated = dir.join("updated");
    copy_tree(&rpms, &updated);
    let said = run_ok("createrepo_c", &["--update", "--no-database", updated.as_str()]);
    assert!(said.contains("Loaded information about 10 packages"), "{said}");

    // dnf installs through the .repo file, and refuses a tampered package and metadata that
    // another key signed.
    let dnf = DnfRoot::new(&dir.join("dnf-root"), &repo_dir.join("exonode.repo"));
    dnf.run_ok(&["install", "exonode"]);
    assert_eq!(dnf.installed(), "exonode-0.1.0-1.x86_64");
    let tampered = served.join("tampered");
    copy_tree(&repo_dir, &tampered);
    let package = tampered.join("rpm/Packages/e/exonode-0.1.0-1.x86_64.rpm");
    let length = std::fs::metadata(&package).unwrap().len() as usize;
    flip_byte(&package, length - 100);
    let signed_by_other = served.join("other-signer");
    repo_ok(&[shared_dist()], &signed_by_other, &other_key, &url);
    for (folder, says) in [
        (&tampered, "checksum doesn't match"),
        (&signed_by_other, "repomd.xml GPG signature verification error"),
    ] {
        let name = folder.file_name().unwrap();
        let repo_file = dir.join(format!("{name}.repo"));
        let text = std::fs::read_to_string(repo_dir.join("exonode.repo")).unwrap();
        std::fs::write(&repo_file, text.replace("/packages/rpm", &format!("/{name}/rpm"))).unwrap();
        let client = DnfRoot::new(&dir.join(format!("dnf-{name}")), &repo_file);
        let text = client.run_fails(&["install", "exonode"]);
        assert!(text.contains(says), "dnf took the {name} repository:\n{text}");
    }

    // Refused by repo, the repository left as it was: metadata changed by hand.
    let edited = served.join("edited");
    copy_tree(&repo_dir, &edited);
    let primary = edited
        .join("rpm/repodata")
        .read_dir_utf8()
        .unwrap()
        .map(|e| e.unwrap().path().to_path_buf())
        .find(|p| p.as_str().ends_with("-primary.xml.gz"))
        .unwrap();
    flip_byte(&primary, 20);
    let before = tree(&edited);
    let err = repo_fails(&[shared_dist()], &edited, &key, &url);
    assert!(err.contains("-primary.xml.gz does not match"), "{err}");
    assert_eq!(tree(&edited), before);
    drop(server);
}

#[test]
fn an_interrupted_repo_leaves_the_old_repository_or_the_new_one_and_running_again_finishes() {
    require_tools(&["gpg"]);
    let dir = scratch("repo-interrupted");
    let (key, _) = gpg_key(&dir, "interrupted", PASSPHRASE);
    let url = "http://127.0.0.1:9/packages";
    let old = dir.join("old");
    repo_ok(&[shared_dist()], &old, &key, url);
    let (_, newer) = shared_newer_release();
    let finished = dir.join("finished");
    copy_tree(&old, &finished);
    let started = std::time::Instant::now();
    repo_ok(&[newer], &finished, &key, url);
    let whole_run = started.elapsed();
    let (before, after) = (tree(&old), tree(&finished));
    let is_index = |path: &str| path.starts_with("dists/") || path.starts_with("rpm/repodata/");
    let indexes = |files: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        files.iter().filter(|(path, _)| is_index(path)).map(|(p, d)| (p.clone(), d.clone())).collect()
    };

    // SIGTERM while the dist folder is checked, and while each index is being written (when
    // its staging folder appears): each time, clients find the old index or the new one whole,
    // the pools hold only files of one or the other, and nothing unfinished is left.
    let work = dir.join("work");
    // A signal that comes while an index is being moved into place waits for the move, so a
    // run killed "while writing" may already hold that new index: such a run is consistent
    // too, but it missed the moment, and is tried again.
    let early = [whole_run / 5, whole_run * 3 / 5].map(|delay| (Moment::After(delay), None));
    let writing = [
        (Moment::Staging("dists", ".stable.partial-"), Some("apt old, rpm old")),
        (Moment::Staging("rpm", ".repodata.partial-"), Some("apt new, rpm old")),
    ];
    let mut states = BTreeSet::new();
    for (moment, wanted) in early.iter().chain(&writing) {
        let mut caught = false;
        for _attempt in 0..10 {
            let _ = std::fs::remove_dir_all(&work);
            copy_tree(&old, &work);
            let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
                .args(["repo", "--from", newer.as_str(), "--into", work.as_str(), "--repo-key", key.as_str()])
                .args(["--url", url])
                .env("REPO_KEY_PASSPHRASE", PASSPHRASE)
                .current_dir(root())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            moment.wait(&work, &mut child);
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let status = child.wait().unwrap();
            let now = tree(&work);
            if status.success() {
                assert_eq!(now, after, "a run that finished made another repository");
                continue;
            }
            assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{moment:?}");
            let index = indexes(&now);
            let matches = |prefix: &str, files: &BTreeMap<String, String>| {
                index.iter().filter(|(p, _)| p.starts_with(prefix)).all(|(p, d)| files.get(p) == Some(d))
            };
            let apt = if matches("dists/", &before) { "old" } else { "new" };
            let rpm = if matches("rpm/", &before) { "old" } else { "new" };
            assert!(
                matches("dists/", &before) || matches("dists/", &after),
                "{moment:?}: a mixed index {index:#?}"
            );
            assert!(
                matches("rpm/", &before) || matches("rpm/", &after),
                "{moment:?}: a mixed index {index:#?}"
            );
            for (path, digest) in &now {
                let known = before.get(path) == Some(digest) || after.get(path) == Some(digest);
                assert!(known, "{moment:?}: {path} is no file of either repository");
            }
            let state = format!("apt {apt}, rpm {rpm}");
            if wanted.is_some_and(|wanted| wanted != state) {
                continue;
            }
            states.insert(state);
            caught = true;
            break;
        }
        assert!(caught, "{moment:?}: no run of 10 was stopped at that moment");
    }
    // Killed while writing the rpm index, the apt index is already the new one.
    assert!(states.contains("apt old, rpm old") && states.contains("apt new, rpm old"), "{states:?}");

    // Running again finishes the job, with the same bytes as the run never interrupted.
    repo_ok(&[newer], &work, &key, url);
    assert_eq!(tree(&work), after);
}

/// When a test sends its signal.
#[derive(Debug)]
enum Moment {
    After(std::time::Duration),
    /// When a staging folder whose name starts so appears in this folder of the repository.
    Staging(&'static str, &'static str),
}

impl Moment {
    fn wait(&self, repo: &Utf8Path, child: &mut std::process::Child) {
        match self {
            Moment::After(delay) => std::thread::sleep(*delay),
            Moment::Staging(folder, prefix) => {
                let folder = repo.join(folder);
                while child.try_wait().unwrap().is_none() {
                    let appeared = folder
                        .read_dir_utf8()
                        .into_iter()
                        .flatten()
                        .any(|entry| entry.map(|e| e.file_name().starts_with(prefix)).unwrap_or(false));
                    if appeared {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
            }
        }
    }
}

fn copy_tree(from: &Utf8Path, to: &Utf8Path) {
    run_ok("cp", &["-a", from.as_str(), to.as_str()]);
}

#[test]
fn a_dry_run_prints_the_plan_and_writes_nothing_and_no_key_is_named_with_its_fix() {
    require_tools(&["gpg"]);
    let dir = scratch("repo-dry-run");
    let (key, fingerprint) = gpg_key(&dir, "dry-run", PASSPHRASE);
    let repo_dir = dir.join("apt");
    let output = xtask_env(
        &[
            "repo",
            "--from",
            shared_dist().as_str(),
            "--into",
            repo_dir.as_str(),
            "--repo-key",
            key.as_str(),
            "--dry-run",
        ],
        &[("REPO_KEY_PASSPHRASE", PASSPHRASE)],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let plan = String::from_utf8(output.stdout).unwrap();
    assert!(plan.starts_with(&format!(
        "repo: exonode 0.1.0 into {repo_dir} (apt suite stable, rpm at rpm/, signed by {fingerprint})\n"
    )));
    assert!(
        plan.contains("  add   rpm/Packages/e/exonode-0.1.0-1.armv7hl.rpm (signed and copied, from "),
        "{plan}"
    );
    assert!(plan.contains("  write rpm/repodata/{primary,filelists,other}.xml.gz (10 rpm(s))"), "{plan}");
    assert!(plan.contains("  add   pool/main/e/exonode/exonode_0.1.0-1_armhf.deb (copied, from "), "{plan}");
    assert!(
        plan.contains("  write dists/stable/main/binary-s390x/Packages{,.gz,.xz} (1 package(s))\n"),
        "{plan}"
    );
    // No --url: release.toml's [repo] url is the one written into the .sources and .repo files.
    assert!(plan.ends_with("  write KEY.asc\n  write exonode.sources\n  write exonode.repo\n"), "{plan}");
    assert!(!repo_dir.exists(), "a dry run wrote {repo_dir}");

    let err = xtask_fails(&["repo", "--from", shared_dist().as_str(), "--into", repo_dir.as_str()]);
    assert!(
        err.contains(
            "repo: no signing key: pass --repo-key FILE or set [repo] key = \"FILE\" in release.toml"
        ),
        "{err}"
    );
    let err = xtask_fails(&[
        "repo",
        "--from",
        dir.as_str(),
        "--into",
        repo_dir.as_str(),
        "--repo-key",
        key.as_str(),
    ]);
    assert!(err.contains("REPO_KEY_PASSPHRASE"), "a protected key without its passphrase: {err}");
    assert!(!repo_dir.exists());
}
