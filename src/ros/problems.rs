//! The node's current problems (bad input, failed planning), each under a key, so that a problem
//! is logged once when it appears or changes, not at every message or tick, and reported in
//! `/diagnostics` while it lasts.
//!
//! Two kinds: a *condition* (e.g. stale joint states, a rejected goal) lasts until it is
//! cleared; an *event* (e.g. one malformed message) expires a while after it was last seen.

use std::collections::BTreeMap;

/// Severity, as `diagnostic_msgs/DiagnosticStatus` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Ok,
    Warn,
    Error,
}

impl Level {
    /// The `DiagnosticStatus.level` byte.
    pub fn as_byte(self) -> u8 {
        match self {
            Level::Ok => 0,
            Level::Warn => 1,
            Level::Error => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// Which input or stage a problem belongs to (a diagnostics status each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    Inputs,
    Planning,
    Executor,
}

/// One active problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub area: Area,
    pub level: Level,
    /// What is logged and compared: a new headline (or level) is logged, a new detail is not.
    pub headline: String,
    /// The headline with the latest detail, as reported in the diagnostics.
    pub text: String,
    /// When it appeared (seconds, node clock).
    pub since_secs: f64,
    /// When it was last raised.
    pub last_secs: f64,
    /// How often it was raised since it appeared.
    pub count: u64,
    /// Event problems expire this long after `last_secs`; conditions never do.
    pub expires_after_secs: Option<f64>,
}

/// A line to log: a problem appeared or changed, or one was resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub level: Level,
    pub text: String,
}

/// The active problems by key.
#[derive(Debug, Clone, Default)]
pub struct Problems {
    active: BTreeMap<String, Problem>,
    pending_logs: Vec<LogLine>,
}

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises a condition under `key` (lasts until [`Self::clear`]).
    pub fn condition(&mut self, key: &str, area: Area, level: Level, text: String, now: f64) {
        self.raise(key, area, level, (text, None), now, None);
    }

    /// Raises a condition whose `detail` changes from one raise to the next (e.g. counts): it is
    /// logged when the `headline` or the level changes, and reported as `headline (detail)`.
    pub fn condition_detailed(
        &mut self,
        key: &str,
        area: Area,
        level: Level,
        headline: String,
        detail: String,
        now: f64,
    ) {
        self.raise(key, area, level, (headline, Some(detail)), now, None);
    }

    /// Raises an event under `key`, reported until `expires_after_secs` after its last raise.
    pub fn event(
        &mut self,
        key: &str,
        area: Area,
        level: Level,
        text: String,
        now: f64,
        expires_after_secs: f64,
    ) {
        self.raise(
            key,
            area,
            level,
            (text, None),
            now,
            Some(expires_after_secs),
        );
    }

    fn raise(
        &mut self,
        key: &str,
        area: Area,
        level: Level,
        (headline, detail): (String, Option<String>),
        now: f64,
        expires_after_secs: Option<f64>,
    ) {
        let text = match detail {
            Some(detail) if !detail.is_empty() => format!("{headline} ({detail})"),
            _ => headline.clone(),
        };
        match self.active.get_mut(key) {
            Some(problem) if problem.headline == headline && problem.level == level => {
                problem.text = text;
                problem.last_secs = now;
                problem.count += 1;
                problem.expires_after_secs = expires_after_secs;
            }
            _ => {
                self.pending_logs.push(LogLine {
                    level,
                    text: format!("{key}: {text}"),
                });
                self.active.insert(
                    key.to_string(),
                    Problem {
                        area,
                        level,
                        headline,
                        text,
                        since_secs: now,
                        last_secs: now,
                        count: 1,
                        expires_after_secs,
                    },
                );
            }
        }
    }

    /// Clears the problem under `key`, logging that it was resolved.
    pub fn clear(&mut self, key: &str) {
        if let Some(problem) = self.active.remove(key) {
            self.pending_logs.push(LogLine {
                level: Level::Ok,
                text: format!("{key}: resolved ({})", problem.text),
            });
        }
    }

    /// Clears every key starting with `prefix`.
    pub fn clear_prefix(&mut self, prefix: &str) {
        let keys: Vec<String> = self
            .active
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        for key in keys {
            self.clear(&key);
        }
    }

    /// Drops expired events.
    pub fn expire(&mut self, now: f64) {
        let expired: Vec<String> = self
            .active
            .iter()
            .filter(|(_, p)| p.expires_after_secs.is_some_and(|e| now > p.last_secs + e))
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.clear(&key);
        }
    }

    pub fn get(&self, key: &str) -> Option<&Problem> {
        self.active.get(key)
    }

    pub fn is_active(&self, key: &str) -> bool {
        self.active.contains_key(key)
    }

    /// Active problems of `area`, by key.
    pub fn in_area(&self, area: Area) -> impl Iterator<Item = (&String, &Problem)> {
        self.active.iter().filter(move |(_, p)| p.area == area)
    }

    /// The highest level in `area` (`Ok` when none).
    pub fn level(&self, area: Area) -> Level {
        self.in_area(area)
            .map(|(_, p)| p.level)
            .max()
            .unwrap_or(Level::Ok)
    }

    /// The lines to log since the last call.
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.pending_logs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_once_per_distinct_problem_and_once_when_resolved() {
        let mut p = Problems::new();
        for i in 0..50 {
            p.condition(
                "joint_states.stale",
                Area::Inputs,
                Level::Error,
                "stale".into(),
                i as f64 * 0.02,
            );
        }
        let logs = p.take_logs();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].level, Level::Error);
        assert_eq!(p.get("joint_states.stale").unwrap().count, 50);
        assert_eq!(p.level(Area::Inputs), Level::Error);
        assert_eq!(p.level(Area::Planning), Level::Ok);
        p.condition(
            "joint_states.stale",
            Area::Inputs,
            Level::Error,
            "stale for longer".into(),
            2.0,
        );
        assert_eq!(p.take_logs().len(), 1, "a changed text is logged");
        p.clear("joint_states.stale");
        p.clear("joint_states.stale");
        let logs = p.take_logs();
        assert_eq!(logs.len(), 1);
        assert!(logs[0].text.contains("resolved"), "{logs:?}");
        assert_eq!(p.level(Area::Inputs), Level::Ok);
    }

    #[test]
    fn a_changing_detail_is_reported_but_not_logged_again() {
        let mut p = Problems::new();
        for (i, detail) in ["25 collision", "27 collision, 1 joint_limit"]
            .iter()
            .enumerate()
        {
            p.condition_detailed(
                "planning",
                Area::Planning,
                Level::Error,
                "no valid candidate; holding".into(),
                detail.to_string(),
                i as f64,
            );
        }
        let logs = p.take_logs();
        assert_eq!(logs.len(), 1);
        assert!(logs[0].text.contains("25 collision"), "{logs:?}");
        assert_eq!(
            p.get("planning").unwrap().text,
            "no valid candidate; holding (27 collision, 1 joint_limit)"
        );
        p.condition_detailed(
            "planning",
            Area::Planning,
            Level::Warn,
            "no valid candidate; holding".into(),
            "x".into(),
            3.0,
        );
        assert_eq!(p.take_logs().len(), 1, "a new level is logged");
    }

    #[test]
    fn events_expire_conditions_do_not() {
        let mut p = Problems::new();
        p.event("a", Area::Inputs, Level::Error, "bad".into(), 0.0, 1.0);
        p.condition("b", Area::Planning, Level::Warn, "meh".into(), 0.0);
        p.event("a", Area::Inputs, Level::Error, "bad".into(), 0.5, 1.0);
        p.expire(1.4);
        assert!(p.is_active("a"), "expiry counts from the last raise");
        p.expire(1.6);
        assert!(!p.is_active("a"));
        p.expire(100.0);
        assert!(p.is_active("b"));
        p.clear_prefix("b");
        assert!(!p.is_active("b"));
    }
}
