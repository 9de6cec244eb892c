//! The service run as a child (`srvd announce … -- COMMAND ARGS…`).
//!
//! The child gets its own process group, so a terminal's Ctrl-C reaches only srvd, which
//! withdraws the record first and then forwards the signal. On Linux the child is also sent
//! SIGTERM if srvd itself dies (parent-death signal), so it never runs on unannounced and
//! unsupervised.

use std::process::{ExitStatus, Stdio};

use tokio::process::{Child, Command};

/// Send `signal` to one process. Errors (the process is already gone) are ignored.
pub fn signal_pid(pid: i32, signal: i32) {
    if pid > 0 {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Send `signal` to the process group `pgid`.
pub fn signal_group(pgid: i32, signal: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// Start `command[0]` with `command[1..]`: stdin from /dev/null, stdout and stderr inherited.
pub fn spawn(command: &[String]) -> std::io::Result<Child> {
    let Some((program, args)) = command.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty command",
        ));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(false);
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id();
        // SAFETY: only async-signal-safe calls (prctl, getppid, raise) run between fork and
        // exec.
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong);
                // The parent may have died before prctl took effect.
                if u32::try_from(libc::getppid()).ok() != Some(parent) {
                    libc::raise(libc::SIGTERM);
                }
                Ok(())
            });
        }
    }
    cmd.spawn()
}

/// The exit code srvd should exit with for the child's status: its code, or 128 + the signal
/// that killed it (as shells report it).
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + (signal & 0x7f)).unwrap_or(1),
        (None, None) => 1,
    }
}

/// The exit code when the command could not be started (as shells do: 127 not found, 126
/// not executable).
pub fn spawn_failure_code(error: &std::io::Error) -> u8 {
    match error.kind() {
        std::io::ErrorKind::NotFound => 127,
        _ => 126,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exit_codes() {
        let mut c = spawn(&["sh".into(), "-c".into(), "exit 7".into()]).unwrap();
        assert_eq!(exit_code(c.wait().await.unwrap()), 7);
        let mut c = spawn(&["sleep".into(), "5".into()]).unwrap();
        signal_pid(c.id().unwrap() as i32, libc::SIGTERM);
        assert_eq!(exit_code(c.wait().await.unwrap()), 128 + 15);
        let e = spawn(&["/nonexistent/cmd".into()]).unwrap_err();
        assert_eq!(spawn_failure_code(&e), 127);
    }
}
