//! `ipmpd --syslog`: log to syslog, facility daemon, with in.mpathd's
//! severities as priorities (its LOG_ERR for failures, LOG_NOTICE for
//! repairs), for hosts without the journal.
use std::{ffi::CString, fmt::Write};

use tracing::{field::Field, Event, Level, Subscriber};
use tracing_subscriber::{layer::Context, Layer};

/// A tracing layer writing each event to syslog(3).
pub struct Syslog;

impl Syslog {
    /// Opens the connection to syslog as `ipmpd`, facility daemon.
    pub fn open() -> Syslog {
        // SAFETY: the identifier is a static NUL-terminated string.
        unsafe { libc::openlog(c"ipmpd".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
        Syslog
    }
}

/// The syslog priority of a tracing level: ERROR is in.mpathd's LOG_ERR,
/// INFO its LOG_NOTICE.
pub fn priority(level: Level) -> libc::c_int {
    match level {
        Level::ERROR => libc::LOG_ERR,
        Level::WARN => libc::LOG_WARNING,
        Level::INFO => libc::LOG_NOTICE,
        Level::DEBUG => libc::LOG_INFO,
        Level::TRACE => libc::LOG_DEBUG,
    }
}

/// The event's message, then its other fields as `name=value`.
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for Syslog {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let Ok(text) = CString::new(message.0.replace('\0', " ")) else {
            return;
        };
        let priority = libc::LOG_DAEMON | priority(*event.metadata().level());
        // SAFETY: a "%s" format with one NUL-terminated string.
        unsafe { libc::syslog(priority, c"%s".as_ptr(), text.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_errors_and_repairs_notices_as_in_mpathd() {
        assert_eq!(priority(Level::ERROR), libc::LOG_ERR);
        assert_eq!(priority(Level::INFO), libc::LOG_NOTICE);
    }
}
