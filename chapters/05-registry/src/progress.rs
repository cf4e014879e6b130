//! Pull progress: a bar per layer on a terminal (indicatif), one quiet line
//! per finished layer otherwise (logs, CI, pipes), or events handed to a
//! caller (chapter 06's daemon turns them into Docker's JSON messages).

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What happened to a layer, for a [`Sink`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    Started {
        total: u64,
    },
    Advanced {
        current: u64,
        total: u64,
    },
    Finished(&'a str),
    /// A later step on a finished download (e.g. "Pull complete").
    Note(&'a str),
}

/// Receives (layer id, event); called from the download threads.
pub type Sink = Arc<dyn Fn(&str, Event) + Send + Sync>;

pub struct Progress {
    bars: Option<MultiProgress>,
    sink: Option<Sink>,
}

pub struct Item {
    bar: Option<ProgressBar>,
    id: String,
    sink: Option<Sink>,
    total: u64,
    current: AtomicU64,
    /// Bytes at the last Advanced event (one every 1/50 of the layer).
    reported: AtomicU64,
}

impl Progress {
    /// Bars only when stderr is a terminal.
    pub fn new() -> Progress {
        Progress {
            bars: std::io::stderr().is_terminal().then(MultiProgress::new),
            sink: None,
        }
    }

    /// Events to `sink`, nothing printed.
    pub fn to_sink(sink: Sink) -> Progress {
        Progress {
            bars: Some(MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::hidden(),
            )),
            sink: Some(sink),
        }
    }

    /// A step after the download (only a sink hears of it).
    pub fn note(&self, id: &str, message: &str) {
        if let Some(sink) = &self.sink {
            sink(id, Event::Note(message));
        }
    }

    /// No output at all.
    pub fn quiet() -> Progress {
        Progress {
            bars: Some(MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::hidden(),
            )),
            sink: None,
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
        if let Some(sink) = &self.sink {
            sink(id, Event::Started { total });
        }
        Item {
            bar,
            id: id.to_string(),
            sink: self.sink.clone(),
            total,
            current: AtomicU64::new(0),
            reported: AtomicU64::new(0),
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
        if let Some(sink) = &self.sink {
            let current = self.current.fetch_add(n, Ordering::Relaxed) + n;
            let step = (self.total / 50).max(1);
            if current - self.reported.load(Ordering::Relaxed) >= step || current >= self.total {
                self.reported.store(current, Ordering::Relaxed);
                sink(
                    &self.id,
                    Event::Advanced {
                        current,
                        total: self.total,
                    },
                );
            }
        }
    }

    pub fn finish(&self, message: &str) {
        if let Some(sink) = &self.sink {
            sink(&self.id, Event::Finished(message));
            return;
        }
        match &self.bar {
            Some(b) => b.finish_with_message(message.to_string()),
            None => eprintln!("{}: {message}", self.id),
        }
    }
}
