//! Output folders are assembled beside their destination and renamed into place, so a failed
//! or interrupted run never leaves a folder that looks complete.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::util::interrupt::{self, TrackedOutput};

pub struct Staging {
    pub dir: Utf8PathBuf,
    /// Removes `dir` on SIGINT/SIGTERM, when `Drop` does not get to run.
    tracked: Option<TrackedOutput>,
    dest: Utf8PathBuf,
    /// A file whose presence marks `dest` as ours to replace.
    marker: &'static str,
    committed: bool,
}

impl Staging {
    /// Creates `.<name>.partial-<pid>` next to `dest`, after removing leftovers of runs that
    /// were interrupted. An earlier output at `dest` is removed now, not at commit: a run that
    /// fails must not leave the previous run's output looking like its own.
    pub fn create(dest: &Utf8Path, marker: &'static str) -> Result<Staging> {
        let (parent, name) = split(dest)?;
        std::fs::create_dir_all(&parent).with_context(|| format!("cannot create {parent}"))?;
        check_replaceable(dest, marker)?;
        remove_stale(&parent, &name);
        if dest.exists() {
            std::fs::remove_dir_all(dest)
                .with_context(|| format!("cannot remove the earlier output {dest}"))?;
        }
        Staging::beside(&parent, &name, dest, marker)
    }

    /// Like `create`, but an earlier output at `dest` stays until `commit` swaps the new one
    /// in with one atomic exchange: readers (a web server's clients) see the old folder or the
    /// new one, never neither. For outputs that are updated, like a repository's index.
    pub fn replacing(dest: &Utf8Path, marker: &'static str) -> Result<Staging> {
        let (parent, name) = split(dest)?;
        std::fs::create_dir_all(&parent).with_context(|| format!("cannot create {parent}"))?;
        check_replaceable(dest, marker)?;
        remove_stale(&parent, &name);
        Staging::beside(&parent, &name, dest, marker)
    }

    fn beside(parent: &Utf8Path, name: &str, dest: &Utf8Path, marker: &'static str) -> Result<Staging> {
        let dir = parent.join(format!(".{name}.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tracked = Some(interrupt::track_output(&dir));
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {dir}"))?;
        Ok(Staging { dir, tracked, dest: dest.to_path_buf(), marker, committed: false })
    }

    /// Writes `bytes` at `path` in the staging folder (folders made as needed), with signals
    /// held off: an interrupted run removes the whole folder, and no write can bring back a
    /// part of it after that.
    pub fn write(&self, path: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(path);
        interrupt::holding_off(|| {
            if let Some(folder) = path.parent() {
                std::fs::create_dir_all(folder).with_context(|| format!("cannot create {folder}"))?;
            }
            std::fs::write(&path, bytes).with_context(|| format!("cannot write {path}"))
        })
    }

    /// Moves the finished folder into place, replacing an earlier output.
    pub fn commit(mut self) -> Result<Utf8PathBuf> {
        check_replaceable(&self.dest, self.marker)?;
        let tracked = self.tracked.take().expect("tracked until committed");
        tracked.release_after(|| self.publish())?;
        self.committed = true;
        Ok(self.dest.clone())
    }

    /// An earlier output is exchanged with the new one in one step; what is then in the
    /// staging folder is the old output, removed afterwards (and by `Drop` if that fails).
    fn publish(&self) -> Result<()> {
        if self.dest.exists() {
            exchange(&self.dir, &self.dest)?;
            return std::fs::remove_dir_all(&self.dir)
                .with_context(|| format!("cannot remove the earlier output, now at {}", self.dir));
        }
        std::fs::rename(&self.dir, &self.dest)
            .with_context(|| format!("cannot move {} to {}", self.dir, self.dest))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn split(dest: &Utf8Path) -> Result<(Utf8PathBuf, String)> {
    let name = dest.file_name().with_context(|| format!("{dest} has no folder name"))?.to_string();
    let parent = dest.parent().map(Utf8Path::to_path_buf).unwrap_or_else(|| ".".into());
    let parent = if parent.as_str().is_empty() { Utf8PathBuf::from(".") } else { parent };
    Ok((parent, name))
}

/// Refuses to replace a folder that holds something other than an earlier output of ours.
fn check_replaceable(dest: &Utf8Path, marker: &str) -> Result<()> {
    if !dest.exists() {
        return Ok(());
    }
    if !dest.is_dir() {
        bail!("{dest} exists and is not a folder; choose another output path");
    }
    let empty = dest.read_dir_utf8().with_context(|| format!("cannot list {dest}"))?.next().is_none();
    if !empty && !dest.join(marker).exists() {
        bail!("refusing to replace {dest}: it is not empty and has no {marker}, so it is not an earlier output; choose an empty or new folder");
    }
    Ok(())
}

fn remove_stale(parent: &Utf8Path, name: &str) {
    let Ok(entries) = parent.read_dir_utf8() else { return };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let pid = file
            .strip_prefix(&format!(".{name}.partial-"))
            .or_else(|| file.strip_prefix(&format!(".{name}.old-")))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            let alive = Utf8Path::new(&format!("/proc/{pid}")).exists() && pid != std::process::id();
            if !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Swaps two paths atomically (Linux's renameat2 with RENAME_EXCHANGE). Written by hand: std
/// has no exchange, and it is one system call.
fn exchange(a: &Utf8Path, b: &Utf8Path) -> Result<()> {
    use std::ffi::CString;
    let c = |p: &Utf8Path| CString::new(p.as_str()).with_context(|| format!("{p} holds a NUL byte"));
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them like rename(2) does.
    let status = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if status != 0 {
        let err = std::io::Error::last_os_error();
        bail!("cannot exchange {a} with {b}: {err}");
    }
    Ok(())
}

/// Writes one file beside `path` and renames it into place, so readers see the old file or
/// the whole new one, never a part.
pub fn write_atomically(path: &Utf8Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().with_context(|| format!("{path} names no file"))?;
    let partial = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let tracked = interrupt::track_output(&partial);
    if let Err(err) = std::fs::write(&partial, bytes) {
        let _ = std::fs::remove_file(&partial);
        return Err(err).with_context(|| format!("cannot write {partial}"));
    }
    tracked.release_after(|| std::fs::rename(&partial, path)).with_context(|| {
        let _ = std::fs::remove_file(&partial);
        format!("cannot move {partial} to {path}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::scratch;

    #[test]
    fn output_appears_only_on_commit() {
        let root = scratch("commit");
        let dest = root.join("dist");
        let staging = Staging::create(&dest, "MARK").unwrap();
        std::fs::write(staging.dir.join("MARK"), "1").unwrap();
        assert!(!dest.exists());
        staging.commit().unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("MARK")).unwrap(), "1");

        // A second run replaces the first; an abandoned one leaves nothing behind, not even
        // the earlier output, which must not pass for the abandoned run's.
        let staging = Staging::create(&dest, "MARK").unwrap();
        std::fs::write(staging.dir.join("MARK"), "2").unwrap();
        staging.commit().unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("MARK")).unwrap(), "2");
        drop(Staging::create(&dest, "MARK").unwrap());
        assert_eq!(root.read_dir_utf8().unwrap().count(), 0);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_foreign_folder_is_never_replaced() {
        let root = scratch("foreign");
        std::fs::write(root.join("thesis.tex"), "years of work").unwrap();
        let err = Staging::create(&root, "MARK").err().unwrap().to_string();
        assert!(err.contains("refusing to replace") && err.contains("MARK"), "{err}");
        assert!(root.join("thesis.tex").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn leftovers_of_dead_runs_are_swept() {
        let root = scratch("stale");
        std::fs::create_dir(root.join(".dist.partial-999999999")).unwrap();
        drop(Staging::create(&root.join("dist"), "MARK").unwrap());
        assert!(!root.join(".dist.partial-999999999").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
