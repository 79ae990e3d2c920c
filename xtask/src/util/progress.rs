//! What the user sees while several arches are worked on at once. On a terminal each arch has
//! a live line (its latest output) drawn by indicatif; elsewhere (CI logs, pipes) every line
//! is printed as it comes, prefixed `[i/N] ARCH:` so interleaved arches stay readable.
//! Every line is also kept per arch, so a failure can show the whole output of the one that
//! failed even when the terminal only showed its latest line.

use std::io::IsTerminal;
use std::sync::{Mutex, PoisonError};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    rows: Vec<Row>,
    /// None when stderr is not a terminal: lines are printed, not drawn.
    live: Option<MultiProgress>,
}

struct Row {
    prefix: String,
    bar: Option<ProgressBar>,
    lines: Mutex<Vec<String>>,
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
                Row { prefix, bar, lines: Mutex::new(Vec::new()) }
            })
            .collect();
        Progress { rows, live }
    }

    /// A progress line for row `index`: drawn as its live line, or printed with its prefix.
    pub fn say(&self, index: usize, line: &str) {
        let row = &self.rows[index];
        match &row.bar {
            Some(bar) => {
                row.keep(line);
                bar.set_message(line.trim().to_string());
            }
            None => eprintln!("{} {line}", row.prefix),
        }
    }

    /// A line that stays: printed above the live lines on a terminal, or with its prefix.
    pub fn note(&self, index: usize, line: &str) {
        let row = &self.rows[index];
        match &self.live {
            Some(multi) => {
                row.keep(line);
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

    /// Everything row `index` said, for an error report when only its last line was visible.
    pub fn transcript(&self, index: usize) -> Option<String> {
        self.live.as_ref()?;
        let lines = self.rows[index].lines.lock().unwrap_or_else(PoisonError::into_inner);
        Some(lines.join("\n"))
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

impl Row {
    /// Kept for the transcript; only a terminal needs it, elsewhere every line was printed.
    fn keep(&self, line: &str) {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner).push(line.to_string());
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
}
