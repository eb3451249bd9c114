//! Reading a machine from an lspci dump file (or standard input), refusing special files.

use std::io::BufReader;
use std::path::Path;

use crate::dump::{
    read_lspci_dump, read_lspci_dump_for, read_lspci_dump_trimmed, DumpLimits, Extent,
};
use crate::machine::{Bdf, Machine};
use crate::Error;

/// Reads the dump at `path` (`-`: standard input) within `limits`, streaming.
pub fn read_dump(path: &Path, limits: DumpLimits) -> Result<Machine, Error> {
    if path == Path::new("-") {
        return read_lspci_dump(std::io::stdin().lock(), limits);
    }
    read_lspci_dump(open(path)?, limits)
}

/// [`read_dump`] keeping of each endpoint only the bytes `extent` says (see
/// [`crate::dump::read_lspci_dump_trimmed`]).
pub fn read_dump_trimmed(
    path: &Path,
    limits: DumpLimits,
    extent: Extent,
) -> Result<Machine, Error> {
    if path == Path::new("-") {
        return read_lspci_dump_trimmed(std::io::stdin().lock(), limits, extent);
    }
    read_lspci_dump_trimmed(open(path)?, limits, extent)
}

/// [`read_dump`] for work on the function `focus` alone (see
/// [`crate::dump::read_lspci_dump_for`]): a file only.
pub fn read_dump_for(path: &Path, limits: DumpLimits, focus: Bdf) -> Result<Machine, Error> {
    read_lspci_dump_for(open(path)?, limits, focus)
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>, Error> {
    let file = open_regular(path).map_err(|e| Error::io(path, e))?;
    Ok(BufReader::with_capacity(1 << 16, file))
}

/// Opens `path` for reading when it is a regular file (after symbolic links). A FIFO, device
/// or socket is refused before it is opened: opening a FIFO blocks until a writer comes, and a
/// device such as `/dev/zero` never ends. A dump from a pipe is read with `-` (standard input).
pub(crate) fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() && !meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, device or socket); give a regular file",
        ));
    }
    std::fs::File::open(path)
}
