//! Ctrl-C, SIGTERM and SIGHUP during a run: every child this xtask started is stopped with
//! its whole process group, unfinished outputs are removed, and the xtask exits with
//! 128 + the signal number. Without this a cancelled `dist` left its staging folder behind
//! and the cargo build it had started ran on as an orphan.
//!
//! Children run in process groups of their own (so a compiler's own children go with it), and
//! are registered while the registry's lock is held, so a signal can never fall between a
//! spawn and its registration.

use std::io;
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[derive(Default)]
struct Live {
    /// Process group ids (= the pid of each child, which leads its own group).
    groups: Vec<i32>,
    folders: Vec<Utf8PathBuf>,
    /// Set by `stop_children`: no child may start any more.
    stopping: bool,
}

static LIVE: Mutex<Live> = Mutex::new(Live { groups: Vec::new(), folders: Vec::new(), stopping: false });

/// How long children get to exit after SIGTERM before they are killed.
const GRACE: Duration = Duration::from_secs(5);

fn live() -> MutexGuard<'static, Live> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Installs the handlers; call once, before the first child is started.
pub fn install() -> Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).context("cannot install signal handlers")?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            shut_down(signal);
        }
    });
    Ok(())
}

fn shut_down(signal: i32) -> ! {
    // Held until exit: no child can be started, and no output committed, from here on.
    let live = live();
    for &group in &live.groups {
        send(group, libc::SIGTERM);
    }
    let deadline = Instant::now() + GRACE;
    while live.groups.iter().any(|&group| group_alive(group)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for &group in live.groups.iter().filter(|&&group| group_alive(group)) {
        send(group, libc::SIGKILL);
    }
    for output in &live.folders {
        match output.is_dir() {
            true => drop(std::fs::remove_dir_all(output)),
            false => drop(std::fs::remove_file(output)),
        }
    }
    let name = match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "SIGHUP",
    };
    eprintln!(
        "\ninterrupted by {name}: stopped {} running command(s), removed {} unfinished output(s)",
        live.groups.len(),
        live.folders.len()
    );
    std::process::exit(128 + signal)
}

fn send(group: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-group, signal);
    }
}

fn group_alive(group: i32) -> bool {
    // SAFETY: signal 0 only checks that the group still has a member.
    unsafe { libc::kill(-group, 0) == 0 }
}

/// A started child. Dropped before it has been waited for, its whole group is killed: an
/// error path never leaves a process running.
pub struct TrackedChild {
    child: Option<Child>,
    group: i32,
}

impl TrackedChild {
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.as_mut().expect("not yet consumed").wait()
    }

    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.as_mut().expect("not yet consumed").stdout.take()
    }

    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.as_mut().expect("not yet consumed").stderr.take()
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.as_mut().expect("not yet consumed").try_wait()
    }

    pub fn wait_with_output(mut self) -> io::Result<Output> {
        self.child.take().expect("not yet consumed").wait_with_output()
    }

    /// SIGTERM to the child alone (not its group): the graceful stop a smoke test awaits.
    pub fn terminate(&self) {
        // SAFETY: kill(2) on one pid; no memory is involved.
        unsafe {
            libc::kill(self.group, libc::SIGTERM);
        }
    }
}

impl Drop for TrackedChild {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if !matches!(child.try_wait(), Ok(Some(_))) {
                send(self.group, libc::SIGKILL);
                let _ = child.wait();
            }
        }
        live().groups.retain(|&g| g != self.group);
    }
}

/// Stops every running child (SIGTERM to its group) and refuses new ones from now on: the
/// first failing arch of a parallel run stops the others this way, without exiting.
pub fn stop_children() {
    let mut live = live();
    live.stopping = true;
    for &group in &live.groups {
        send(group, libc::SIGTERM);
    }
}

/// Starts `command` in a process group of its own, registered for shutdown.
pub fn spawn(command: &mut Command) -> io::Result<TrackedChild> {
    use std::os::unix::process::CommandExt;
    let mut live = live();
    if live.stopping {
        return Err(io::Error::other("not started: the run is stopping after a failure"));
    }
    let child = command.process_group(0).spawn()?;
    let group = i32::try_from(child.id()).expect("pids fit in i32");
    live.groups.push(group);
    Ok(TrackedChild { child: Some(child), group })
}

/// Runs `work` (a write into a tracked output) with signals held off: a signal that comes
/// meanwhile waits for it, and once one is being handled `work` never starts, so the handler's
/// removal of unfinished outputs cannot race a write that recreates them.
pub fn holding_off<R>(work: impl FnOnce() -> R) -> R {
    let _live = live();
    work()
}

/// An unfinished output (a folder, or a file about to be renamed into place) that a signal
/// must not leave behind.
pub struct TrackedOutput {
    path: Utf8PathBuf,
    released: bool,
}

pub fn track_output(path: &Utf8Path) -> TrackedOutput {
    live().folders.push(path.to_path_buf());
    TrackedOutput { path: path.to_path_buf(), released: false }
}

impl TrackedOutput {
    /// Runs `publish` (which moves the folder into place) with signals held off, then stops
    /// tracking: a signal sees either the unfinished folder or the published one, never half.
    pub fn release_after<R>(mut self, publish: impl FnOnce() -> R) -> R {
        let mut live = live();
        let result = publish();
        live.folders.retain(|f| f != &self.path);
        self.released = true;
        result
    }
}

impl Drop for TrackedOutput {
    fn drop(&mut self) {
        if !self.released {
            live().folders.retain(|f| f != &self.path);
        }
    }
}
