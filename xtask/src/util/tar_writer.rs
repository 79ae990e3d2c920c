//! The one reproducible tar writer, for release archives and image layers: headers written by
//! hand (the tar crate's deterministic mode does not cover `append(Header)` and does not sort)
//! with the given owner, mode and one mtime, in the order given; and gzip with no name, mtime 0,
//! OS byte 255 and a level the caller fixes, since the level is part of every checksum; and xz,
//! for the apt indexes that clients prefer in it.

use anyhow::{Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the stream, e.g. `/usr/local/bin/exonode` (a leading `/` is dropped).
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// User and group names recorded in the header (informational; uid/gid are what count).
    pub owner: String,
}

impl Entry {
    pub fn dir(path: &str, mode: u32) -> Entry {
        Entry { path: path.into(), kind: Kind::Dir, mode, uid: 0, gid: 0, owner: "root".into() }
    }

    pub fn file(path: &str, mode: u32, contents: Vec<u8>) -> Entry {
        Entry { path: path.into(), kind: Kind::File(contents), mode, uid: 0, gid: 0, owner: "root".into() }
    }

    pub fn owned_by(mut self, id: u32, name: &str) -> Entry {
        (self.uid, self.gid, self.owner) = (id, id, name.into());
        self
    }
}

/// The tar stream of `entries`, in their order; paths are written without a leading `/`.
pub fn tar(entries: &[Entry], mtime: u64) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for entry in entries {
        let name = entry.path.trim_start_matches('/');
        let mut header = tar::Header::new_ustar();
        header.set_mtime(mtime);
        header.set_mode(entry.mode);
        header.set_uid(entry.uid.into());
        header.set_gid(entry.gid.into());
        header.set_username(&entry.owner).with_context(|| format!("owner name of {}", entry.path))?;
        header.set_groupname(&entry.owner).with_context(|| format!("group name of {}", entry.path))?;
        match &entry.kind {
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                tar.append_data(&mut header, format!("{}/", name.trim_end_matches('/')), std::io::empty())
            }
            Kind::File(contents) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(contents.len() as u64);
                tar.append_data(&mut header, name, contents.as_slice())
            }
        }
        .with_context(|| format!("cannot add {} to a tar stream", entry.path))?;
    }
    tar.into_inner().context("cannot finish a tar stream")
}

/// `bytes` gzipped reproducibly at `level`: no name, mtime 0, OS "unknown" (255).
///
/// The gzip frame is written here over miniz_oxide's deflate rather than by flate2's encoder:
/// a dependency (rPGP) turns on flate2's zlib-rs backend for the whole crate, and that backend
/// compresses to other bytes. Pinning the compressor keeps every archive, package and layer
/// byte-identical to what earlier versions of this tool made.
pub fn gzip(bytes: &[u8], level: u32) -> Result<Vec<u8>> {
    let level = u8::try_from(level)
        .ok()
        .filter(|l| *l <= 9)
        .with_context(|| format!("gzip level {level} is not 0-9"))?;
    // XFL: 2 for the best compression, 4 for the fastest, as flate2 writes it.
    let extra_flags = match level {
        9 => 2,
        0 | 1 => 4,
        _ => 0,
    };
    let mut out = Vec::with_capacity(bytes.len() / 2 + 18);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extra_flags, 255]);
    out.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(bytes, level));
    out.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    Ok(out)
}

/// `bytes` in xz at `preset` (0-9), single-threaded, so the same bytes come out everywhere.
pub fn xz(bytes: &[u8], preset: u32) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = liblzma::write::XzEncoder::new(Vec::with_capacity(bytes.len() / 4), preset);
    encoder.write_all(bytes).context("cannot xz-compress")?;
    encoder.finish().context("cannot xz-compress")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xz_is_the_same_bytes_every_time_and_unpacks_to_the_input() {
        use std::io::Read;
        let text = "Package: exonode\nVersion: 0.1.0-1\n".repeat(50);
        let packed = xz(text.as_bytes(), 6).unwrap();
        assert_eq!(packed, xz(text.as_bytes(), 6).unwrap());
        assert!(packed.starts_with(b"\xfd7zXZ\0") && packed.len() < text.len() / 4);
        let mut unpacked = String::new();
        liblzma::read::XzDecoder::new(packed.as_slice()).read_to_string(&mut unpacked).unwrap();
        assert_eq!(unpacked, text);
    }
}
