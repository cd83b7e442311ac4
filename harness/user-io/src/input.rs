//! Reading the files a user hands us (runbooks, target files, `.env` files): bounded in size,
//! decoded as UTF-8 with the byte offset of the first bad byte, and errors that name the file,
//! the line and what is wrong — never a byte of the content, which may be a secret.

use std::io::Read;
use std::path::Path;

/// Why a user's file could not be read as text. Its `Display` holds no content of the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("cannot read it: {0}")]
    Unreadable(String),
    #[error("it is larger than {limit} bytes, the most this command reads")]
    TooLarge { limit: u64 },
    #[error("not UTF-8 text (the first bad byte is at byte offset {offset}, line {line})")]
    NotUtf8 { line: usize, offset: usize },
    #[error("it is {found}, not {expected}")]
    NotAFile {
        found: &'static str,
        expected: &'static str,
    },
}

impl InputError {
    /// The 1-based line the error is on, 0 when it is about the whole file.
    pub fn line(&self) -> usize {
        match self {
            InputError::NotUtf8 { line, .. } => *line,
            _ => 0,
        }
    }
}

/// `path` opened for reading, when it is a regular file (symlinks followed). A FIFO, socket,
/// device or directory is refused before anything can block on it: the open itself does not
/// wait for a FIFO's writer (`O_NONBLOCK`), and what was opened is checked by `fstat`, so a
/// file swapped in between is judged as opened.
pub fn open_regular(path: &Path) -> Result<std::fs::File, InputError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| InputError::Unreadable(io_reason(&e)))?;
    let kind = file
        .metadata()
        .map_err(|e| InputError::Unreadable(io_reason(&e)))?
        .file_type();
    match kind_of(kind) {
        "a regular file" => Ok(file),
        found => Err(InputError::NotAFile {
            found,
            expected: "a regular file",
        }),
    }
}

/// `path` is a directory (symlinks followed), as a command that reads one expects.
pub fn expect_directory(path: &Path) -> Result<(), InputError> {
    let kind = std::fs::metadata(path)
        .map_err(|e| InputError::Unreadable(io_reason(&e)))?
        .file_type();
    match kind_of(kind) {
        "a directory" => Ok(()),
        found => Err(InputError::NotAFile {
            found,
            expected: "a directory",
        }),
    }
}

/// What a file is, in words.
fn kind_of(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// The text of `path`, a regular file, at most `limit` bytes of UTF-8.
pub fn read_text(path: &Path, limit: u64) -> Result<String, InputError> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| InputError::Unreadable(io_reason(&e)))?;
    if bytes.len() as u64 > limit {
        return Err(InputError::TooLarge { limit });
    }
    utf8(bytes)
}

/// `bytes` as a `String`, or where the first byte that is not UTF-8 sits.
pub fn utf8(bytes: Vec<u8>) -> Result<String, InputError> {
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        InputError::NotUtf8 { line, offset }
    })
}

/// What an I/O error says, without anything read: the OS's reason ("No such file or
/// directory"), or the error's kind for errors that wrap a decoder's message.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(_) => e.to_string(),
        None => e.kind().to_string(),
    }
}

/// A TOML or serde message with every value it quotes taken out: `invalid type: string "x",
/// expected u64` becomes `expected u64, found a string`. An input's values can be secrets.
pub fn describe_parse_message(message: &str) -> String {
    let message = message.trim().replace('\n', "; ");
    let expected = |rest: &str| {
        rest.rsplit_once(", expected ")
            .map(|(_, e)| e.to_string())
            .unwrap_or_else(|| "another value".into())
    };
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let found = match rest.split_whitespace().next().unwrap_or("value") {
            "floating" => "floating point number",
            "integer" => "integer",
            "string" => "string",
            "boolean" => "boolean",
            "sequence" => "array",
            "map" => "table",
            _ => "value of another type",
        };
        let article = if found.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        return format!("expected {}, found {article} {found}", expected(rest));
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        return format!("invalid value: expected {}", expected(rest));
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return format!("unknown variant: expected {}", expected(rest));
    }
    if message.starts_with("unknown field ") || message.starts_with("missing field ") {
        // Field names are the file's keys, not its values.
        return message;
    }
    without_quoted(&message)
}

/// `text` with every quoted run (`"…"`, `'…'`, and backticked runs longer than a token such
/// as `=` or `"`) replaced by `…`: a parser's message quotes the input it stumbled on.
fn without_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['"', '\'', '`']) {
        out.push_str(&rest[..at]);
        let quote = rest[at..].chars().next().expect("found above");
        let after = &rest[at + 1..];
        let Some(close) = after.find(quote) else {
            out.push('…');
            return out;
        };
        let inner = &after[..close];
        if quote == '`' && inner.chars().count() <= 3 {
            out.push_str(&rest[at..at + close + 2]);
        } else {
            out.push('…');
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_byte_is_reported_by_line_and_byte_offset() {
        let bytes = b"one\ntwo \xff three\n".to_vec();
        assert_eq!(
            utf8(bytes).unwrap_err().to_string(),
            "not UTF-8 text (the first bad byte is at byte offset 8, line 2)"
        );
    }

    #[test]
    fn a_file_over_the_limit_is_refused_without_reading_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'a'; 1025]).unwrap();
        assert_eq!(
            read_text(&path, 1024).unwrap_err(),
            InputError::TooLarge { limit: 1024 }
        );
        assert_eq!(read_text(&path, 1025).unwrap().len(), 1025);
    }

    #[test]
    fn a_fifo_or_a_directory_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(
            read_text(&fifo, 1024).unwrap_err().to_string(),
            "it is a FIFO, not a regular file"
        );
        assert_eq!(
            read_text(dir.path(), 1024).unwrap_err().to_string(),
            "it is a directory, not a regular file"
        );
        assert_eq!(
            expect_directory(&fifo).unwrap_err().to_string(),
            "it is a FIFO, not a directory"
        );
    }
}
