//! Which kernel TPH interface is there, decided from side-effect-free evidence.
//!
//! The v7 ioctl number 0x3B7A was also used by an incompatible earlier RFC and by an unrelated
//! dma-buf call, so "send a GET_CAP and see" can do damage on the wrong kernel. The probe only
//! reads the names of vfio-pci's module parameter files: v7 has `enable_unsafe_tph_ds_mode`, the
//! feature revision renamed it `enable_unsafe_tph` (`later-revisions.md`). Anything else is
//! reported as [`Revision::Unknown`]; an explicit override wins over the evidence.

use std::fmt;
use std::path::{Path, PathBuf};

/// The v7 module parameter name.
pub const V7_PARAM: &str = "enable_unsafe_tph_ds_mode";
/// The feature revision's module parameter name.
pub const FEATURE_PARAM: &str = "enable_unsafe_tph";

/// A kernel TPH interface revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Revision {
    /// The v7 `VFIO_DEVICE_PCI_TPH` ioctl (0x3B7A).
    V7,
    /// The later `VFIO_DEVICE_FEATURE_TPH_ST` feature with a virtualised Control register.
    Feature,
    /// No evidence either way: the client will not send anything.
    Unknown,
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Revision::V7 => "v7 ioctl",
            Revision::Feature => "feature revision",
            Revision::Unknown => "unknown",
        })
    }
}

impl std::str::FromStr for Revision {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "v7" => Ok(Revision::V7),
            "feature" => Ok(Revision::Feature),
            "unknown" => Ok(Revision::Unknown),
            _ => Err(crate::Error::unknown_name(
                "kernel revision",
                s,
                "v7, feature, unknown",
            )),
        }
    }
}

/// What the probe decided and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeReport {
    /// The revision decided.
    pub revision: Revision,
    /// One line per piece of evidence (or the override), for humans.
    pub evidence: Vec<String>,
}

/// Decides the kernel revision from sysfs, never from an ioctl.
///
/// ```
/// use tph_client::probe::{Probe, Revision};
/// let dir = std::env::temp_dir().join(format!("tph-probe-doc-{}", std::process::id()));
/// std::fs::create_dir_all(dir.join("module/vfio_pci/parameters")).unwrap();
/// std::fs::write(dir.join("module/vfio_pci/parameters/enable_unsafe_tph_ds_mode"), "N\n").unwrap();
/// assert_eq!(Probe::new(&dir).run().revision, Revision::V7);
/// assert_eq!(Probe::new(&dir).with_override(Revision::Unknown).run().revision, Revision::Unknown);
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    sysfs_root: PathBuf,
    forced: Option<Revision>,
}

impl Default for Probe {
    fn default() -> Self {
        Self::new("/sys")
    }
}

impl Probe {
    /// A probe reading the sysfs tree rooted at `sysfs_root` (normally `/sys`).
    ///
    /// ```
    /// let p = tph_client::probe::Probe::new("/sys");
    /// # let _ = p;
    /// ```
    pub fn new(sysfs_root: impl Into<PathBuf>) -> Self {
        Self {
            sysfs_root: sysfs_root.into(),
            forced: None,
        }
    }

    /// Skips the evidence and reports `revision` (the user knows better).
    ///
    /// ```
    /// use tph_client::probe::{Probe, Revision};
    /// let r = Probe::new("/nonexistent").with_override(Revision::V7).run();
    /// assert_eq!(r.revision, Revision::V7);
    /// ```
    pub fn with_override(mut self, revision: Revision) -> Self {
        self.forced = Some(revision);
        self
    }

    /// Reads the evidence and decides.
    ///
    /// ```
    /// use tph_client::probe::{Probe, Revision};
    /// let r = Probe::new("/nonexistent").run();
    /// assert_eq!(r.revision, Revision::Unknown);
    /// ```
    pub fn run(&self) -> ProbeReport {
        if let Some(revision) = self.forced {
            return ProbeReport {
                revision,
                evidence: vec![format!("revision forced to {revision} by the caller")],
            };
        }
        decide(&param_names(&self.sysfs_root))
    }
}

/// (module, parameter) names under `root/module/vfio_pci*/parameters/`.
fn param_names(root: &Path) -> Vec<(String, String)> {
    let Ok(modules) = std::fs::read_dir(root.join("module")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for m in modules.flatten() {
        let module = m.file_name().to_string_lossy().into_owned();
        if !module.starts_with("vfio_pci") {
            continue;
        }
        let Ok(params) = std::fs::read_dir(m.path().join("parameters")) else {
            continue;
        };
        for p in params.flatten() {
            out.push((module.clone(), p.file_name().to_string_lossy().into_owned()));
        }
    }
    out.sort();
    out
}

fn decide(params: &[(String, String)]) -> ProbeReport {
    let find = |name: &str| params.iter().find(|(_, p)| p == name);
    let (revision, line) = match (find(V7_PARAM), find(FEATURE_PARAM)) {
        (Some((m, p)), None) => (Revision::V7, format!("{m} has parameter {p}")),
        (None, Some((m, p))) => (Revision::Feature, format!("{m} has parameter {p}")),
        (Some(_), Some(_)) => (
            Revision::Unknown,
            format!("both {V7_PARAM} and {FEATURE_PARAM} present: ambiguous"),
        ),
        (None, None) if params.is_empty() => (
            Revision::Unknown,
            "no vfio_pci module parameters found (module not loaded?)".to_string(),
        ),
        (None, None) => (
            Revision::Unknown,
            "vfio_pci has no TPH module parameter".to_string(),
        ),
    };
    ProbeReport {
        revision,
        evidence: vec![line],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(names: &[&str]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| ("vfio_pci_core".to_string(), n.to_string()))
            .collect()
    }

    #[test]
    fn decide_v7_param_is_v7() {
        let r = decide(&params(&["disable_idle_d3", V7_PARAM]));
        assert_eq!(r.revision, Revision::V7);
    }

    #[test]
    fn decide_feature_param_is_feature() {
        assert_eq!(
            decide(&params(&[FEATURE_PARAM])).revision,
            Revision::Feature
        );
    }

    #[test]
    fn decide_no_tph_param_is_unknown() {
        let r = decide(&params(&["disable_vga", "nointxmask"]));
        assert_eq!(r.revision, Revision::Unknown);
        assert!(r.evidence[0].contains("no TPH module parameter"));
    }

    #[test]
    fn decide_both_params_is_unknown() {
        let r = decide(&params(&[V7_PARAM, FEATURE_PARAM]));
        assert_eq!(r.revision, Revision::Unknown);
    }

    #[test]
    fn revision_parses_its_names() {
        assert_eq!("v7".parse::<Revision>().ok(), Some(Revision::V7));
        assert!("v9".parse::<Revision>().is_err());
    }
}
