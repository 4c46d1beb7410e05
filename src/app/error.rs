//! What a component handler answers when it cannot do what was asked: an HTTP status and a
//! message, sent as a problem document. Record errors convert with `?`, each to the status
//! REST gives it.

use crate::runtime::records::RecordError;

/// A failed call: the status to answer and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: u16,
    pub message: String,
    /// Seconds after which a retry may succeed (503 answers).
    pub retry_after: Option<u32>,
}

impl Error {
    pub fn new(status: u16, message: impl Into<String>) -> Error {
        Error {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400: the request is wrong.
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::new(400, message)
    }

    /// 404: nothing here.
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(404, message)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for Error {}

impl From<RecordError> for Error {
    fn from(e: RecordError) -> Error {
        let status = match &e {
            RecordError::Invalid(_) => 400,
            RecordError::NotFound => 404,
            RecordError::Exists => 409,
            RecordError::PreconditionFailed => 412,
            RecordError::Rejected { status, .. } => *status,
            RecordError::Busy | RecordError::Stopping => 503,
            RecordError::Storage(_) => 500,
        };
        Error {
            status,
            message: e.to_string(),
            retry_after: matches!(e, RecordError::Busy).then_some(1),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::bad_request(format!("invalid JSON: {e}"))
    }
}
