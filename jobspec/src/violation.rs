//! What is wrong with a spec or a manifest: every broken rule with the path of its field.

use std::fmt;

/// One broken rule: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Field path, e.g. `transforms[2].window.tumble` in a job spec or
    /// `spec.autoscaler.minParallelism` in a FlinkJob.
    pub path: String,
    /// What is wrong and what is expected.
    pub reason: String,
}

impl Violation {
    /// A violation at `path`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Violation {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// Every rule broken. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Violations(pub Vec<Violation>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

impl Violations {
    /// One violation.
    pub fn one(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Violations(vec![Violation::new(path, reason)])
    }

    /// `Ok(())` when `list` is empty, else the list.
    pub fn check(list: Vec<Violation>) -> Result<(), Violations> {
        if list.is_empty() {
            Ok(())
        } else {
            Err(Violations(list))
        }
    }
}
