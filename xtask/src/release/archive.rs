//! Release archives (`.tar.gz`): entries sorted under one top folder, owner root:root, fixed
//! modes, mtime from SOURCE_DATE_EPOCH, written by the one reproducible tar writer.

use anyhow::{Context, Result};
use camino::Utf8Path;

use crate::project::workspace::Release;
use crate::release::layout;
use crate::util::tar_writer::{self, Entry};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// Path inside the archive, `/`-separated, without a leading `/`.
    pub path: String,
    pub contents: Vec<u8>,
    pub executable: bool,
}

/// The gzip level is part of the output's identity: changing it changes every checksum.
const GZIP_LEVEL: u32 = 9;

/// The release archive of `binary` for `target`: the binary (executable) and the included
/// files in the archive's top folder, dated SOURCE_DATE_EPOCH. dist packs with it, and
/// anything that must reproduce dist's bytes.
pub fn pack(release: &Release, target: &str, binary: &[u8], includes: &[ArchiveEntry]) -> Result<Vec<u8>> {
    let mut entries = includes.to_vec();
    entries.push(ArchiveEntry { path: release.name.clone(), contents: binary.to_vec(), executable: true });
    tar_gz(&layout::archive_stem(release, target), &entries, release.source_date_epoch)
}

/// Builds the archive bytes: a top-level folder `root` holding `entries`, sorted, owned by
/// root with mode 0644 (0755 when executable).
pub fn tar_gz(root: &str, entries: &[ArchiveEntry], mtime: u64) -> Result<Vec<u8>> {
    let mut sorted: Vec<&ArchiveEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let tree: Vec<Entry> = std::iter::once(Entry::dir(root, 0o755))
        .chain(sorted.into_iter().map(|entry| {
            let mode = if entry.executable { 0o755 } else { 0o644 };
            Entry::file(&format!("{root}/{}", entry.path), mode, entry.contents.clone())
        }))
        .collect();
    tar_writer::gzip(&tar_writer::tar(&tree, mtime)?, GZIP_LEVEL)
}

/// Reads one file out of a `.tar.gz`, for verification.
pub fn read_entry(archive: &Utf8Path, path: &str) -> Result<Vec<u8>> {
    let file = std::fs::File::open(archive).with_context(|| format!("cannot open {archive}"))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in tar.entries().with_context(|| format!("{archive} is not a tar.gz"))? {
        let mut entry = entry.with_context(|| format!("{archive} is damaged"))?;
        if entry.path_bytes().as_ref() == path.as_bytes() {
            let mut contents = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut contents)
                .with_context(|| format!("cannot read {path} in {archive}"))?;
            return Ok(contents);
        }
    }
    anyhow::bail!("{archive} does not contain {path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<ArchiveEntry> {
        vec![
            ArchiveEntry { path: "README.md".into(), contents: b"readme\n".to_vec(), executable: false },
            ArchiveEntry { path: "tool".into(), contents: vec![0x7f, b'E', b'L', b'F'], executable: true },
        ]
    }

    #[test]
    fn same_inputs_same_bytes_whatever_the_order() {
        let a = tar_gz("tool-1.0", &entries(), 1_700_000_000).unwrap();
        let mut reversed = entries();
        reversed.reverse();
        let b = tar_gz("tool-1.0", &reversed, 1_700_000_000).unwrap();
        assert_eq!(a, b);
        // gzip header: no mtime (bytes 4..8 zero), OS unknown (255).
        assert_eq!(&a[4..8], &[0, 0, 0, 0]);
        assert_eq!(a[9], 255);
        assert_ne!(a, tar_gz("tool-1.0", &entries(), 1_700_000_001).unwrap(), "mtime is part of the archive");
    }

    #[test]
    fn headers_are_fixed_and_sorted() {
        let bytes = tar_gz("tool-1.0", &entries(), 1_700_000_000).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let seen: Vec<(String, u32, u64, u64, u64, Option<String>)> = tar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.username().unwrap().map(str::to_string),
                )
            })
            .collect();
        let root = Some("root".to_string());
        assert_eq!(
            seen,
            vec![
                ("tool-1.0/".into(), 0o755, 1_700_000_000, 0, 0, root.clone()),
                ("tool-1.0/README.md".into(), 0o644, 1_700_000_000, 0, 0, root.clone()),
                ("tool-1.0/tool".into(), 0o755, 1_700_000_000, 0, 0, root),
            ]
        );
    }
}
