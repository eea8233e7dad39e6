//! `lqx-server status`: what a running control plane's background loops are doing
//! (AlertService.ListBackgroundTasks), one line per task.

use anyhow::Context;
use chrono::{DateTime, Utc};
use lqx_core::api::alert::v1 as pb;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The control plane to ask.
    #[arg(
        long,
        env = "LQX_SERVER",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// An access token or API key allowed alert:read.
    #[arg(long, env = "LQX_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate of an https:// control plane.
    #[arg(long, env = "LQX_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

pub fn main(args: StatusArgs) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(tasks) => {
            print!("{}", table(&tasks, Utc::now()));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: &StatusArgs) -> anyhow::Result<Vec<pb::BackgroundTask>> {
    let channel = crate::agent::channel(&args.server, None, args.ca_cert.as_deref())?;
    let mut client = pb::alert_service_client::AlertServiceClient::new(channel);
    let mut req = tonic::Request::new(pb::ListBackgroundTasksRequest {});
    if let Some(t) = &args.token {
        let v = format!("Bearer {t}")
            .parse()
            .context("the token is not a header value")?;
        req.metadata_mut().insert("authorization", v);
    }
    let resp = client
        .list_background_tasks(req)
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", crate::status::connect_code(s.code()), s.message()))
        .with_context(|| format!("asking {} for its background tasks", args.server))?;
    Ok(resp.into_inner().tasks)
}

/// `TASK PERIOD LAST-RUN TOOK RESULT RUNS ERRORS LAST-ERROR`, ages relative to `now`.
pub fn table(tasks: &[pb::BackgroundTask], now: DateTime<Utc>) -> String {
    let dur = |d: &Option<pbjson_types::Duration>| match d {
        Some(d) => {
            let d = Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32);
            // Whole milliseconds: enough to read, short enough for a column.
            humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
        }
        None => "-".to_string(),
    };
    let ago = |t: &Option<pbjson_types::Timestamp>| match (*t).and_then(|t| DateTime::<Utc>::try_from(t).ok()) {
        Some(t) => {
            let secs = (now - t).num_seconds().max(0) as u64;
            format!("{} ago", humantime::format_duration(Duration::from_secs(secs)))
        }
        None => "never".to_string(),
    };
    let mut rows = vec![[
        "TASK".to_string(),
        "PERIOD".into(),
        "LAST RUN".into(),
        "TOOK".into(),
        "RESULT".into(),
        "RUNS".into(),
        "ERRORS".into(),
        "LAST ERROR".into(),
    ]];
    for t in tasks {
        let result = if t.running {
            "running".to_string()
        } else if t.last_end.is_none() {
            "-".to_string()
        } else if t.last_ok {
            if t.last_summary.is_empty() {
                "ok".to_string()
            } else {
                format!("ok: {}", t.last_summary)
            }
        } else {
            "error".to_string()
        };
        let last_error = if t.last_error.is_empty() {
            "-".to_string()
        } else {
            format!("{} ({})", t.last_error, ago(&t.last_error_time))
        };
        let period = if t.period.is_some() {
            dur(&t.period)
        } else {
            "on demand".into()
        };
        rows.push([
            t.name.clone(),
            period,
            ago(&t.last_end),
            dur(&t.last_duration),
            result,
            t.runs.to_string(),
            t.errors.to_string(),
            last_error,
        ]);
    }
    let mut widths = [0usize; 8];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_period_last_run_result_and_error() {
        let now = Utc::now();
        let ts = |secs_ago: i64| Some(pbjson_types::Timestamp::from(now - chrono::Duration::seconds(secs_ago)));
        let tasks = [
            pb::BackgroundTask {
                name: "drs".into(),
                period: Some(pbjson_types::Duration { seconds: 300, nanos: 0 }),
                last_end: ts(12),
                last_duration: Some(pbjson_types::Duration {
                    seconds: 0,
                    nanos: 25_000_000,
                }),
                last_ok: false,
                last_summary: "store down".into(),
                last_error: "store down".into(),
                last_error_time: ts(12),
                runs: 4,
                errors: 1,
                ..Default::default()
            },
            pb::BackgroundTask {
                name: "saga-recovery".into(),
                period: Some(pbjson_types::Duration { seconds: 30, nanos: 0 }),
                ..Default::default()
            },
        ];
        let t = table(&tasks, now);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("TASK"), "{t}");
        assert!(lines[1].starts_with("drs "), "{t}");
        for want in ["5m", "12s ago", "25ms", "error", "store down (12s ago)"] {
            assert!(lines[1].contains(want), "{want}: {t}");
        }
        assert!(lines[2].contains("never") && lines[2].contains("30s"), "{t}");
    }
}
