//! The rpm half of `repo`, at REPO/rpm: the .rpms, header-signed by the repository key, in
//! `Packages/<initial>/`, and `repodata/` (release/rpm_repo.rs writes its files): primary,
//! filelists and other, and repomd.xml listing them, signed as repomd.xml.asc (written last).

use std::io::Read;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::{already_pooled, changed_package, copy_into_pool, read_verified, VerifiedDist};
use crate::release::checksum;
use crate::release::rpm_repo::{self, IndexedRpm, MetadataFile, MetadataKind, KINDS};
use crate::sign::openpgp::RepoKey;
use crate::util::staging::Staging;
use crate::util::tar_writer;

/// The rpm repository's folder in REPO: its baseurl is the repository's URL and this.
pub const RPM_DIR: &str = "rpm";
const REPODATA: &str = "repodata";
const REPOMD: &str = "repomd.xml";
/// gzip level of the metadata: the best, as every client fetches it.
const GZIP_LEVEL: u32 = 9;
/// What gives a rebuilt .rpm a new name.
const REVISION: &str = "[rpm] release";

/// One .rpm the repository gains, signed.
struct Addition {
    source: Utf8PathBuf,
    /// Whether the pool already holds these bytes (an interrupted run copied it).
    in_pool: bool,
    bytes: Vec<u8>,
    indexed: IndexedRpm,
}

pub struct RpmPlan {
    /// REPO/rpm.
    dir: Utf8PathBuf,
    additions: Vec<Addition>,
    /// Packages asked for that the repository already indexes with the same bytes.
    already: usize,
    /// Every package of the new metadata, in location order.
    packages: Vec<IndexedRpm>,
    /// The metadata's revision and time: the newest release's commit time.
    date: u64,
}

impl RpmPlan {
    pub fn make(repo: &Utf8Path, dists: &[VerifiedDist], key: &RepoKey) -> Result<RpmPlan> {
        let dir = repo.join(RPM_DIR);
        let existing = Existing::read(&dir)?;
        let mut packages = existing.packages;
        let (mut additions, mut already, mut date) = (Vec::new(), 0, existing.date);
        for dist in dists {
            let manifest = &dist.manifest;
            date = date.max(manifest.source_date_epoch);
            for package in manifest.artifacts.iter().filter_map(|a| a.rpm.as_ref()) {
                let (source, unsigned) = read_verified(dist, &package.name, &package.sha256)?;
                let bytes = crate::release::rpm::sign(&unsigned, key, manifest.source_date_epoch)
                    .with_context(|| format!("cannot sign {source}"))?;
                let href = pool_path(&manifest.name, &package.name);
                let sha256 = checksum::sha256_hex(&bytes);
                match packages.iter().find(|p| p.href == href) {
                    Some(held) if held.sha256 == sha256 => {
                        already += 1;
                        continue;
                    }
                    Some(held) => {
                        bail!(changed_package(&dir, &href, &held.sha256, &source, &sha256, REVISION))
                    }
                    None => {}
                }
                let in_pool = already_pooled(&dir, &href, &bytes, &source, REVISION)?;
                let indexed = IndexedRpm::of_package(&bytes, &href)
                    .with_context(|| format!("cannot index {source}"))?;
                packages.push(indexed.clone());
                additions.push(Addition { source, in_pool, bytes, indexed });
            }
        }
        packages.sort_by(|a, b| a.href.cmp(&b.href));
        Ok(RpmPlan { dir, additions, already, packages, date })
    }

    pub fn is_noop(&self) -> bool {
        self.additions.is_empty() && self.dir.join(REPODATA).join(REPOMD).is_file()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for addition in &self.additions {
            let copy = if addition.in_pool { "in the pool already" } else { "signed and copied" };
            out.push_str(&format!(
                "  add   {RPM_DIR}/{} ({copy}, from {})\n",
                addition.indexed.href, addition.source
            ));
        }
        out.push_str(&format!("  keep  {} rpm(s) already indexed\n", self.already));
        out.push_str(&format!(
            "  write {RPM_DIR}/{REPODATA}/{{primary,filelists,other}}.xml.gz ({} rpm(s)), and {REPOMD}, \
             revision {}, signed as {REPOMD}.asc\n",
            self.packages.len(),
            self.date
        ));
        out
    }

    pub fn summary(&self, repo: &Utf8Path) -> String {
        let mut arches: Vec<&str> = self.packages.iter().filter_map(|p| p.href.rsplit('.').nth(1)).collect();
        arches.sort();
        arches.dedup();
        format!(
            "repo: {repo}/{RPM_DIR}: {} rpm(s) added, {} already there; {} in all, for {}",
            self.additions.len(),
            self.already,
            self.packages.len(),
            arches.join(" ")
        )
    }

    pub fn copy_new_packages(&self) -> Result<()> {
        let new = self.additions.iter().filter(|a| !a.in_pool);
        copy_into_pool(&self.dir, new.map(|a| (a.indexed.href.as_str(), a.bytes.as_slice())))
    }

    pub fn write_index(&self, key: &RepoKey) -> Result<()> {
        let staged = Staging::replacing(&self.dir.join(REPODATA), REPOMD)?;
        let mut files = Vec::new();
        for kind in KINDS {
            let document = rpm_repo::render(kind, &self.packages);
            let gz = tar_writer::gzip(document.as_bytes(), GZIP_LEVEL)?;
            let file = MetadataFile::new(kind, &document, gz);
            let name = file.href.strip_prefix("repodata/").expect("metadata lies in repodata/");
            staged.write(name, &file.gz)?;
            files.push(file);
        }
        let repomd = rpm_repo::render_repomd(&files, self.date);
        let signature = key.detached(repomd.as_bytes(), self.date)?;
        staged.write(&format!("{REPOMD}.asc"), signature.as_bytes())?;
        staged.write(REPOMD, repomd.as_bytes())?;
        staged.commit()?;
        Ok(())
    }
}

/// `Packages/e/exonode-0.1.0-1.x86_64.rpm`, as Fedora lays a repository out.
fn pool_path(package: &str, file: &str) -> String {
    let initial: String = package.chars().take(1).collect();
    format!("Packages/{initial}/{file}")
}

/// The file users drop into /etc/yum.repos.d: packages and metadata both checked against the
/// key, which dnf fetches from the repository and asks the user to trust.
pub fn repo_file(package: &str, url: &str, key_file: &str) -> String {
    let url = url.trim_end_matches('/');
    format!(
        "[{package}]\nname={package} packages\nbaseurl={url}/{RPM_DIR}\nenabled=1\ngpgcheck=1\n\
         repo_gpgcheck=1\ngpgkey={url}/{key_file}\n"
    )
}

/// What the repository already holds: its packages' metadata (checked against repomd.xml) and
/// revision.
struct Existing {
    packages: Vec<IndexedRpm>,
    date: u64,
}

impl Existing {
    fn read(dir: &Utf8Path) -> Result<Existing> {
        let repomd_path = dir.join(REPODATA).join(REPOMD);
        if !repomd_path.is_file() {
            return Ok(Existing { packages: Vec::new(), date: 0 });
        }
        let repomd =
            std::fs::read_to_string(&repomd_path).with_context(|| format!("cannot read {repomd_path}"))?;
        let date = rpm_repo::repomd_revision(&repomd)
            .with_context(|| format!("{repomd_path} has no numeric <revision>"))?;
        let mut documents: Vec<(MetadataKind, String)> = Vec::new();
        for (kind, href, listed) in
            rpm_repo::repomd_files(&repomd).with_context(|| format!("{repomd_path}"))?
        {
            let path = dir.join(&href);
            let gz = std::fs::read(&path).with_context(|| format!("cannot read {path}"))?;
            let actual = checksum::sha256_hex(&gz);
            if actual != listed {
                bail!(
                    "{path} does not match {repomd_path} (sha256 {actual}, listed {listed}): the \
                     repository was changed by hand; restore it from its last published copy"
                );
            }
            let mut document = String::new();
            flate2::read::GzDecoder::new(gz.as_slice())
                .read_to_string(&mut document)
                .with_context(|| format!("{path} is not gzip-compressed UTF-8"))?;
            documents.push((kind, document));
        }
        let document = |kind: MetadataKind| -> Result<Vec<(String, String)>> {
            let (_, text) = documents
                .iter()
                .find(|(k, _)| *k == kind)
                .with_context(|| format!("{repomd_path} lists no {} file", kind.name()))?;
            rpm_repo::fragments(kind, text)
                .with_context(|| format!("the {} file of {repomd_path}", kind.name()))
        };
        let (primary, filelists, other) = (
            document(MetadataKind::Primary)?,
            document(MetadataKind::Filelists)?,
            document(MetadataKind::Other)?,
        );
        let mut packages = Vec::new();
        for (sha256, primary_fragment) in primary {
            let of = |list: &[(String, String)], kind: MetadataKind| -> Result<String> {
                list.iter().find(|(id, _)| *id == sha256).map(|(_, f)| f.clone()).with_context(|| {
                    format!("{repomd_path}: the {} file has no package {sha256}", kind.name())
                })
            };
            let href = rpm_repo::location(&primary_fragment)
                .with_context(|| format!("{repomd_path}: package {sha256} has no location"))?;
            let fragments = [
                primary_fragment,
                of(&filelists, MetadataKind::Filelists)?,
                of(&other, MetadataKind::Other)?,
            ];
            packages.push(IndexedRpm { href, sha256, fragments });
        }
        Ok(Existing { packages, date })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repo_file_checks_packages_and_metadata_against_the_served_key() {
        assert_eq!(
            repo_file("exonode", "https://example.org/pkgs/", "KEY.asc"),
            "[exonode]\nname=exonode packages\nbaseurl=https://example.org/pkgs/rpm\nenabled=1\ngpgcheck=1\n\
             repo_gpgcheck=1\ngpgkey=https://example.org/pkgs/KEY.asc\n"
        );
        assert_eq!(pool_path("exonode", "x.rpm"), "Packages/e/x.rpm");
    }
}
