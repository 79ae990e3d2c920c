//! External commands as values: built by pure functions (and unit-tested on their arguments),
//! printed by `--dry-run`, run through xshell's environment and folder handling, and started
//! in a process group the interrupt handler can stop.

use std::fmt;

use std::process::Stdio;

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use xshell::Shell;

use crate::util::interrupt::{self, TrackedChild};
use crate::util::progress::{self, RowLog, Tail};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Directories put in front of PATH (tools fetched into the cache).
    pub path_prepend: Vec<Utf8PathBuf>,
    /// The folder it runs in, when not the xtask's own (`apt-get download` writes there).
    pub dir: Option<Utf8PathBuf>,
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            path_prepend: Vec::new(),
            dir: None,
        }
    }

    pub fn current_dir(mut self, dir: impl Into<Utf8PathBuf>) -> Cmd {
        self.dir = Some(dir.into());
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Cmd {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Cmd {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn path_prepend(mut self, dirs: &[Utf8PathBuf]) -> Cmd {
        self.path_prepend.extend(dirs.iter().cloned());
        self
    }

    fn to_xshell<'a>(&self, sh: &'a Shell) -> xshell::Cmd<'a> {
        let mut cmd = sh.cmd(&self.program).args(&self.args);
        for (key, value) in &self.env {
            cmd = cmd.env(key, value);
        }
        if !self.path_prepend.is_empty() {
            let mut dirs: Vec<std::path::PathBuf> =
                self.path_prepend.iter().map(|d| d.clone().into()).collect();
            dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
            cmd = cmd.env("PATH", std::env::join_paths(dirs).expect("PATH entries contain no ':'"));
        }
        cmd.quiet()
    }

    fn command(&self, sh: &Shell) -> std::process::Command {
        let mut command: std::process::Command = self.to_xshell(sh).into();
        // A child in a process group of its own that read the terminal would be stopped (SIGTTIN).
        command.stdin(Stdio::null());
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command
    }

    fn spawn(&self, command: &mut std::process::Command) -> Result<TrackedChild> {
        interrupt::spawn(command)
            .with_context(|| format!("cannot start `{}` (is it installed?)", self.program))
    }

    /// Runs with output shown to the user.
    pub fn run(&self, sh: &Shell) -> Result<()> {
        let mut child = self.spawn(&mut self.command(sh))?;
        let status = child.wait().with_context(|| format!("lost track of `{self}`"))?;
        if !status.success() {
            bail!("command failed ({status}): {self}");
        }
        Ok(())
    }

    /// Runs a step of a plan: its output is shown with `--verbose`, and otherwise kept back,
    /// the error of a failure carrying its last lines.
    pub fn run_step(&self, sh: &Shell) -> Result<()> {
        if progress::verbose() {
            return self.run(sh);
        }
        let (ok, output) = self.output(sh)?;
        if !ok {
            bail!("command failed: {self}\n  its last lines:\n{}", Tail::of(&output).render());
        }
        Ok(())
    }

    /// Runs a long step of one row (an arch's build, an image's build): each output line
    /// passes through `log.detail` (the row's live line; printed with `--verbose`), and the
    /// error of a failure carries the command and its last lines.
    pub fn run_logged(&self, sh: &Shell, log: RowLog) -> Result<()> {
        let mut tail = Tail::default();
        let ran = self.run_lines(sh, |line| {
            tail.push(line);
            log.detail(line);
        });
        ran.map_err(|err| anyhow::anyhow!("{err:#}\n  its last lines:\n{}", tail.render()))
    }

    /// Runs with stdout and stderr, merged, handed line by line to `on_line` (for progress
    /// display); fails on a non-zero exit.
    pub fn run_lines(&self, sh: &Shell, mut on_line: impl FnMut(&str)) -> Result<()> {
        let mut command = self.command(sh);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = self.spawn(&mut command)?;
        let (sender, lines) = std::sync::mpsc::channel();
        let stdout = child.take_stdout().map(|out| forward_lines(out, sender.clone()));
        let stderr = child.take_stderr().map(|err| forward_lines(err, sender));
        // Ends when both pipes are closed: the command and everything it started are done.
        for line in lines {
            on_line(&line);
        }
        for reader in stdout.into_iter().chain(stderr) {
            let _ = reader.join();
        }
        let status = child.wait().with_context(|| format!("lost track of `{self}`"))?;
        if !status.success() {
            bail!("command failed ({status}): {self}");
        }
        Ok(())
    }

    /// Runs and returns stdout; fails on a non-zero exit, with stderr in the error.
    pub fn read(&self, sh: &Shell) -> Result<String> {
        let output = self.captured(sh)?;
        if !output.status.success() {
            bail!(
                "command failed ({}): {self}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        String::from_utf8(output.stdout).with_context(|| format!("`{self}` printed something not UTF-8"))
    }

    /// Runs and returns (success, stdout + stderr) without failing on a non-zero exit.
    pub fn output(&self, sh: &Shell) -> Result<(bool, String)> {
        let output = self.captured(sh)?;
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        Ok((output.status.success(), text))
    }

    /// Runs to the end with stdout and stderr captured.
    fn captured(&self, sh: &Shell) -> Result<std::process::Output> {
        let mut command = self.command(sh);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.spawn(&mut command)?.wait_with_output().with_context(|| format!("lost track of `{self}`"))
    }

    /// Starts the command with stdout and stderr going to `log`, for a process that runs
    /// alongside the xtask (a daemon under test).
    pub fn start(&self, sh: &Shell, log: &std::fs::File) -> Result<TrackedChild> {
        let mut command = self.command(sh);
        command.stdout(log.try_clone()?).stderr(log.try_clone()?);
        self.spawn(&mut command)
    }
}

/// Sends each line read from `pipe` to `sender`, on a thread of its own.
fn forward_lines(
    pipe: impl std::io::Read + Send + 'static,
    sender: std::sync::mpsc::Sender<String>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    })
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = Vec::new();
        if let Some(dir) = &self.dir {
            words.push(format!("cd {} &&", quote(dir.as_str())));
        }
        if !self.path_prepend.is_empty() {
            let dirs: Vec<&str> = self.path_prepend.iter().map(|d| d.as_str()).collect();
            words.push(format!("PATH={}:$PATH", quote(&dirs.join(":"))));
        }
        words.extend(self.env.iter().map(|(k, v)| format!("{k}={}", quote(v))));
        words.push(quote(&self.program));
        words.extend(self.args.iter().map(|a| quote(a)));
        f.write_str(&words.join(" "))
    }
}

/// Quotes for a POSIX shell only where needed, so printed commands can be pasted.
pub fn quote(word: &str) -> String {
    let plain =
        !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%^".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_pasteable_shell() {
        let cmd = Cmd::new("cargo")
            .args(["build", "--target", "x86_64-unknown-linux-musl"])
            .env("RUSTFLAGS", "-C linker=rust-lld")
            .path_prepend(&["/cache/zig".into()]);
        assert_eq!(
            cmd.to_string(),
            "PATH=/cache/zig:$PATH RUSTFLAGS='-C linker=rust-lld' cargo build --target x86_64-unknown-linux-musl"
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
