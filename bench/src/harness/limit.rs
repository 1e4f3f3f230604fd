//! The ceiling: procrun against the least a runner can do, in the same
//! run. Throughput against the limit multiplexer (`limit.rs`) into a sink
//! that verifies nothing (the checker would otherwise take a core from the
//! runner), with the raw pipe beside it; start and stop against the bare
//! posix_spawn launcher. The ratios are printed before every other table.

use std::time::Duration;

use super::{Bench, Reading};
use crate::line::LINE_LEN;
use crate::report::{Table, col};
use crate::runners::{Kind, Runner};

/// Row names.
pub const MUX: &str = "limit mux";
pub const LAUNCHER: &str = "launcher";
/// The limit multiplexer with a process group per instance (start and stop).
pub const GROUPS: &str = "mux, own groups";
const RAW: &str = "raw pipe";

impl Bench {
    /// Every runner of the limit scenarios: the limit runner of each
    /// table, procrun (and the builds compared with it), the raw pipe.
    fn limit_runners(&self, mux: bool) -> Vec<(&'static str, Runner)> {
        let ours = |name: &'static str, kind: Kind| {
            (
                name,
                Runner {
                    name,
                    kind,
                    exe: self.exe.clone(),
                },
            )
        };
        let mut out = Vec::new();
        if mux {
            out.push(ours(MUX, Kind::LimitMux));
        } else {
            out.push(ours(LAUNCHER, Kind::Baseline));
            out.push(ours(GROUPS, Kind::LimitMuxGroups));
        }
        for r in self.runners.iter().filter(|r| r.kind == Kind::Procrun) {
            out.push((r.name, r.clone()));
        }
        if mux {
            out.push(ours(RAW, Kind::Baseline));
        }
        out
    }

    /// The ceiling scenarios, then their summary at the top of the report.
    pub(super) fn limit(&mut self) {
        let first = self.tables.len();
        for k in self.opts.limit_writers.clone() {
            self.limit_throughput(k);
        }
        for k in self.opts.limit_instances.clone() {
            self.limit_startup(k);
        }
        let summary = self.limit_summary(&self.tables[first..]);
        self.tables.insert(first, summary);
    }

    /// K writers flat out, into a sink.
    fn limit_throughput(&mut self, k: u32) {
        let mut t = Table::new(
            format!("Limit: {k} writer(s) × 100-byte lines into a sink that verifies nothing"),
            vec![
                col("MB/s", 1),
                col("runner CPU s/GB", 2),
                col("peak RSS MiB (main process)", 1),
                col("PSS MiB (all runner processes)", 1),
            ],
        );
        t.ratio_col = Some((0, true));
        t.baseline_cols = vec![1];
        t.baseline = Some(MUX.into());
        t.vs_procrun = false;
        let per = ((self.opts.mib * 1048576.0 / LINE_LEN as f64) / f64::from(k)).ceil() as u64;
        for rep in 0..self.opts.reps {
            for (name, r) in self.limit_runners(true) {
                self.progress(&format!("limit K={k} {name} rep {}", rep + 1));
                let shape = (k, per, self.opts.per_write, None);
                if let Err(e) = self.throughput_once(&mut t, &r, name, shape, Reading::Sink) {
                    t.note(name, e);
                }
            }
        }
        self.tables.push(t);
    }

    /// K instances until every one printed its ready line, then Ctrl-C.
    fn limit_startup(&mut self, k: u32) {
        let mut t = Table::new(
            format!("Limit: start {k} instance(s) until every ready line is seen; stop"),
            super::startup_columns(),
        );
        t.ratio_col = Some((0, false));
        t.baseline_cols = vec![4];
        t.baseline = Some(LAUNCHER.into());
        t.vs_procrun = false;
        for rep in 0..self.opts.reps {
            for (name, r) in self.limit_runners(false) {
                self.progress(&format!("limit start K={k} {name} rep {}", rep + 1));
                if let Err(e) = self.startup_once(&mut t, &r, name, k) {
                    t.note(name, e);
                }
            }
            // Let the last run's processes finish going.
            std::thread::sleep(Duration::from_millis(50));
        }
        self.tables.push(t);
    }

    /// One line per figure: procrun's median over the limit runner's.
    fn limit_summary(&self, tables: &[Table]) -> Table {
        let builds: Vec<&'static str> = self
            .runners
            .iter()
            .filter(|r| r.kind == Kind::Procrun)
            .map(|r| r.name)
            .collect();
        let mut cols = Vec::new();
        for b in &builds {
            cols.push(col(b, 2));
        }
        let mut s = Table::new(
            "Limit ratios: procrun ÷ the limit runner of the same run (medians; throughput: higher is better, the rest: lower)".into(),
            cols,
        );
        s.vs_procrun = false;
        s.row_label = "figure";
        for t in tables {
            let (figure, cols): (String, Vec<(usize, &str)>) = if t.baseline.as_deref() == Some(MUX)
            {
                let k = t.title.split_whitespace().nth(1).unwrap_or("?");
                (format!("{k} writer(s)"), vec![(0, "MB/s"), (1, "CPU s/GB")])
            } else {
                let k = t.title.split_whitespace().nth(2).unwrap_or("?");
                (format!("{k} instances"), vec![(0, "start"), (4, "stop")])
            };
            for (c, what) in cols {
                let row = format!("{what}, {figure} ÷ {}", t.baseline.as_deref().unwrap_or(""));
                for b in &builds {
                    if let Some(r) = t.vs_baseline(b, c) {
                        s.push(&row, b, r);
                    } else {
                        s.row(&row);
                    }
                }
            }
            // The stop against the least a runner with a group per
            // instance does: the part of the gap that design costs.
            if t.baseline.as_deref() == Some(LAUNCHER) {
                let row = format!("stop, {figure} ÷ {GROUPS}");
                for b in &builds {
                    if let Some(r) = t.vs(b, GROUPS, 4) {
                        s.push(&row, b, r);
                    } else {
                        s.row(&row);
                    }
                }
            }
        }
        s
    }
}
