//! One line per event on stderr, as text for people or JSON for log collectors.

use std::io::Write;
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy)]
pub struct Logger {
    format: LogFormat,
}

impl Logger {
    pub fn new(format: LogFormat) -> Self {
        Logger { format }
    }

    pub fn info(&self, message: &str, fields: &[(&str, &dyn ToString)]) {
        self.emit("info", message, fields)
    }

    pub fn error(&self, message: &str, fields: &[(&str, &dyn ToString)]) {
        self.emit("error", message, fields)
    }

    fn emit(&self, level: &str, message: &str, fields: &[(&str, &dyn ToString)]) {
        let line = self.render(SystemTime::now(), level, message, fields);
        // A closed stderr must not take the daemon down.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    fn render(
        &self,
        now: SystemTime,
        level: &str,
        message: &str,
        fields: &[(&str, &dyn ToString)],
    ) -> String {
        let ts = humantime::format_rfc3339_seconds(now).to_string();
        match self.format {
            LogFormat::Text => {
                let mut line = format!("{ts} {level:<5} {message}");
                for (key, value) in fields {
                    let value = value.to_string();
                    if value.is_empty() || value.contains([' ', '"', '=']) {
                        line.push_str(&format!(" {key}={value:?}"));
                    } else {
                        line.push_str(&format!(" {key}={value}"));
                    }
                }
                line
            }
            LogFormat::Json => {
                let mut object = serde_json::Map::new();
                object.insert("ts".into(), ts.into());
                object.insert("level".into(), level.into());
                object.insert("msg".into(), message.into());
                for (key, value) in fields {
                    object.insert((*key).into(), value.to_string().into());
                }
                serde_json::Value::Object(object).to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn text_quotes_values_with_spaces() {
        let line = Logger::new(LogFormat::Text).render(
            UNIX_EPOCH + Duration::from_secs(0),
            "info",
            "started",
            &[("addr", &"0.0.0.0:7070"), ("dir", &"/my data")],
        );
        assert_eq!(line, "1970-01-01T00:00:00Z info  started addr=0.0.0.0:7070 dir=\"/my data\"");
    }

    #[test]
    fn json_is_one_object_per_line() {
        let line = Logger::new(LogFormat::Json).render(UNIX_EPOCH, "error", "bad \"x\"", &[("n", &3)]);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["msg"], "bad \"x\"");
        assert_eq!(value["n"], "3");
        assert!(!line.contains('\n'));
    }
}
