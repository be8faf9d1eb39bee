//! Other load on the machine (`--busy-cores N`): N child processes that each keep one
//! CPU busy, started after the floor and before the rounds. Invariant: while a
//! [`BusyProcesses`] lives, its children run; when it is dropped (the rounds ended, or
//! the bench failed and unwound) every one of them is killed and reaped, so none
//! outlives the bench. A spinner also exits by itself when its parent goes away (a
//! bench killed with SIGKILL cannot drop anything).

use std::process::{Child, Command, Stdio};

/// The hidden `reswhis spin`: busy-loops on one CPU until killed, or until the process
/// that started it is gone (it has then been handed to another parent).
pub fn spin() -> ! {
    #[cfg(unix)]
    let parent = std::os::unix::process::parent_id();
    let mut state = 1u64;
    loop {
        // About 10 ms of arithmetic between two looks at the parent.
        for _ in 0..5_000_000 {
            state = std::hint::black_box(
                state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1),
            );
        }
        #[cfg(unix)]
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(0);
        }
    }
}

/// Running child processes, killed and reaped when this is dropped.
#[derive(Debug, Default)]
pub(super) struct BusyProcesses {
    children: Vec<Child>,
}

impl BusyProcesses {
    /// Starts `count` processes, each from a fresh `command()`, with no stdin, stdout or
    /// stderr. If one cannot start, those already started are stopped again.
    pub(super) fn start(
        count: u32,
        mut command: impl FnMut() -> std::io::Result<Command>,
    ) -> std::io::Result<BusyProcesses> {
        let mut busy = BusyProcesses::default();
        for _ in 0..count {
            let child = command()?
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            busy.children.push(child);
        }
        Ok(busy)
    }

    /// `count` spinners: this executable's hidden `spin` subcommand.
    pub(super) fn spinners(count: u32) -> std::io::Result<BusyProcesses> {
        BusyProcesses::start(count, || {
            let mut command = Command::new(super::server::server_executable()?);
            command.arg("spin");
            Ok(command)
        })
    }

    /// How many were started.
    pub(super) fn count(&self) -> usize {
        self.children.len()
    }

    /// How many have exited on their own (a spinner should not: the load then changed
    /// during the rounds). One whose state cannot be read counts as running.
    pub(super) fn exited(&mut self) -> usize {
        self.children
            .iter_mut()
            .filter_map(|c| c.try_wait().ok())
            .filter(Option::is_some)
            .count()
    }

    /// Their process ids.
    #[cfg(test)]
    fn ids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }
}

impl Drop for BusyProcesses {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::path::Path;

    fn sleeper() -> std::io::Result<Command> {
        let mut command = Command::new("sleep");
        command.arg("60");
        Ok(command)
    }

    #[test]
    fn busy_processes_run_until_dropped_and_are_reaped() {
        let mut busy = BusyProcesses::start(2, sleeper).unwrap();
        assert_eq!(busy.count(), 2);
        let ids = busy.ids();
        assert_eq!(busy.exited(), 0);
        for id in &ids {
            assert!(
                Path::new(&format!("/proc/{id}")).exists(),
                "{id} not running"
            );
        }
        drop(busy);
        // Killed and waited for: not even a zombie is left.
        for id in &ids {
            assert!(
                !Path::new(&format!("/proc/{id}")).exists(),
                "{id} left behind"
            );
        }
    }

    #[test]
    fn a_failed_start_stops_the_ones_already_started() {
        let mut started = 0;
        let result = BusyProcesses::start(3, || {
            started += 1;
            if started < 3 {
                sleeper()
            } else {
                Ok(Command::new("/nonexistent/spinner"))
            }
        });
        assert!(result.is_err());
        assert_eq!(started, 3);
        assert_eq!(BusyProcesses::start(0, sleeper).unwrap().count(), 0);
    }
}
