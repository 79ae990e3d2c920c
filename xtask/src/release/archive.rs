//! Reproducible `.tar.gz` archives: entries sorted, owner root:root, fixed modes, mtime from
//! SOURCE_DATE_EPOCH, gzip with no name and zero timestamp. Headers are written by hand because
//! the tar crate's deterministic mode does not cover `append(Header)` and does not sort.

use std::io::Write;

use anyhow::{Context, Result};
use camino::Utf8Path;
use flate2::{Compression, GzBuilder};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// Path inside the archive, `/`-separated, without a leading `/`.
    pub path: String,
    pub contents: Vec<u8>,
    pub executable: bool,
}

/// The gzip level is part of the output's identity: changing it changes every checksum.
const GZIP_LEVEL: u32 = 9;

/// Builds the archive bytes: a top-level folder `root` holding `entries`.
pub fn tar_gz(root: &str, entries: &[ArchiveEntry], mtime: u64) -> Result<Vec<u8>> {
    let mut sorted: Vec<&ArchiveEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));

    let gz = GzBuilder::new().mtime(0).operating_system(255).write(Vec::new(), Compression::new(GZIP_LEVEL));
    let mut tar = tar::Builder::new(gz);

    let mut dir = header(tar::EntryType::Directory, 0o755, 0, mtime);
    tar.append_data(&mut dir, format!("{root}/"), std::io::empty()).context("cannot write tar header")?;
    for entry in sorted {
        let mode = if entry.executable { 0o755 } else { 0o644 };
        let mut file = header(tar::EntryType::Regular, mode, entry.contents.len() as u64, mtime);
        tar.append_data(&mut file, format!("{root}/{}", entry.path), entry.contents.as_slice())
            .with_context(|| format!("cannot add {} to the archive", entry.path))?;
    }
    let gz = tar.into_inner().context("cannot finish tar stream")?;
    let mut bytes = gz.finish().context("cannot finish gzip stream")?;
    bytes.flush()?;
    Ok(bytes)
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header.set_username("root").expect("short name");
    header.set_groupname("root").expect("short name");
    header
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
