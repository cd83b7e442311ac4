//! The terminal's two streams, the only way the commands print: results on stdout, progress
//! and errors on stderr. A reader that went away is a normal end, never a panic: stdout closed
//! (`cargo xtask runbook show | head -1`) ends the command quietly with exit 0, as git and
//! ripgrep do; stderr closed loses the lines and nothing else.

use std::io::Write;

/// Writes `args` to stdout. When nobody reads it any more (EPIPE), the process exits 0 at once
/// (whoever closed the pipe has what they wanted); any other write error is said on stderr and
/// the process exits with `FAILURES` (stdout on a full disk is a failed command, not a panic).
pub fn out(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(args).and_then(|()| stdout.flush());
    if let Err(e) = written {
        end_on_stdout_error(&e);
    }
}

/// Writes `args` to stderr; a closed or failing stderr loses the line, nothing else.
pub fn err(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// What a failed write to stdout means for the process: see [`out`].
fn end_on_stdout_error(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(crate::exit_codes::OK);
    }
    err(format_args!(
        "error: cannot write to standard output: {}\n",
        crate::input::io_reason(e)
    ));
    std::process::exit(crate::exit_codes::FAILURES);
}

/// `println!` through [`out`]: a closed stdout ends the command quietly.
#[macro_export]
macro_rules! outln {
    () => { $crate::console::out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` through [`out`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::console::out(format_args!($($arg)*)) };
}

/// `eprintln!` through [`err`]: a closed stderr is not a panic.
#[macro_export]
macro_rules! errln {
    () => { $crate::console::err(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::err(format_args!("{}\n", format_args!($($arg)*))) };
}
