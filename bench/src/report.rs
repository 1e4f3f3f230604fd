//! Result tables (Markdown) and JSON.

use std::fmt::Write as _;

/// How the repetitions of one column are summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    /// median [min–max]
    Median,
    /// the worst repetition (error counts)
    Max,
}

#[derive(Debug, Clone)]
pub struct Col {
    pub name: &'static str,
    pub agg: Agg,
    pub digits: usize,
}

pub const fn col(name: &'static str, digits: usize) -> Col {
    Col {
        name,
        agg: Agg::Median,
        digits,
    }
}

pub const fn worst(name: &'static str) -> Col {
    Col {
        name,
        agg: Agg::Max,
        digits: 0,
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub runner: String,
    /// One list of values (one per repetition) per column.
    pub values: Vec<Vec<f64>>,
    pub notes: Vec<String>,
}

/// One scenario's table.
#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    pub cols: Vec<Col>,
    pub rows: Vec<Row>,
    /// Column compared across runners, and whether higher is better.
    pub ratio_col: Option<(usize, bool)>,
    /// The runner that ratios are taken against ("raw pipe", "fork/exec").
    pub baseline: Option<String>,
    /// More columns compared with the baseline (not across runners).
    pub baseline_cols: Vec<usize>,
    /// Whether to show the "procrun vs runner" column (off for tables whose
    /// rows are all procrun or baselines).
    pub vs_procrun: bool,
    /// The header of the first column.
    pub row_label: &'static str,
}

impl Table {
    pub fn new(title: String, cols: Vec<Col>) -> Self {
        Table {
            title,
            cols,
            rows: Vec::new(),
            ratio_col: None,
            baseline: None,
            baseline_cols: Vec::new(),
            vs_procrun: true,
            row_label: "runner",
        }
    }

    /// The columns compared with the baseline, in order.
    fn ratio_cols(&self) -> Vec<usize> {
        self.ratio_col
            .map(|(c, _)| c)
            .into_iter()
            .chain(self.baseline_cols.iter().copied())
            .collect()
    }

    /// `runner`'s median of column `col` over the baseline's.
    pub fn vs_baseline(&self, runner: &str, col: usize) -> Option<f64> {
        let b = self.median_of(self.baseline.as_deref()?, col)?;
        let m = self.median_of(runner, col)?;
        (b > 0.0).then(|| m / b)
    }

    pub fn row(&mut self, runner: &str) -> &mut Row {
        if let Some(i) = self.rows.iter().position(|r| r.runner == runner) {
            return &mut self.rows[i];
        }
        self.rows.push(Row {
            runner: runner.to_string(),
            values: vec![Vec::new(); self.cols.len()],
            notes: Vec::new(),
        });
        self.rows.last_mut().expect("just pushed")
    }

    pub fn push(&mut self, runner: &str, col: &str, value: f64) {
        let i = self
            .cols
            .iter()
            .position(|c| c.name == col)
            .unwrap_or_else(|| panic!("no column {col}"));
        self.row(runner).values[i].push(value);
    }

    pub fn note(&mut self, runner: &str, note: String) {
        let row = self.row(runner);
        if !row.notes.contains(&note) {
            row.notes.push(note);
        }
    }

    /// `runner`'s median in `col` over `other`'s.
    pub fn vs(&self, runner: &str, other: &str, col: usize) -> Option<f64> {
        let b = self.median_of(other, col)?;
        let m = self.median_of(runner, col)?;
        (b > 0.0).then(|| m / b)
    }

    fn median_of(&self, runner: &str, col: usize) -> Option<f64> {
        let row = self.rows.iter().find(|r| r.runner == runner)?;
        median(&row.values[col])
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.title);
        let mut header: Vec<String> = vec![self.row_label.into()];
        header.extend(self.cols.iter().map(|c| match c.agg {
            Agg::Median => c.name.to_string(),
            Agg::Max => format!("{} (worst)", c.name),
        }));
        if let Some(b) = &self.baseline {
            for ci in self.ratio_cols() {
                header.push(format!("{} vs {b}", self.cols[ci].name));
            }
        }
        if let Some((ci, _)) = self.ratio_col.filter(|_| self.vs_procrun) {
            header.push(format!("procrun vs runner ({})", self.cols[ci].name));
        }
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(
            out,
            "|{}",
            header.iter().map(|_| "---|").collect::<String>()
        );
        for row in &self.rows {
            let mut cells = vec![row.runner.clone()];
            for (c, vals) in self.cols.iter().zip(&row.values) {
                cells.push(cell(c, vals));
            }
            if self.baseline.is_some() {
                for ci in self.ratio_cols() {
                    cells.push(match self.vs_baseline(&row.runner, ci) {
                        Some(r) => format!("{r:.2}×"),
                        None => "–".into(),
                    });
                }
            }
            if let Some((ci, higher)) = self.ratio_col.filter(|_| self.vs_procrun) {
                let mine = median(&row.values[ci]);
                cells.push(match (mine, self.median_of("procrun", ci)) {
                    (Some(m), Some(p)) if row.runner != "procrun" && m > 0.0 && p > 0.0 => {
                        let r = if higher { p / m } else { m / p };
                        format!("{r:.2}× {}", if r >= 1.0 { "better" } else { "worse" })
                    }
                    _ => "–".into(),
                });
            }
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        let notes: Vec<String> = self
            .rows
            .iter()
            .flat_map(|r| r.notes.iter().map(move |n| format!("- {}: {n}", r.runner)))
            .collect();
        if !notes.is_empty() {
            let _ = writeln!(out, "\n{}", notes.join("\n"));
        }
        out
    }

    pub fn json(&self) -> String {
        let mut rows = Vec::new();
        for row in &self.rows {
            let mut metrics = Vec::new();
            for (c, vals) in self.cols.iter().zip(&row.values) {
                let list = vals.iter().map(|v| num(*v)).collect::<Vec<_>>().join(",");
                metrics.push(format!(
                    "{}:{{\"values\":[{list}],\"median\":{},\"min\":{},\"max\":{}}}",
                    jstr(c.name),
                    median(vals).map_or("null".into(), num),
                    vals.iter()
                        .copied()
                        .reduce(f64::min)
                        .map_or("null".into(), num),
                    vals.iter()
                        .copied()
                        .reduce(f64::max)
                        .map_or("null".into(), num),
                ));
            }
            let notes = row.notes.iter().map(|n| jstr(n)).collect::<Vec<_>>();
            // Medians over the baseline's, as in the Markdown table.
            let ratios = self
                .ratio_cols()
                .into_iter()
                .filter(|_| self.baseline.is_some())
                .map(|ci| {
                    let r = self.vs_baseline(&row.runner, ci);
                    format!(
                        "{}:{}",
                        jstr(self.cols[ci].name),
                        r.map_or("null".into(), num)
                    )
                })
                .collect::<Vec<_>>();
            rows.push(format!(
                "{{\"runner\":{},\"metrics\":{{{}}},\"vs_baseline\":{{{}}},\"notes\":[{}]}}",
                jstr(&row.runner),
                metrics.join(","),
                ratios.join(","),
                notes.join(",")
            ));
        }
        format!(
            "{{\"title\":{},\"baseline\":{},\"rows\":[{}]}}",
            jstr(&self.title),
            self.baseline.as_deref().map_or("null".into(), jstr),
            rows.join(",")
        )
    }
}

fn cell(c: &Col, vals: &[f64]) -> String {
    if vals.is_empty() {
        return "–".into();
    }
    match c.agg {
        Agg::Max => format!("{:.0}", vals.iter().copied().fold(f64::MIN, f64::max)),
        Agg::Median => {
            let m = median(vals).unwrap_or(0.0);
            if vals.len() == 1 {
                return format!("{m:.*}", c.digits);
            }
            let lo = vals.iter().copied().fold(f64::MAX, f64::min);
            let hi = vals.iter().copied().fold(f64::MIN, f64::max);
            format!("{m:.*} [{lo:.*}–{hi:.*}]", c.digits, c.digits, c.digits)
        }
    }
}

pub fn median(vals: &[f64]) -> Option<f64> {
    if vals.is_empty() {
        return None;
    }
    let mut v = vals.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

pub fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
}

pub fn jstr(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
