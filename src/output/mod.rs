//! Output: the byte-level line splitter ([`lines`]), the single writer of
//! stdout ([`printer`]) and how lines look ([`style`]).

pub mod lines;
pub mod printer;
pub mod style;
