//! The apt half of `repo`: the .debs in `pool/main/<initial>/<package>/`, and `dists/<suite>`
//! (release/apt_repo.rs writes its files): Packages per Debian architecture, and the Release
//! that lists them, signed as Release.gpg and InRelease (written last).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::{already_pooled, changed_package, copy_into_pool, read_verified, VerifiedDist, KEY_FILE};
use crate::release::apt_repo::{self, ReleaseHeader, Stanza};
use crate::release::checksum;
use crate::release::deb;
use crate::sign::openpgp::RepoKey;
use crate::util::staging::Staging;
use crate::util::tar_writer;

const COMPONENT: &str = "main";
const RELEASE_FILE: &str = "Release";
/// gzip level of Packages.gz: the best, as the file is fetched by every client.
const GZIP_LEVEL: u32 = 9;
/// xz's preset for Packages.xz, which apt fetches first: its default, as Debian's archive uses.
const XZ_PRESET: u32 = 6;
/// What gives a rebuilt .deb a new name.
const REVISION: &str = "[deb] revision";

/// One .deb the repository gains.
struct Addition {
    /// Where it comes from.
    source: Utf8PathBuf,
    /// Its path from the repository's root (the stanza's Filename).
    pool_path: String,
    /// Whether the pool already holds these bytes (an interrupted run copied it).
    in_pool: bool,
    bytes: Vec<u8>,
}

pub struct AptPlan {
    repo: Utf8PathBuf,
    pub suite: String,
    additions: Vec<Addition>,
    /// Packages asked for that the repository already indexes with the same bytes.
    already: usize,
    /// Every stanza of the new index, per Debian architecture, in Filename order.
    index: BTreeMap<String, Vec<Stanza>>,
    /// The index's date: the newest release's commit time.
    date: u64,
    /// The Release's Origin: the package's name.
    pub origin: String,
}

impl AptPlan {
    pub fn make(repo: &Utf8Path, suite: &str, dists: &[VerifiedDist]) -> Result<AptPlan> {
        let existing = Existing::read(repo, suite)?;
        let mut index = existing.index;
        let mut indexed: BTreeMap<String, String> = index
            .values()
            .flatten()
            .filter_map(|s| Some((s.get("Filename")?.to_string(), s.get("SHA256")?.to_string())))
            .collect();
        let (mut additions, mut already, mut date) = (Vec::new(), 0, existing.date);
        let mut origin = existing.origin;
        for dist in dists {
            let manifest = &dist.manifest;
            date = date.max(manifest.source_date_epoch);
            origin.get_or_insert_with(|| manifest.name.clone());
            for package in manifest.artifacts.iter().filter_map(|a| a.deb.as_ref()) {
                let pool_path = pool_path(&manifest.name, &package.name);
                match indexed.get(&pool_path) {
                    Some(sha256) if *sha256 == package.sha256 => {
                        already += 1;
                        continue;
                    }
                    Some(sha256) => bail!(changed_package(
                        repo,
                        &pool_path,
                        sha256,
                        &dist.dir.join(&package.name),
                        &package.sha256,
                        REVISION
                    )),
                    None => {}
                }
                let (source, bytes) = read_verified(dist, &package.name, &package.sha256)?;
                let in_pool = already_pooled(repo, &pool_path, &bytes, &source, REVISION)?;
                let control = deb::read_control(&bytes).with_context(|| format!("cannot read {source}"))?;
                let stanza = Stanza::for_package(&control, &pool_path, &bytes)
                    .with_context(|| format!("cannot index {source}"))?;
                let arch = stanza.get("Architecture").expect("checked by for_package").to_string();
                indexed.insert(pool_path.clone(), package.sha256.clone());
                index.entry(arch).or_default().push(stanza);
                additions.push(Addition { source, pool_path, in_pool, bytes });
            }
        }
        for stanzas in index.values_mut() {
            stanzas.sort_by(|a, b| a.get("Filename").cmp(&b.get("Filename")));
        }
        Ok(AptPlan {
            repo: repo.to_path_buf(),
            suite: suite.to_string(),
            additions,
            already,
            index,
            date,
            origin: origin.unwrap_or_default(),
        })
    }

    pub fn is_noop(&self) -> bool {
        self.additions.is_empty() && self.repo.join(self.suite_dir()).join("InRelease").is_file()
    }

    fn suite_dir(&self) -> String {
        format!("dists/{}", self.suite)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for addition in &self.additions {
            let copy = if addition.in_pool { "in the pool already" } else { "copied" };
            out.push_str(&format!("  add   {} ({copy}, from {})\n", addition.pool_path, addition.source));
        }
        out.push_str(&format!("  keep  {} package(s) already indexed\n", self.already));
        for (arch, stanzas) in &self.index {
            out.push_str(&format!(
                "  write {}/{COMPONENT}/binary-{arch}/Packages{{,.gz,.xz}} ({} package(s))\n",
                self.suite_dir(),
                stanzas.len()
            ));
        }
        out.push_str(&format!(
            "  write {0}/Release, dated {1}, signed as {0}/Release.gpg and {0}/InRelease\n",
            self.suite_dir(),
            apt_repo::rfc2822(self.date)
        ));
        out
    }

    pub fn summary(&self, repo: &Utf8Path) -> String {
        let packages: usize = self.index.values().map(Vec::len).sum();
        format!(
            "repo: {repo}: {} package(s) added, {} already there; {packages} in all, for {}",
            self.additions.len(),
            self.already,
            self.index.keys().cloned().collect::<Vec<_>>().join(" ")
        )
    }

    pub fn copy_new_packages(&self) -> Result<()> {
        let new = self.additions.iter().filter(|a| !a.in_pool);
        copy_into_pool(&self.repo, new.map(|a| (a.pool_path.as_str(), a.bytes.as_slice())))
    }

    pub fn write_index(&self, key: &RepoKey) -> Result<()> {
        let staged = Staging::replacing(&self.repo.join(self.suite_dir()), RELEASE_FILE)?;
        let mut indexes = Vec::new();
        for (arch, stanzas) in &self.index {
            let packages = apt_repo::render_packages(stanzas).into_bytes();
            let gz = tar_writer::gzip(&packages, GZIP_LEVEL)?;
            let xz = tar_writer::xz(&packages, XZ_PRESET)?;
            let folder = format!("{COMPONENT}/binary-{arch}");
            indexes.push((format!("{folder}/Packages"), packages));
            indexes.push((format!("{folder}/Packages.gz"), gz));
            indexes.push((format!("{folder}/Packages.xz"), xz));
        }
        for (path, bytes) in &indexes {
            staged.write(path, bytes)?;
        }
        let architectures: BTreeSet<String> = self.index.keys().cloned().collect();
        let header = ReleaseHeader {
            origin: &self.origin,
            label: &self.origin,
            suite: &self.suite,
            components: &[COMPONENT],
            architectures: &architectures,
            date: self.date,
            description: &format!("{} packages", self.origin),
        };
        let release = apt_repo::render_release(&header, &indexes);
        staged.write(RELEASE_FILE, release.as_bytes())?;
        staged.write("Release.gpg", key.detached(release.as_bytes(), self.date)?.as_bytes())?;
        staged.write("InRelease", key.clearsign(&release, self.date)?.as_bytes())?;
        staged.commit()?;
        Ok(())
    }
}

/// `pool/main/e/exonode/exonode_0.1.0-1_amd64.deb`, as Debian's archive lays a pool out.
fn pool_path(package: &str, file: &str) -> String {
    let initial: String = package.chars().take(1).collect();
    format!("pool/{COMPONENT}/{initial}/{package}/{file}")
}

/// A deb822 sources file with the key inline (apt 2.3 and later), so one file is all a user
/// installs.
pub fn sources_file(url: &str, suite: &str, public_key: &str) -> String {
    let key: String = public_key
        .lines()
        .map(|line| if line.is_empty() { " .\n".to_string() } else { format!(" {line}\n") })
        .collect();
    format!("Types: deb\nURIs: {url}\nSuites: {suite}\nComponents: {COMPONENT}\nSigned-By:\n{key}")
}

/// What the repository already holds: its index (checked against its Release, and its key
/// against ours) and date.
struct Existing {
    index: BTreeMap<String, Vec<Stanza>>,
    date: u64,
    origin: Option<String>,
}

impl Existing {
    fn read(repo: &Utf8Path, suite: &str) -> Result<Existing> {
        let suite_dir = repo.join("dists").join(suite);
        let release_path = suite_dir.join(RELEASE_FILE);
        let empty = Existing { index: BTreeMap::new(), date: 0, origin: None };
        if !release_path.is_file() {
            let has_files = repo.read_dir_utf8().map(|mut d| d.next().is_some()).unwrap_or(false);
            if has_files && !repo.join(KEY_FILE).is_file() {
                bail!(
                    "{repo} is not empty and is no repository made by `cargo xtask repo` (it has no \
                     dists/{suite}/{RELEASE_FILE} and no {KEY_FILE}); choose an empty or new folder"
                );
            }
            return Ok(empty);
        }
        let release =
            std::fs::read_to_string(&release_path).with_context(|| format!("cannot read {release_path}"))?;
        let date = apt_repo::release_date(&release).with_context(|| format!("{release_path}"))?;
        let header = apt_repo::parse(&release)?.into_iter().next().unwrap_or(Stanza { fields: Vec::new() });
        let listed = listed_digests(header.get("SHA256").unwrap_or(""));
        let mut index = BTreeMap::new();
        for arch in header.get("Architectures").unwrap_or("").split_whitespace() {
            let name = format!("{COMPONENT}/binary-{arch}/Packages");
            let path = suite_dir.join(&name);
            let bytes = std::fs::read(&path).with_context(|| format!("cannot read {path}"))?;
            let actual = checksum::sha256_hex(&bytes);
            match listed.get(&name) {
                Some(expected) if *expected == actual => {}
                Some(expected) => bail!(
                    "{path} does not match {release_path} (sha256 {actual}, listed {expected}): the \
                     repository was changed by hand; restore it from its last published copy"
                ),
                None => bail!("{release_path} does not list {name}"),
            }
            let text = String::from_utf8(bytes).with_context(|| format!("{path} is not UTF-8"))?;
            index.insert(arch.to_string(), apt_repo::parse(&text).with_context(|| format!("{path}"))?);
        }
        Ok(Existing { index, date, origin: header.get("Origin").map(str::to_string) })
    }
}

/// A Release file's `SHA256:` list: path to digest.
fn listed_digests(list: &str) -> BTreeMap<String, String> {
    list.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (digest, _size, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((path.to_string(), digest.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_pooled_under_their_initial() {
        assert_eq!(pool_path("exonode", "x.deb"), "pool/main/e/exonode/x.deb");
    }

    #[test]
    fn the_sources_file_carries_the_key_inline_with_blank_lines_as_dots() {
        let text =
            sources_file("http://127.0.0.1:1/apt", "stable", "-----BEGIN-----\n\nabc\n-----END-----\n");
        assert_eq!(
            text,
            "Types: deb\nURIs: http://127.0.0.1:1/apt\nSuites: stable\nComponents: main\nSigned-By:\n \
             -----BEGIN-----\n .\n abc\n -----END-----\n"
        );
    }

    #[test]
    fn the_release_digest_list_is_read_by_path() {
        let listed =
            listed_digests("\n abc 12 main/binary-amd64/Packages\n def  3 main/binary-amd64/Packages.gz");
        assert_eq!(listed["main/binary-amd64/Packages"], "abc");
        assert_eq!(listed["main/binary-amd64/Packages.gz"], "def");
    }
}
