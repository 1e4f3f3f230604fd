//! Output: the byte-level line splitter ([`lines`]), the single writer of
//! stdout ([`printer`]), how lines look ([`style`]), procrun's own messages
//! ([`notice`]), the JSON records of `--log-format json` ([`json`]), the
//! pacing of reads ([`pacing`]), the sizes of the pipes ([`pipe_size`]),
//! the recent output kept for `procrun logs` ([`ring`]) and the lines of an
//! instance that runs on a terminal ([`terminal`]).

pub mod json;
pub mod lines;
pub mod notice;
pub mod pacing;
pub mod pipe_size;
pub mod printer;
pub mod render;
pub mod ring;
pub mod style;
pub mod terminal;
