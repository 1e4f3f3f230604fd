//! The supervisor: spawns the plan's instances, pumps their output to the
//! printer, stops them and leaves nothing behind.
//!
//! - [`machine`]: the pure state machine that decides (restarts, stops,
//!   the exit code), tested without processes;
//! - [`dispatcher`]: the one task that feeds it events and performs its
//!   actions;
//! - [`unit`](mod@unit): one task per instance (wait, signal its group) plus its
//!   output readers;
//! - [`probe`]: readiness checks, run without blocking the dispatcher;
//! - [`spawn`]: how an instance is started ([`vfork`]: without `fork()`
//!   on Linux; [`child`]: the started process, as its unit holds it);
//! - [`signals`]: group signalling, signal names, exit codes;
//! - [`reap`]: descendants that left their group (Linux subreaper sweep);
//! - [`watchdog`]: kills every group if procrun itself is killed.

pub mod child;
pub mod dispatcher;
pub mod machine;
pub mod probe;
pub mod reap;
pub mod signals;
pub mod spawn;
pub mod unit;
#[cfg(target_os = "linux")]
pub mod vfork;
pub mod watchdog;
