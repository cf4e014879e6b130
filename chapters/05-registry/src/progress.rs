//! Pull progress: a bar per layer on a terminal (indicatif), one quiet line
//! per finished layer otherwise (logs, CI, pipes).

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub struct Progress {
    bars: Option<MultiProgress>,
}

pub struct Item {
    bar: Option<ProgressBar>,
    id: String,
}

impl Progress {
    /// Bars only when stderr is a terminal.
    pub fn new() -> Progress {
        Progress {
            bars: std::io::stderr().is_terminal().then(MultiProgress::new),
        }
    }

    /// No output at all.
    pub fn quiet() -> Progress {
        Progress {
            bars: Some(MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::hidden(),
            )),
        }
    }

    pub fn item(&self, id: &str, total: u64) -> Item {
        let bar = self.bars.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:.bold} [{bar:30}] {bytes}/{total_bytes} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(id.to_string());
            bar
        });
        Item {
            bar,
            id: id.to_string(),
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Item {
    pub fn advance(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    pub fn finish(&self, message: &str) {
        match &self.bar {
            Some(b) => b.finish_with_message(message.to_string()),
            None => eprintln!("{}: {message}", self.id),
        }
    }
}
