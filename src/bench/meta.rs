//! The conditions of a run that come from outside the bench's flags: the command line,
//! the git commit, the CPU, the date. Read once, when the report is assembled; a missing
//! one (no git, no /proc/cpuinfo) is `None`, never an error.

use std::process::Command;
use std::sync::Arc;
use std::time::SystemTime;

use super::report::{Meta, ServerUnderTest};
use super::testset::TestFile;
use crate::config::{BenchArgs, ServeArgs};
use crate::info::Info;
use crate::protocol::SessionOptions;

impl Meta {
    /// The conditions of this run, from `args`, the environment and the test files (the
    /// workload's recordings).
    pub(super) fn collect(
        args: &BenchArgs,
        files: &[Arc<TestFile>],
        server_info: Option<Info>,
        floor_threads: u32,
    ) -> Meta {
        let command: Vec<String> = std::env::args().map(|a| shell_quote(&a)).collect();
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let git_commit = git(&["rev-parse", "--short", "HEAD"]).map(|commit| {
            match git(&["status", "--porcelain", "--untracked-files=no"]) {
                Some(changes) if !changes.is_empty() => format!("{commit} (uncommitted changes)"),
                _ => commit,
            }
        });
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            });
        let vac = server_vac(args, server_info.as_ref());
        // The server's own figure (its default depends on the model), else the flag's.
        let min_chunk_size = server_info.as_ref().map_or_else(
            || {
                let tiny = args.model.model_name().starts_with("tiny");
                args.policy.min_chunk_sec(tiny)
            },
            |info| info.minimum_chunk_size,
        );
        Meta {
            date: utc_now(),
            command: command.join(" "),
            git_commit,
            nproc: ServeArgs::cores(),
            cpu_model,
            server: args
                .url
                .clone()
                .map_or(ServerUnderTest::Child, ServerUnderTest::Remote),
            server_info,
            model: args.model.model_name(),
            min_chunk_size,
            beam_size: args.model.beam_size,
            full_audio_ctx: args.model.full_audio_ctx,
            floor_threads,
            files: files.iter().map(|f| f.name.clone()).collect(),
            audio_seconds: files.iter().map(|f| f.seconds).sum(),
            scenario: args.scenario,
            vac,
            busy_cores: args.busy_cores,
            frame_ms: args.frame_ms.clone(),
            latency_limit: args.latency_limit,
            growth_limit: args.growth_limit,
            query: args.query.clone(),
            expect_language: args.expect_language.clone(),
        }
    }
}

/// Whether the server under test ran its voice activity controller for the bench's
/// connections: `?vac=` in `--url` decides per connection; else the server's /info
/// says; else a child server has the `--vac` given to it.
fn server_vac(args: &BenchArgs, server_info: Option<&Info>) -> Option<bool> {
    let url_vac = args
        .url
        .as_deref()
        .and_then(|url| url.split_once('?'))
        .and_then(|(_, query)| SessionOptions::from_query(query).ok()?.vac);
    url_vac
        .or_else(|| Some(server_info?.voice_activity_controller))
        .or_else(|| args.url.is_none().then_some(args.voice.vac))
}

/// `arg` as a POSIX shell reads it back: as is when it is plain, else single-quoted.
fn shell_quote(arg: &str) -> String {
    let plain = arg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain && !arg.is_empty() {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// "YYYY-MM-DD HH:MM UTC" without a date library.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// Days since 1970-01-01 to (year, month, day); H. Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_quoting() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
        assert_eq!(shell_quote("--files"), "--files");
        assert_eq!(shell_quote("a b"), "'a b'");
    }

    #[test]
    fn vac_comes_from_the_url_then_info_then_the_flag() {
        let args = |extra: &[&str]| {
            let argv = ["reswhis", "bench"].iter().chain(extra);
            match <crate::config::Cli as clap::Parser>::try_parse_from(argv)
                .unwrap()
                .command
            {
                Some(crate::config::Command::Bench(args)) => args,
                _ => unreachable!("bench args"),
            }
        };
        let mut info = crate::info::Info::example(false);
        info.voice_activity_controller = false;
        assert_eq!(server_vac(&args(&["--vac", "true"]), None), Some(true));
        assert_eq!(server_vac(&args(&[]), Some(&info)), Some(false));
        let remote = args(&["--url", "ws://h:1/transcribe?token=k&vac=1"]);
        assert_eq!(server_vac(&remote, Some(&info)), Some(true));
        let remote = args(&["--url", "ws://h:1/transcribe", "--vac", "true"]);
        assert_eq!(server_vac(&remote, Some(&info)), Some(false));
        assert_eq!(server_vac(&remote, None), None);
    }
}
