//! The user's side of every command: the files it reads and writes (bounded, regular, UTF-8;
//! written atomically), what it prints (`outln!`, `out!`, `errln!`: a closed pipe is a normal
//! end), and the exit codes it ends with, documented in one table.

pub mod console;
pub mod exit_codes;
pub mod input;
pub mod output;
