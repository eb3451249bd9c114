//! One module per subcommand; each owns its `Args` and `run`.

pub mod demo;
pub mod emulate;
pub mod list;
pub mod serve;
pub mod session;
pub mod show;
pub mod stmap;
pub mod tagmap;
pub mod vm;

/// Outcome of a subcommand that did not fail: whether the asked-for thing was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Exit 0.
    Yes,
    /// Exit 1: the asked-for thing is absent (no TPH device, BDF not present, ...).
    No,
    /// Exit 2: something failed (a session command, a firmware lookup, an unknown verdict)
    /// and was already reported; the output holds what did work.
    Failed,
}

/// The exit status scheme, the same for every subcommand (appended to each `--help`).
pub const EXIT_STATUS: &str = "Exit status: 0 everything asked for was done or found; 1 the \
    asked-for thing is absent (no such function, no TPH capability, no firmware _DSM); 2 an \
    error, including a partial answer (configuration space not read, a session command or a \
    firmware lookup that failed, a write error on standard output). A closed pipe on standard \
    output ends the output quietly with status 0.";

/// An error a subcommand reports once, as `tphctl: context: cause`.
#[derive(Debug)]
pub struct CliError {
    /// What was being done.
    pub context: String,
    /// Why it failed.
    pub cause: Box<dyn std::error::Error + Send + Sync>,
}

impl CliError {
    /// Wraps `cause` with `context`.
    pub fn new(
        context: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            context: context.into(),
            cause: cause.into(),
        }
    }
}

/// Result type of every subcommand.
pub type CmdResult = Result<Found, CliError>;

/// Runs a stdin-driven subcommand (`session`, `vm`) on locked stdin and a buffered stdout,
/// flushing what it wrote before the outcome is returned.
pub fn on_stdio(
    start: impl FnOnce(
        &mut std::io::StdinLock<'static>,
        &mut std::io::BufWriter<std::io::StdoutLock<'static>>,
    ) -> CmdResult,
) -> CmdResult {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let found = start(&mut std::io::stdin().lock(), &mut out)?;
    out.flush()
        .map_err(|e| CliError::new("writing output", e))?;
    Ok(found)
}

/// Most CPUs of an emulated host.
pub const MAX_CPUS: u32 = 65_536;

/// CPUs the built-in firmware tells apart: its 8-bit tags are `u` (VM) and `0x80 | u` (PM).
pub const DEFAULT_FIRMWARE_CPUS: u32 = 128;

/// The one `--cpus N` rule of every subcommand that emulates a host (`session`, `emulate`,
/// `vm`): 1 to [`MAX_CPUS`]; with the built-in firmware (`own_firmware` false) at most
/// [`DEFAULT_FIRMWARE_CPUS`], so no two CPUs share a tag.
pub fn emulated_cpus(n: Option<u32>, own_firmware: bool) -> Result<Option<u32>, CliError> {
    let Some(n) = n else {
        return Ok(None);
    };
    let refuse = |why: String| Err(CliError::new(format!("--cpus {n}"), why));
    if n == 0 {
        return refuse("an emulated host needs at least 1 CPU".into());
    }
    if n > MAX_CPUS {
        return refuse(format!(
            "more than {MAX_CPUS} CPUs (the emulated host's limit)"
        ));
    }
    if !own_firmware && n > DEFAULT_FIRMWARE_CPUS {
        return refuse(format!(
            "the built-in firmware's 8-bit tags (VM u, PM 0x80|u) tell apart at most \
             {DEFAULT_FIRMWARE_CPUS} CPUs; give --firmware for more"
        ));
    }
    Ok(Some(n))
}

/// The client revision that speaks the emulated host's kernel interface `abi`; a kernel ABI the
/// client has no revision for is an error naming it, never a guess.
pub fn client_revision(
    context: &str,
    abi: tph_kernel::KernelAbi,
) -> Result<tph_client::Revision, CliError> {
    use tph_client::Revision;
    use tph_kernel::KernelAbi;
    match abi {
        KernelAbi::V7 => Ok(Revision::V7),
        KernelAbi::Feature => Ok(Revision::Feature),
        other => Err(CliError::new(
            context,
            format!("the emulated kernel interface {other:?} has no client revision"),
        )),
    }
}

/// The failed command lines of a stdin-driven subcommand: how many, and the first
/// [`Failures::SHOWN`] line numbers (memory does not grow with the count).
#[derive(Debug, Default)]
pub struct Failures {
    count: usize,
    first: Vec<usize>,
}

impl Failures {
    /// Line numbers named on stderr.
    pub const SHOWN: usize = 10;

    /// Notes that line `number` failed.
    pub fn push(&mut self, number: usize) {
        self.count += 1;
        if self.first.len() < Self::SHOWN {
            self.first.push(number);
        }
    }

    /// No line failed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `tphctl: CMD: F of N commands failed (lines 3, 7, ...)` on stderr.
    pub fn report(&self, cmd: &str, commands: usize) {
        let mut lines: Vec<String> = self.first.iter().map(ToString::to_string).collect();
        if self.count > self.first.len() {
            lines.push("...".into());
        }
        eprintln!(
            "tphctl: {cmd}: {} of {commands} commands failed (line{} {})",
            self.count,
            if self.count == 1 { "" } else { "s" },
            lines.join(", ")
        );
    }
}

/// Refuses `path` as an output file before anything runs: it must be creatable (its folder
/// exists and is writable) or an existing writable regular file.
pub fn check_output(flag: &str, path: &std::path::Path) -> Result<(), CliError> {
    let context = || format!("{flag} {}", path.display());
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => return Err(CliError::new(context(), "is a folder")),
        Ok(m) if !m.is_file() => {
            return Err(CliError::new(
                context(),
                "not a regular file (a FIFO, device or socket); give a regular file",
            ))
        }
        _ => {}
    }
    // Opening for append creates nothing new when the file exists and tells whether it can
    // be written; a new file is created and removed again.
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| CliError::new(context(), e))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Maps a subcommand result to the process exit code, printing the error once.
pub fn finish(result: CmdResult) -> i32 {
    match result {
        Ok(Found::Yes) => 0,
        Ok(Found::No) => 1,
        Ok(Found::Failed) => 2,
        Err(e) if is_broken_pipe(&*e.cause) => 0,
        Err(e) => {
            eprintln!("tphctl: {}: {}", e.context, chain(&*e.cause));
            2
        }
    }
}

/// An error and each of its sources, `: `-separated: the libraries print a source only through
/// `source()`, never in their own message.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        text.push_str(": ");
        text.push_str(&s.to_string());
        next = s.source();
    }
    text
}

/// A client error as `tphctl` reports it: its chain, then the option of this tool that fixes it.
pub fn client_error(e: &tph_client::Error) -> String {
    let hint = match e {
        tph_client::Error::NoVfioCdev { .. } => " (fix: --vfio-interface legacy)",
        tph_client::Error::NoTphInterface { .. } => " (--kernel-abi picks the revision)",
        _ => "",
    };
    format!("{}{hint}", chain(e))
}

fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Fails when standard output was closed (`>&-`). The Rust runtime reopens a closed standard
/// output on `/dev/null`, read-write, before `main`, so every write would succeed and the
/// output be lost with status 0. A shell's `>/dev/null` opens it write-only, which is kept.
///
/// Every command runs this, so it asks the descriptor itself rather than `/proc` (a path walk
/// and two files, a tenth of `show --lspci`'s own time on a small dump): `fstat` says whether it
/// is `/dev/null`, and only then does an empty `read` tell read-write (0) from write-only
/// (`EBADF`: Linux checks the access mode before the count).
pub fn check_stdout() -> Result<(), CliError> {
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return Ok(());
    };
    let mut out = std::fs::File::from(fd);
    let Ok(meta) = out.metadata() else {
        return Ok(());
    };
    if !meta.file_type().is_char_device() {
        return Ok(());
    }
    let Ok(null) = std::fs::metadata("/dev/null") else {
        return Ok(());
    };
    if meta.rdev() == null.rdev() && out.read(&mut []).is_ok() {
        return Err(CliError::new(
            "writing output",
            "standard output is closed (the runtime put /dev/null, read-write, in its place)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain prints each source once, in order, after the error's own message.
    #[test]
    fn chain_appends_each_source_once() {
        let host = tph_vmm::Error::Host {
            op: "ENABLE",
            source: tph_client::Error::Io {
                path: "/dev/vfio/3".into(),
                source: std::io::Error::from_raw_os_error(13),
            },
        };
        let text = chain(&host);
        assert!(
            text.starts_with("host ENABLE failed: cannot open /dev/vfio/3: Permission denied"),
            "{text}"
        );
        assert_eq!(text.matches("Permission denied").count(), 1, "{text}");
    }

    #[test]
    fn client_errors_get_the_option_that_fixes_them() {
        let e = tph_client::Error::NoVfioCdev {
            bdf: "0000:01:00.0".parse().unwrap(),
            path: "/dev/vfio/devices".into(),
        };
        assert!(client_error(&e).ends_with("(fix: --vfio-interface legacy)"));
        assert!(
            !e.to_string().contains("--"),
            "the library names no tphctl option"
        );
    }
}
