//! `cargo xtask repo --from DIST... --into REPO`: adds the packages of verified dist folders to
//! one signed package repository: the .debs to an apt repository at REPO (apt.rs), the .rpms,
//! signed, to an rpm repository at REPO/rpm (rpm.rs), both signed by one OpenPGP key whose
//! public half is REPO/KEY.asc (sign/openpgp.rs).
//!
//! One plan first (what is added, what is already there, every refusal), then its execution:
//! new packages are copied into the pools (each file renamed into place: an unindexed file is
//! harmless), then each index is written in a staging folder, its signed top file last, and
//! exchanged with the old one in one rename. An interrupted run leaves the previous repository
//! as it was, and running again finishes the job.

mod apt;
mod rpm;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::Shell;

use crate::flags;
use crate::project::config::RepoConfig;
use crate::project::workspace::Workspace;
use crate::release::dist_dir::DistDir;
use crate::release::manifest::Manifest;
use crate::sign::openpgp::{self, RepoKey};
use crate::util::staging;

use self::apt::AptPlan;
use self::rpm::RpmPlan;

const KEY_FILE: &str = "KEY.asc";

impl flags::Repo {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let ws = Workspace::load(sh)?;
        let key = load_key(&ws.root, &ws.config.repo, self.repo_key.as_deref())?;
        let url = self.url.clone().or_else(|| ws.config.repo.url.clone());
        let dists = verify(&self.from)?;
        let plan = RepoPlan::make(&self.into, &ws.config.repo.suite, &dists, &key)?;
        if self.dry_run {
            print!("{}", plan.render(url.as_deref()));
            return Ok(());
        }
        println!("{}", plan.headline());
        if plan.is_noop() {
            println!("repo: nothing to add; {} is unchanged", plan.repo);
            return Ok(());
        }
        plan.execute(&key, url.as_deref())?;
        println!("{}", plan.summary(url.as_deref()));
        Ok(())
    }
}

/// `--repo-key`, else `[repo] key` (relative to the workspace root); the repository is always
/// signed, since apt and dnf refuse an unsigned one unless told to trust it blindly.
fn load_key(root: &Utf8Path, config: &RepoConfig, flag: Option<&Utf8Path>) -> Result<RepoKey> {
    let path = match (flag, &config.key) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(path)) => root.join(path),
        (None, None) => bail!(
            "repo: no signing key: pass --repo-key FILE or set [repo] key = \"FILE\" in release.toml \
             (an armored OpenPGP secret key: `gpg --armor --export-secret-keys ID > FILE`)"
        ),
    };
    RepoKey::load(&path, openpgp::passphrase_from_env())
}

/// Checks each dist folder as `verify` does.
fn verify(dists: &[Utf8PathBuf]) -> Result<Vec<VerifiedDist>> {
    dists
        .iter()
        .map(|dir| {
            let manifest = DistDir::at(dir.clone()).verified("to add its packages to a repository")?;
            Ok(VerifiedDist { dir: dir.clone(), manifest })
        })
        .collect()
}

/// Adds `dists` (already verified) to the repository at `repo`, as `repo` does but quietly:
/// for benchmarks, which make releases of their own.
pub fn add_verified(repo: &Utf8Path, suite: &str, dists: &[VerifiedDist], key: &RepoKey) -> Result<()> {
    let plan = RepoPlan::make(repo, suite, dists, key)?;
    if !plan.is_noop() {
        plan.execute(key, None)?;
    }
    Ok(())
}

/// A dist folder whose checksums and signatures verified.
pub struct VerifiedDist {
    pub dir: Utf8PathBuf,
    pub manifest: Manifest,
}

struct RepoPlan {
    repo: Utf8PathBuf,
    fingerprint: String,
    /// Name and version of each release added, for people.
    releases: Vec<String>,
    /// The package name: what users install, and the name of their sources/repo files.
    package: String,
    apt: AptPlan,
    rpm: RpmPlan,
}

impl RepoPlan {
    fn make(repo: &Utf8Path, suite: &str, dists: &[VerifiedDist], key: &RepoKey) -> Result<RepoPlan> {
        if repo.join(KEY_FILE).is_file() {
            check_key(repo, key)?;
        }
        let apt = AptPlan::make(repo, suite, dists)?;
        let rpm = RpmPlan::make(repo, dists, key)?;
        Ok(RepoPlan {
            repo: repo.to_path_buf(),
            fingerprint: key.fingerprint(),
            releases: dists.iter().map(|d| format!("{} {}", d.manifest.name, d.manifest.version)).collect(),
            package: apt.origin.clone(),
            apt,
            rpm,
        })
    }

    fn is_noop(&self) -> bool {
        self.apt.is_noop() && self.rpm.is_noop()
    }

    fn headline(&self) -> String {
        format!(
            "repo: {} into {} (apt suite {}, rpm at {}/, signed by {})",
            self.releases.join(", "),
            self.repo,
            self.apt.suite,
            rpm::RPM_DIR,
            self.fingerprint
        )
    }

    fn render(&self, url: Option<&str>) -> String {
        let mut out = format!("{}\n", self.headline());
        out.push_str(&self.apt.render());
        out.push_str(&self.rpm.render());
        out.push_str(&format!("  write {KEY_FILE}\n"));
        for file in self.client_files() {
            match url {
                Some(_) => out.push_str(&format!("  write {file}\n")),
                None => out.push_str(&format!("  write no {file} (no URL: pass --url or set [repo] url)\n")),
            }
        }
        out
    }

    /// The files users install: apt's deb822 sources and dnf's repo file.
    fn client_files(&self) -> [String; 2] {
        [format!("{}.sources", self.package), format!("{}.repo", self.package)]
    }

    fn summary(&self, url: Option<&str>) -> String {
        let mut out = format!("{}\n{}", self.apt.summary(&self.repo), self.rpm.summary(&self.repo));
        let [sources, repo_file] = self.client_files();
        match url {
            Some(_) => out.push_str(&format!(
                "\nrepo: users install {sources} as /etc/apt/sources.list.d/{sources}, then \
                 `apt-get update && apt-get install {0}`; or {repo_file} as /etc/yum.repos.d/{repo_file}, \
                 then `dnf install {0}`",
                self.package
            )),
            None => out.push_str(&format!(
                "\nrepo: {sources} and {repo_file} not written: pass --url or set [repo] url"
            )),
        }
        out
    }

    fn execute(&self, key: &RepoKey, url: Option<&str>) -> Result<()> {
        self.apt.copy_new_packages()?;
        self.rpm.copy_new_packages()?;
        let public = key.public_armored()?;
        staging::write_atomically(&self.repo.join(KEY_FILE), public.as_bytes())?;
        if let Some(url) = url {
            let [sources, repo_file] = self.client_files();
            let sources_text = apt::sources_file(url, &self.apt.suite, &public);
            staging::write_atomically(&self.repo.join(sources), sources_text.as_bytes())?;
            let repo_text = rpm::repo_file(&self.package, url, KEY_FILE);
            staging::write_atomically(&self.repo.join(repo_file), repo_text.as_bytes())?;
        }
        self.apt.write_index(key)?;
        self.rpm.write_index(key)?;
        Ok(())
    }
}

/// A repository keeps its key: users pinned it in Signed-By and gpgkey.
fn check_key(repo: &Utf8Path, key: &RepoKey) -> Result<()> {
    let path = repo.join(KEY_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let theirs =
        openpgp::public_key_fingerprint(&text).with_context(|| format!("{path} is no OpenPGP public key"))?;
    if theirs != key.fingerprint() {
        bail!(
            "{repo} is signed by key {theirs} ({path}), not by {}: its users trust that key, so sign \
             with it, or start a new repository",
            key.fingerprint()
        );
    }
    Ok(())
}

/// A published package never changes: clients refuse a file whose digest differs from the one
/// they cached. `revision` names the setting that gives a rebuilt package a new name.
fn changed_package(
    repo: &Utf8Path,
    pool_path: &str,
    held: &str,
    source: &Utf8Path,
    new: &str,
    revision: &str,
) -> String {
    format!(
        "{repo}/{pool_path} holds another file (sha256 {held}) than {source} (sha256 {new}): a published \
         package never changes, since clients refuse the one they cached; give the release a new \
         version or {revision}"
    )
}

/// Reads a package of a verified dist, checking it is still the file that was verified.
fn read_verified(dist: &VerifiedDist, name: &str, sha256: &str) -> Result<(Utf8PathBuf, Vec<u8>)> {
    let source = dist.dir.join(name);
    let bytes = std::fs::read(&source).with_context(|| format!("cannot read {source}"))?;
    if crate::release::checksum::sha256_hex(&bytes) != sha256 {
        bail!("{source} changed after {} was verified; run the command again", dist.dir);
    }
    Ok((source, bytes))
}

/// Whether `path` already holds `bytes` (an interrupted run copied it); another file there is
/// refused.
fn already_pooled(
    repo: &Utf8Path,
    pool_path: &str,
    bytes: &[u8],
    source: &Utf8Path,
    revision: &str,
) -> Result<bool> {
    use crate::release::checksum::sha256_hex;
    match std::fs::read(repo.join(pool_path)) {
        Ok(pooled) if pooled == bytes => Ok(true),
        Ok(pooled) => {
            bail!(changed_package(
                repo,
                pool_path,
                &sha256_hex(&pooled),
                source,
                &sha256_hex(bytes),
                revision
            ))
        }
        Err(_) => Ok(false),
    }
}

/// Writes each new package at its pool path, folders made as needed.
fn copy_into_pool<'a>(root: &Utf8Path, packages: impl Iterator<Item = (&'a str, &'a [u8])>) -> Result<()> {
    for (pool_path, bytes) in packages {
        let path = root.join(pool_path);
        let folder = path.parent().expect("a pool path has folders");
        std::fs::create_dir_all(folder).with_context(|| format!("cannot create {folder}"))?;
        staging::write_atomically(&path, bytes)?;
    }
    Ok(())
}
