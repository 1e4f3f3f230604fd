//! The dashboard's actions: what each key asks of procrun, with the
//! question asked first where a key is hard to take back (SIGKILL,
//! restarting everything, stopping the app), and the search through the
//! output pane. Part of [`super::model`], in a file of its own for length.

use std::time::Instant;

use serde_json::{Value, json};

use crate::ui::logs::{self, Lines};
use crate::ui::model::{Call, Effect, MAX_IN_FLIGHT, Model, Overlay, Selected};

impl Model {
    pub(super) fn send(&mut self, call: Call, now: Instant) -> Vec<Effect> {
        if self.in_flight >= MAX_IN_FLIGHT {
            self.say(
                format!("{} requests are still waiting for procrun", self.in_flight),
                true,
                now,
            );
            return Vec::new();
        }
        if call.method == "quit" {
            self.quitting = true;
            self.say("stopping the app…", false, now);
        } else {
            self.say(format!("asked: {}", call.label), false, now);
        }
        self.in_flight += 1;
        vec![Effect::Call(call)]
    }

    pub(super) fn ask(&mut self, question: String, call: Call) -> Vec<Effect> {
        self.overlay = Overlay::Confirm { question, call };
        Vec::new()
    }

    pub(super) fn restart(&mut self, now: Instant) -> Vec<Effect> {
        match self.selected.clone() {
            Selected::All => {
                let call = names_call("restart", &[], "restart of every instance");
                let n = self.instances.len();
                self.ask(format!("Restart all {n} instances?"), call)
            }
            Selected::Instance(name) => {
                let label = format!("restart of {name}");
                self.send(names_call("restart", &[&name], &label), now)
            }
            Selected::Type(t) => {
                self.say(format!("{t} has no instance: + starts one"), true, now);
                Vec::new()
            }
        }
    }

    pub(super) fn stop(&mut self, now: Instant) -> Vec<Effect> {
        let Some(i) = self.instance() else {
            self.say("select an instance to stop", true, now);
            return Vec::new();
        };
        if !i.state().is_live() {
            let text = format!("{} is already {}", i.name, i.state);
            self.say(text, true, now);
            return Vec::new();
        }
        let name = i.name.clone();
        self.send(
            names_call("stop", &[&name], &format!("stop of {name}")),
            now,
        )
    }

    pub(super) fn start(&mut self, now: Instant) -> Vec<Effect> {
        let Some(i) = self.instance() else {
            self.say("select an instance to start", true, now);
            return Vec::new();
        };
        if i.state().is_live() {
            let text = format!("{} is {} (r restarts it)", i.name, i.state);
            self.say(text, true, now);
            return Vec::new();
        }
        // A stopped or ended instance is started by a restart
        // (docs/control.md).
        let name = i.name.clone();
        self.send(
            names_call("restart", &[&name], &format!("start of {name}")),
            now,
        )
    }

    pub(super) fn scale(&mut self, delta: i64, now: Instant) -> Vec<Effect> {
        let type_name = match &self.selected {
            Selected::Instance(_) => self.instance().map(|i| i.type_name.clone()),
            Selected::Type(t) => Some(t.clone()),
            Selected::All => None,
        };
        let Some(type_name) = type_name else {
            self.say("select an instance of the type to scale", true, now);
            return Vec::new();
        };
        let current = self.scale_to.get(&type_name).copied().unwrap_or_else(|| {
            self.types
                .iter()
                .find(|t| t.name == type_name)
                .map_or(0, |t| t.count)
        });
        let Some(count) = current.checked_add_signed(delta as i32) else {
            self.say(format!("{type_name} has no instance left"), true, now);
            return Vec::new();
        };
        self.scale_to.insert(type_name.clone(), count);
        let call = Call {
            method: "scale",
            params: json!({ "counts": { type_name.as_str(): count } }),
            label: format!("scale of {type_name} to {count}"),
        };
        self.send(call, now)
    }

    pub(super) fn kill(&mut self, now: Instant) -> Vec<Effect> {
        let Some(i) = self.instance() else {
            self.say("select an instance to kill", true, now);
            return Vec::new();
        };
        let Some(pid) = i.pid else {
            let text = format!("{} has no process to kill", i.name);
            self.say(text, true, now);
            return Vec::new();
        };
        let name = i.name.clone();
        let call = Call {
            method: "signal",
            params: json!({ "signal": "KILL", "names": [name] }),
            label: format!("SIGKILL to {name}"),
        };
        self.ask(format!("Send SIGKILL to {name} (pid {pid})?"), call)
    }

    pub(super) fn quit(&mut self, now: Instant) -> Vec<Effect> {
        if !self.foreground {
            return vec![Effect::Quit];
        }
        if self.quitting {
            self.say(
                "stopping the app… (each process gets its stop timeout)",
                false,
                now,
            );
            return Vec::new();
        }
        let call = Call {
            method: "quit",
            params: Value::Null,
            label: "quit".into(),
        };
        let live = self
            .instances
            .iter()
            .filter(|i| i.state().is_live())
            .count();
        if live == 0 {
            return self.send(call, now);
        }
        let s = if live == 1 { "" } else { "es" };
        self.ask(
            format!("Stop the app ({live} process{s} running) and quit?"),
            call,
        )
    }

    /// Moves to the next match: older (`up`) or newer.
    pub(super) fn find(&mut self, up: bool, now: Instant) {
        let Some(query) = self.search.clone() else {
            self.say("no search: / starts one", true, now);
            return;
        };
        let Some(lines) = self.lines() else {
            return;
        };
        let len = lines.len();
        if len == 0 {
            self.say(format!("not found: {query}"), true, now);
            return;
        }
        let bottom = len - 1 - self.pane.offset.min(len - 1);
        let from = self.search_at.and_then(|id| lines.position(id));
        let hit = if up {
            let start = from.map_or(Some(bottom), |i| i.checked_sub(1));
            start.and_then(|s| (0..=s).rev().find(|&i| matches(lines, i, &query)))
        } else {
            let start = from.map_or(bottom + 1, |i| i + 1);
            (start..len).find(|&i| matches(lines, i, &query))
        };
        let Some(i) = hit else {
            let which = if self.search_at.is_some() {
                if up {
                    "no older match"
                } else {
                    "no newer match"
                }
            } else {
                "not found"
            };
            self.say(format!("{which}: {query}"), true, now);
            return;
        };
        let id = lines.get(i).map(|l| l.id);
        // The match mid-pane, with what followed it below.
        let below = usize::from(self.pane.rows / 2);
        let bottom = (i + below).min(len - 1);
        self.search_at = id;
        self.pane.offset = len - 1 - bottom;
        self.pane.follow = false;
    }
}

fn matches(lines: &Lines, i: usize, query: &str) -> bool {
    lines.get(i).is_some_and(|l| logs::contains(&l.text, query))
}

fn names_call(method: &'static str, names: &[&str], label: &str) -> Call {
    Call {
        method,
        params: json!({ "names": names }),
        label: label.to_owned(),
    }
}
