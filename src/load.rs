//! How many threads the next Whisper call should use, from what else the machine runs.
//!
//! whisper.cpp's CPU threads spin at every barrier of a graph (ggml 1.8.3 has no way to
//! make them wait passively), so a call with more threads than free cores does not run
//! at the speed of the free cores: a descheduled thread holds all the others at the
//! next barrier. Measured on the 2-core benchmark machine, tiny.en, with one other
//! process busy-looping: 2 threads per call gave a mean latency of 3.1–6.7 s, 1 thread
//! 1.7 s; with two busy processes single calls took 6–13 s. So each call gets the cores
//! nobody else is using, shared among the workers that may be in a call, and never fewer
//! than one thread.
//!
//! "Nobody else" is measured on Linux from `/proc/stat` (all CPU time) minus this
//! process's own CPU time, over the last second or so; elsewhere the machine counts as
//! idle. With `--threads N` the count is fixed instead. The workers a call shares the
//! free cores with are those that may be in a call beside it ([`contenders`]).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the machine's load is sampled at most.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Weight of a new sample in the smoothed load (about one second of memory).
const SMOOTHING: f64 = 0.3;

/// Chooses the threads of each call.
#[derive(Debug)]
pub struct ThreadPolicy {
    cores: u32,
    /// The most threads one call may use.
    max_threads: u32,
    /// `--threads`: always this many.
    fixed: Option<u32>,
    monitor: Mutex<Monitor>,
}

impl ThreadPolicy {
    /// `fixed`: the `--threads` setting, if given; `max_threads`: the most a call may
    /// use otherwise.
    pub fn new(cores: u32, max_threads: u32, fixed: Option<u32>) -> ThreadPolicy {
        ThreadPolicy {
            cores: cores.max(1),
            max_threads: max_threads.max(1),
            fixed,
            monitor: Mutex::new(Monitor::default()),
        }
    }

    /// Threads for a call that starts now, with `busy_workers` workers (this one
    /// included) that may be in a call beside it (see [`contenders`]).
    pub fn threads(&self, busy_workers: usize) -> u32 {
        if let Some(fixed) = self.fixed {
            return fixed.max(1);
        }
        let foreign = self
            .monitor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .foreign_cores();
        threads_for(self.cores, self.max_threads, foreign, busy_workers)
    }

    /// The cores other processes kept busy lately (for `/info`).
    pub fn foreign_cores(&self) -> f64 {
        self.monitor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .foreign_cores()
    }

    /// The most threads a call may use.
    pub fn max_threads(&self) -> u32 {
        self.fixed.unwrap_or(self.max_threads)
    }

    /// Whether the count follows the load (no `--threads`).
    pub fn adaptive(&self) -> bool {
        self.fixed.is_none()
    }
}

/// Workers that may be in a call while this one runs, this one included: those busy
/// now, or, with more sessions open, as many as could start a call meanwhile. A call's
/// threads are fixed when it starts; sized for the workers busy at that moment only, a
/// call with two threads was joined by a second worker's call, and with one core busy
/// elsewhere their threads outnumbered the cores and spun at whisper.cpp's barriers
/// (1 busy core, 2 clients: 7 calls cut, one stream 15.8 s behind).
pub fn contenders(busy_workers: usize, sessions: usize, workers: usize) -> usize {
    busy_workers.max(sessions.min(workers)).max(1)
}

/// The free cores shared among the busy workers, rounded down, within 1..=max.
/// A core counts as free unless others kept it more than 25 % busy on average.
pub fn threads_for(cores: u32, max_threads: u32, foreign: f64, busy_workers: usize) -> u32 {
    let free = (cores as f64 - foreign + 0.75).floor().max(1.0);
    let share = (free / busy_workers.max(1) as f64).floor() as u32;
    share.clamp(1, max_threads.max(1))
}

/// Smoothed CPU use of other processes.
#[derive(Debug, Default)]
struct Monitor {
    last: Option<(Instant, CpuTimes)>,
    foreign: f64,
}

impl Monitor {
    fn foreign_cores(&mut self) -> f64 {
        let now = Instant::now();
        if self
            .last
            .as_ref()
            .is_some_and(|(at, _)| now.duration_since(*at) < SAMPLE_EVERY)
        {
            return self.foreign;
        }
        let Some(times) = CpuTimes::read() else {
            return 0.0;
        };
        if let Some((at, before)) = &self.last {
            let elapsed = now.duration_since(*at).as_secs_f64();
            let all = (times.machine_busy - before.machine_busy) / elapsed;
            let ours = (times.process - before.process) / elapsed;
            let sample = (all - ours).max(0.0);
            self.foreign += SMOOTHING * (sample - self.foreign);
        }
        self.last = Some((now, times));
        self.foreign
    }
}

/// Busy CPU seconds of the whole machine and of this process.
#[derive(Debug, Clone, Copy)]
struct CpuTimes {
    machine_busy: f64,
    process: f64,
}

impl CpuTimes {
    #[cfg(target_os = "linux")]
    fn read() -> Option<CpuTimes> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let machine_busy = machine_busy_ticks(stat.lines().next()?)?;
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
        Some(CpuTimes {
            machine_busy: machine_busy / ticks,
            process: crate::cpu::process_cpu_seconds()?,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn read() -> Option<CpuTimes> {
        None
    }
}

/// Busy ticks from the `cpu` line of `/proc/stat`: everything but idle and iowait.
fn machine_busy_ticks(line: &str) -> Option<f64> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<f64> = fields.map(|f| f.parse().ok()).collect::<Option<_>>()?;
    if values.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal [guest guest_nice: inside user]
    let total: f64 = values.iter().take(8).sum();
    let idle = values[3] + values.get(4).copied().unwrap_or(0.0);
    Some(total - idle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_sized_for_the_workers_that_may_run_beside_them() {
        // One session: the call may use the whole machine.
        assert_eq!(contenders(1, 1, 2), 1);
        // Two sessions, one worker busy so far: the other may start a call any moment.
        assert_eq!(contenders(1, 2, 2), 2);
        // More sessions than workers: no more calls than workers at once.
        assert_eq!(contenders(1, 8, 2), 2);
        // No session (simulate, the warm-up): this call alone.
        assert_eq!(contenders(0, 0, 4), 1);
    }

    #[test]
    fn calls_get_the_free_cores_shared_among_busy_workers() {
        // 2 cores, nobody else: one call gets both, two calls one each.
        assert_eq!(threads_for(2, 2, 0.0, 1), 2);
        assert_eq!(threads_for(2, 2, 0.0, 2), 1);
        // One core kept busy by another process: one thread.
        assert_eq!(threads_for(2, 2, 1.0, 1), 1);
        assert_eq!(threads_for(2, 2, 0.9, 1), 1);
        // A little background activity does not take a core away.
        assert_eq!(threads_for(2, 2, 0.2, 1), 2);
        // Never fewer than one, never more than the maximum.
        assert_eq!(threads_for(2, 2, 3.0, 1), 1);
        assert_eq!(threads_for(16, 8, 0.0, 1), 8);
        assert_eq!(threads_for(16, 8, 4.0, 3), 4);
    }

    #[test]
    fn busy_ticks_leave_out_idle_and_iowait() {
        let line = "cpu  100 5 20 1000 50 1 2 3 0 0";
        assert_eq!(machine_busy_ticks(line), Some(131.0));
        assert_eq!(machine_busy_ticks("cpu0 1 2 3 4"), None);
        assert_eq!(machine_busy_ticks("cpu x"), None);
    }

    #[test]
    fn fixed_threads_ignore_the_load() {
        let policy = ThreadPolicy::new(2, 2, Some(3));
        assert_eq!(policy.threads(1), 3);
        assert!(!policy.adaptive());
    }
}
