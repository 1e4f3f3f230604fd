//! The supervisor: spawns the plan's instances, pumps their output to the
//! printer, stops them and leaves nothing behind.
//!
//! - [`dispatcher`]: the one task that owns all state and decides;
//! - [`unit`](mod@unit): one task per instance (wait, signal its group) plus its
//!   output readers;
//! - [`spawn`]: how an instance is started;
//! - [`signals`]: group signalling, signal names, exit codes;
//! - [`reap`]: descendants that left their group (Linux subreaper sweep);
//! - [`watchdog`]: kills every group if procrun itself is killed.

pub mod dispatcher;
pub mod reap;
pub mod signals;
pub mod spawn;
pub mod unit;
pub mod watchdog;
