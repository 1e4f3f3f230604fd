//! The supervisor: spawns the plan's instances, pumps their output to the
//! printer, stops them and leaves nothing behind.
//!
//! - [`machine`]: the pure state machine that decides (restarts, stops,
//!   the exit code), tested without processes;
//! - [`dispatcher`]: the one task that feeds it events and performs its
//!   actions;
//! - [`control`](mod@control): control requests, resolved and answered once
//!   done;
//! - [`unit`](mod@unit): one task per instance (wait, signal its group) plus its
//!   output readers;
//! - [`probe`]: readiness checks, run without blocking the dispatcher;
//! - [`spawn`]: how an instance is started ([`vfork`]: without `fork()`
//!   on Linux, from the [`spawner`] thread; [`child`]: the started
//!   process, as its unit holds it);
//! - [`pty`]: how one is started on a terminal of its own, its output read,
//!   and clients connected to it;
//! - [`signals`]: group signalling, signal names, exit codes;
//! - [`reap`]: descendants that left their group (Linux subreaper sweep);
//! - [`watchdog`]: kills every group if procrun itself is killed.

pub mod child;
pub mod control;
pub mod dispatcher;
pub mod machine;
pub mod probe;
pub mod pty;
pub mod reap;
pub mod signals;
pub mod spawn;
#[cfg(target_os = "linux")]
pub mod spawner;
pub mod unit;
#[cfg(target_os = "linux")]
pub mod vfork;
pub mod watchdog;
