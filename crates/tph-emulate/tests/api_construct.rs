//! The `#[non_exhaustive]` types a test of a driver builds, built the only way another crate
//! can: through their constructors (this file is a crate of its own, so a struct literal would
//! not compile). Each test checks that every `with_*` sets its own field and nothing else.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::PathBuf;

use tph_emulate::emulate::{Bind, Setup};
use tph_emulate::harness::Sandbox;
use tph_emulate::vfio_host::TreeSpec;

#[test]
fn setup_new_is_the_default_and_with_methods_set_each_field() {
    assert_eq!(Setup::new(), Setup::default());
    let s = Setup::new()
        .with_bind(Bind::All)
        .with_online(Some(vec![1]))
        .with_trace(true)
        .with_cdev(true);
    assert_eq!(
        (s.bind, s.online, s.trace, s.cdev),
        (Bind::All, Some(vec![1]), true, true)
    );
}

#[test]
fn sandbox_new_is_the_default_and_with_methods_set_each_field() {
    assert_eq!(Sandbox::new(), Sandbox::default());
    let bind = (PathBuf::from("/tmp/a"), PathBuf::from("/sys"));
    let s = Sandbox::new()
        .with_syscalls(vec![16])
        .with_binds(vec![bind.clone()])
        .with_stdin("/tmp/in")
        .with_inherit_stdio(true)
        .with_forward_signals(true);
    assert_eq!(s.syscalls, [16]);
    assert_eq!(s.binds, [bind]);
    assert_eq!(s.stdin, Some(PathBuf::from("/tmp/in")));
    assert!(s.inherit_stdio && s.forward_signals);
}

#[test]
fn tree_spec_new_is_the_default_and_with_methods_set_each_field() {
    assert_eq!(TreeSpec::new(), TreeSpec::default());
    let bdf = "01:00.0".parse().unwrap();
    let t = TreeSpec::new()
        .with_devices(vec![(bdf, 3)])
        .with_cpus(2)
        .with_online(Some(vec![0]))
        .with_functions(vec![(bdf, vec![0; 64])])
        .with_params(vec![("enable_unsafe_tph".into(), true)])
        .with_cdev(true)
        .with_mirror_host_dev(true);
    assert_eq!(t.devices, [(bdf, 3)]);
    assert_eq!((t.cpus, t.online.as_deref()), (2, Some(&[0][..])));
    assert_eq!(t.functions, [(bdf, vec![0; 64])]);
    assert_eq!(t.params, [("enable_unsafe_tph".to_string(), true)]);
    assert!(t.cdev && t.mirror_host_dev);
}
