//! Run an unmodified program against an emulated host: every TPH-capable function of the host
//! bound to vfio-pci, one IOMMU group each, in a fake `/sys` and `/dev` bind-mounted in the
//! program's private mount namespace, and its VFIO calls answered by the kernel model through
//! [`VfioHostHandler`] (`tphctl emulate` is this, from the command line).
//!
//! ```no_run
//! use tph_emulate::emulate::{run, Emulation, Setup};
//! let host = tph_kernel::Host::with_default_machine(Default::default());
//! let root = std::env::temp_dir().join("tph-emulate-doc");
//! let setup = Setup::default(); // TPH functions bound, every CPU online, no trace
//! let ran: Emulation = run(&host, std::process::Command::new("./my-driver"), root, &setup).unwrap();
//! std::process::exit(ran.exit_code());
//! ```

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use tph_kernel::{Host, KernelAbi};
use tph_regs::machine::Bdf;
use tph_regs::tph::TphRequester;

use crate::harness::{supervise_in, user_notif_available, Sandbox};
use crate::vfio_host::{FakeVfioTree, TreeSpec, VfioHostHandler, TRAPPED_VFIO_REQUESTS};
use crate::Error;

/// How a program run by [`run`] ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct Emulation {
    /// Its exit status.
    pub status: ExitStatus,
    /// Every trapped call and hardware access (empty unless asked for).
    pub trace: Vec<String>,
    /// The functions it was shown, with their IOMMU groups.
    pub devices: Vec<(Bdf, u32)>,
    /// Calls answered by the model.
    pub answered: usize,
}

impl Emulation {
    /// The program's exit code; `128 + n` when signal `n` ended it, as a shell reports it
    /// (`exit_code_of_a_signalled_program_is_128_plus_the_signal` below).
    pub fn exit_code(&self) -> i32 {
        match (self.status.code(), self.status.signal()) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => 1,
        }
    }
}

/// Which functions `tphctl emulate` binds to vfio-pci.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bind {
    /// Every function with a TPH Requester capability.
    #[default]
    Tph,
    /// Every function vfio-pci can take: each with a type 0 header that is not a bridge
    /// (class 0x06).
    All,
}

/// How [`run`] shows the host to the program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Setup {
    /// Which functions are bound to vfio-pci.
    pub bind: Bind,
    /// The CPUs online (`None`: every CPU of the host); the others are present but offline.
    pub online: Option<Vec<u32>>,
    /// Record every trapped call and hardware access.
    pub trace: bool,
    /// Also offer each bound function's device cdev (`/dev/vfio/devices/vfioN`, its
    /// `vfio-dev/vfioN` in sysfs) and `/dev/iommu`, as a kernel with iommufd does.
    pub cdev: bool,
}

impl Setup {
    /// The default: the TPH functions bound, every CPU online, no trace, no cdev.
    ///
    /// ```
    /// use tph_emulate::emulate::{Bind, Setup};
    /// let s = Setup::new().with_bind(Bind::All).with_online(Some(vec![0, 2])).with_trace(true);
    /// assert_eq!((s.bind, s.online.as_deref(), s.trace, s.cdev), (Bind::All, Some(&[0, 2][..]), true, false));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The same binding `bind` to vfio-pci.
    #[must_use]
    pub fn with_bind(mut self, bind: Bind) -> Self {
        self.bind = bind;
        self
    }

    /// The same with only `online` CPUs online (`None`: every CPU of the host).
    #[must_use]
    pub fn with_online(mut self, online: Option<Vec<u32>>) -> Self {
        self.online = online;
        self
    }

    /// The same recording every trapped call and hardware access when `trace`.
    #[must_use]
    pub fn with_trace(mut self, trace: bool) -> Self {
        self.trace = trace;
        self
    }

    /// The same offering device cdevs and `/dev/iommu` when `cdev`.
    #[must_use]
    pub fn with_cdev(mut self, cdev: bool) -> Self {
        self.cdev = cdev;
        self
    }
}

/// The CPUs this process may run on (`Cpus_allowed_list` of `/proc/self/status`, the
/// affinity `sched_getaffinity` gives), ascending; `None` when it cannot be read.
///
/// ```
/// let cpus = tph_emulate::emulate::allowed_cpus().unwrap();
/// assert!(!cpus.is_empty());
/// ```
pub fn allowed_cpus() -> Option<Vec<u32>> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
        .trim();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?);
        cpus.extend(a..=b);
    }
    (!cpus.is_empty()).then_some(cpus)
}

/// The functions `bind` selects, each with its IOMMU group (1, 2, ... in address order).
///
/// ```
/// use tph_emulate::emulate::{bound_functions, Bind};
/// let host = tph_kernel::Host::with_default_machine(Default::default());
/// assert_eq!(bound_functions(&host, Bind::Tph).len(), 5);
/// assert_eq!(bound_functions(&host, Bind::All).len(), 6); // and the RCiEP without TPH
/// ```
pub fn bound_functions(host: &Host, bind: Bind) -> Vec<(Bdf, u32)> {
    if bind == Bind::Tph {
        return tph_functions(host);
    }
    host.devices()
        .into_iter()
        .filter(|bdf| {
            host.machine().function(*bdf).is_some_and(|f| {
                let c = &f.config;
                c.get(0x0e).is_some_and(|t| t & 0x7f == 0) && c.get(0x0b) != Some(&0x06)
            })
        })
        .zip(1..)
        .collect()
}

/// The host's functions with a TPH Requester capability, each with its IOMMU group (1, 2, ...
/// in address order).
///
/// ```
/// let host = tph_kernel::Host::with_default_machine(Default::default());
/// let groups = tph_emulate::emulate::tph_functions(&host);
/// assert_eq!(groups[0], ("00:05.0".parse().unwrap(), 1));
/// ```
pub fn tph_functions(host: &Host) -> Vec<(Bdf, u32)> {
    host.devices()
        .into_iter()
        .filter(|bdf| {
            host.machine()
                .function(*bdf)
                .is_some_and(|f| TphRequester::find(&f.config).is_some())
        })
        .zip(1..)
        .collect()
}

/// The tree `host` shows its program: every function (those `setup` binds bound to
/// vfio-pci), its CPUs, vfio-pci's parameter of the host's revision set as the host's
/// unsafe-DS option, this machine's other `/dev` entries.
fn tree_spec(host: &Host, setup: &Setup) -> Result<TreeSpec, Error> {
    let options = host.options();
    let param = match options.abi {
        KernelAbi::V7 => tph_client::probe::V7_PARAM,
        KernelAbi::Feature => tph_client::probe::FEATURE_PARAM,
        _ => {
            return Err(Error::Unsupported {
                what: "a vfio-pci TPH module parameter for the host's kernel ABI",
            });
        }
    };
    let functions = host
        .machine()
        .sorted()
        .into_iter()
        .map(|f| (f.bdf, f.config.clone()))
        .collect();
    Ok(TreeSpec {
        devices: bound_functions(host, setup.bind),
        cpus: options.cpus,
        online: setup.online.clone(),
        functions,
        params: vec![(param.to_string(), options.unsafe_ds)],
        cdev: setup.cdev,
        mirror_host_dev: true,
    })
}

/// Runs `program` (stdin, stdout and stderr shared with this process, no time limit; SIGINT,
/// SIGTERM, SIGHUP and SIGQUIT passed on to it and its calls answered until it exits, see
/// [`Sandbox::forward_signals`]) against
/// `host`, with its fake tree under `root` (which must not exist; removed afterwards). Every
/// function `setup` binds is taken over by vfio-pci first. [`Error::Unsupported`] when this
/// kernel has no seccomp user notification; a private mount namespace needs `CAP_SYS_ADMIN`
/// (else [`Error::Harness`] with EPERM).
pub fn run(
    host: &Host,
    program: Command,
    root: PathBuf,
    setup: &Setup,
) -> Result<Emulation, Error> {
    if !user_notif_available() {
        return Err(Error::Unsupported {
            what: "seccomp user notification (SECCOMP_RET_USER_NOTIF, Linux 5.0 or later, \
                   listed in /proc/sys/kernel/seccomp/actions_avail)",
        });
    }
    let tree = FakeVfioTree::build(root, tree_spec(host, setup)?)?;
    let devices = tree
        .devices()
        .iter()
        .map(|(bdf, _)| {
            host.take_over(*bdf).map_err(|e| Error::Model {
                op: "taking the device over",
                errno: e,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut handler = VfioHostHandler::for_tree(&tree, devices)?;
    if setup.trace {
        handler = handler.with_trace();
    }
    let sandbox = Sandbox {
        inherit_stdio: true,
        forward_signals: true,
        ..tree.sandbox()
    };
    let out = supervise_in(
        program,
        &TRAPPED_VFIO_REQUESTS,
        &sandbox,
        &mut handler,
        Duration::MAX,
    )?;
    Ok(Emulation {
        status: out.status,
        trace: handler.take_trace(),
        devices: tree.devices().to_vec(),
        answered: out.answered,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::Emulation;

    #[test]
    fn exit_code_of_a_signalled_program_is_128_plus_the_signal() {
        let e = Emulation {
            status: std::process::ExitStatus::from_raw(9), // wait status: killed by SIGKILL
            trace: vec![],
            devices: vec![],
            answered: 0,
        };
        assert_eq!(e.exit_code(), 137);
    }
}
