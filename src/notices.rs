//! Warnings and notes the library has for its user (a damaged checkpoint
//! segment recomputed, a GPU failure the CPU took over, digits a double
//! cannot hold), each one line: sent to the reporter the caller installs
//! (the command line prints them on standard error), else kept until
//! [`take`] collects them. The library itself never prints.

use std::sync::{Mutex, RwLock};

type Reporter = Box<dyn Fn(&str) + Send + Sync>;

static REPORTER: RwLock<Option<Reporter>> = RwLock::new(None);
static KEPT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Send every later notice to `reporter` (for the whole process).
pub fn set_reporter(reporter: impl Fn(&str) + Send + Sync + 'static) {
    if let Ok(mut r) = REPORTER.write() {
        *r = Some(Box::new(reporter));
    }
}

/// The notices given since the last call, where no reporter is installed.
pub fn take() -> Vec<String> {
    KEPT.lock()
        .map(|mut k| std::mem::take(&mut *k))
        .unwrap_or_default()
}

/// Give the user `line` (its first word says what it is: `warning:`,
/// `note:`, `resumed:`).
pub(crate) fn notify(line: impl Into<String>) {
    let line = line.into();
    match REPORTER.read().ok().as_deref() {
        Some(Some(reporter)) => reporter(&line),
        _ => {
            if let Ok(mut k) = KEPT.lock() {
                k.push(line);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn notices_are_kept_until_taken_without_a_reporter() {
        super::notify("note: one");
        let kept = super::take();
        assert!(kept.contains(&"note: one".to_string()), "{kept:?}");
        assert!(!super::take().contains(&"note: one".to_string()));
    }
}
