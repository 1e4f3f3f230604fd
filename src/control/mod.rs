//! Control of a running `procrun start` from other terminals (`procrun ps`,
//! `restart`, `stop`, `scale`, `logs`, `signal`, `quit`, `connect`, `send`), over a unix
//! socket only its user can reach. The protocol is documented in
//! `docs/control.md`.
//!
//! - [`endpoint`]: where the socket is, and the lock that makes one
//!   `start` per app;
//! - [`wire`]: frames and messages;
//! - [`request`]: the typed requests the server hands the dispatcher (the
//!   only way into the supervisor);
//! - [`server`]: the socket's thread in `start`;
//! - [`usage`]: the CPU% and memory `ps` shows, from `/proc`;
//! - [`attach`]: its `attach` and `send` methods, which reach the terminal
//!   of an instance started with `--tty`;
//! - [`client`]: the client commands;
//! - [`connect`](mod@connect): `connect` and `send`.

pub mod attach;
pub mod client;
pub mod connect;
pub mod endpoint;
pub mod request;
pub mod server;
pub mod usage;
pub mod wire;
