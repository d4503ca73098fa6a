//! Why a configuration file was refused: every error names the file and, where known,
//! the line and the dotted path of the field.

use std::path::PathBuf;

/// Why a configuration file was refused. Every variant names the file and, where
/// known, the line and the dotted path of the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid JSON, or a field has the wrong shape.
    #[error("{file}:{line}:{column}: {path}{message}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Dotted path of the field followed by `: `, or empty.
        path: String,
        /// What serde found wrong.
        message: String,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`]; it is not read.
    #[error("{file}: {size} bytes; a configuration file may have at most {MAX_CONFIG_BYTES} bytes")]
    TooLarge {
        /// The file.
        file: PathBuf,
        /// Its size.
        size: u64,
    },
    /// A field is well-formed but its value is not acceptable.
    #[error("{file}: {path}: {reason}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Dotted path of the field.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Largest configuration file read: 16 MiB (about 30,000 tenants with rich settings).
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// A value refused where it is: its dotted path in the file and why. What the parts of
/// the parser return; [`ConfigError::Invalid`] adds the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct FieldError {
    /// Dotted path of the field, e.g. `webhooks.push.timeout`; empty for the whole
    /// object being read.
    pub path: String,
    /// What is wrong and, where possible, how to fix it.
    pub reason: String,
}

impl FieldError {
    /// The refusal of the field at `path` for `reason`.
    pub fn new(path: String, reason: String) -> Self {
        FieldError { path, reason }
    }
}
