//! Reading and writing the project's files the same way everywhere: what is read must be a
//! regular file (bounded, UTF-8, errors naming the path and never the content), what is written
//! goes through a temporary file renamed over its target.

pub mod input;
pub mod output;
