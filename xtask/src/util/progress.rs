//! What the user sees while several arches are worked on at once. On a terminal each arch has
//! a live line (its latest output) drawn by indicatif; elsewhere (CI logs, pipes) every line
//! is printed as it comes, prefixed `[i/N] ARCH:` so interleaved arches stay readable.
//! A command's own output (`detail`) only passes through the live line unless `--verbose`;
//! a failure's error carries the failing command's last lines (`Tail`).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `--verbose`: every command's own output (cargo's lines, rustup's, pip's) is shown as it
/// comes. Without it a run says one line per step; a failing command's error carries its
/// command and its last lines instead.
static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// How many of a failing command's last lines its error carries.
pub const TAIL_LINES: usize = 20;

/// The last `TAIL_LINES` of what a command printed, kept as it runs.
#[derive(Default)]
pub struct Tail {
    lines: std::collections::VecDeque<String>,
}

impl Tail {
    pub fn push(&mut self, line: &str) {
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_string());
    }

    /// Indented, for an error message.
    pub fn render(&self) -> String {
        self.lines.iter().map(|line| format!("    {line}")).collect::<Vec<_>>().join("\n")
    }

    pub fn of(text: &str) -> Tail {
        let mut tail = Tail::default();
        text.lines().for_each(|line| tail.push(line));
        tail
    }
}

pub struct Progress {
    rows: Vec<Row>,
    /// None when stderr is not a terminal: lines are printed, not drawn.
    live: Option<MultiProgress>,
}

struct Row {
    prefix: String,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// One row per name, in order.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Progress {
        let names: Vec<&str> = names.into_iter().collect();
        let live = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let total = names.len();
        let rows = names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let prefix = format!("[{}/{total}] {name}:", index + 1);
                let bar = live.as_ref().map(|multi| {
                    let style =
                        ProgressStyle::with_template("{prefix} {msg:.dim}").expect("a valid template");
                    let bar =
                        multi.add(ProgressBar::new_spinner().with_style(style).with_prefix(prefix.clone()));
                    bar.set_message("waiting");
                    bar
                });
                Row { prefix, bar }
            })
            .collect();
        Progress { rows, live }
    }

    /// A progress line for row `index`: drawn as its live line, or printed with its prefix.
    pub fn say(&self, index: usize, line: &str) {
        let row = &self.rows[index];
        match &row.bar {
            Some(bar) => bar.set_message(line.trim().to_string()),
            None => eprintln!("{} {line}", row.prefix),
        }
    }

    /// A command's own output line: kept like `note` with `--verbose`; otherwise only the live
    /// line of a terminal shows it, as it passes.
    pub fn detail(&self, index: usize, line: &str) {
        if verbose() {
            return self.note(index, line);
        }
        if let Some(bar) = &self.rows[index].bar {
            bar.set_message(line.trim().to_string());
        }
    }

    /// A line that stays: printed above the live lines on a terminal, or with its prefix.
    pub fn note(&self, index: usize, line: &str) {
        let row = &self.rows[index];
        match &self.live {
            Some(multi) => {
                let _ = multi.println(format!("{} {line}", row.prefix));
            }
            None => eprintln!("{} {line}", row.prefix),
        }
    }

    /// Row `index` is done: its live line shows `line` and stops changing.
    pub fn finish(&self, index: usize, line: &str) {
        match &self.rows[index].bar {
            Some(bar) => bar.finish_with_message(line.to_string()),
            None => self.note(index, line),
        }
    }

    /// Removes the live lines (before a summary table or an error is printed).
    pub fn clear(&self) {
        if let Some(multi) = &self.live {
            let _ = multi.clear();
        }
    }

    /// A handle that speaks for one row.
    pub fn row(&self, index: usize) -> RowLog<'_> {
        RowLog { progress: self, index }
    }
}

/// What a worker holds to report on its own row.
#[derive(Clone, Copy)]
pub struct RowLog<'a> {
    progress: &'a Progress,
    index: usize,
}

impl RowLog<'_> {
    pub fn say(&self, line: &str) {
        self.progress.say(self.index, line);
    }

    pub fn note(&self, line: &str) {
        self.progress.note(self.index, line);
    }

    pub fn detail(&self, line: &str) {
        self.progress.detail(self.index, line);
    }
}
