//! The public API of every published library crate, as a golden file per crate
//! (`tests/public-api/<crate>.rs`), so every API change shows up in review as a diff.
//!
//! Each crate's sources are parsed with `syn` from `src/lib.rs`, following `mod` declarations.
//! What is kept: every `pub` item with its signature (function bodies emptied), `pub` fields,
//! every enum variant, the values of `pub` constants, `pub use` re-exports, trait impls (their
//! header and associated types), and the attributes that change what a user can do
//! (`derive`, `repr`, `non_exhaustive`, `cfg`, `cfg_attr`, `from`, `source`, `doc(hidden)`).
//! What is dropped: docs, bodies, private items and fields (a struct with private fields is
//! marked `#[api(private_fields)]`: it cannot be built by a struct literal), `#[cfg(test)]` code,
//! error messages. Private modules are listed with their `pub` items, since `pub use` re-exports
//! them; this errs on the side of showing too much.
//!
//! An API change fails this test with the diff; `UPDATE_GOLDEN=1 cargo test -p tph-testkit
//! --test public_api` rewrites the golden files, which then go into the same commit.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use syn::punctuated::Punctuated;
use syn::{Attribute, Fields, ImplItem, Item, TraitItem, Visibility};

/// Every library crate that `cargo package` publishes (tph-guest and tph-testkit are
/// `publish = false`; tphctl's library is the command languages of its `session` and `vm`).
const PUBLISHED: [&str; 11] = [
    "tph-abi",
    "tph-regs",
    "tph-report",
    "tph-acpi",
    "tph-kernel",
    "tph-client",
    "tph-emu",
    "tph-vmm",
    "tph-vfio-user",
    "tph-emulate",
    "tphctl",
];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn is_public(vis: &Visibility) -> bool {
    matches!(vis, Visibility::Public(_))
}

fn is_cfg_test(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && {
            let text = quote::ToTokens::to_token_stream(&a.meta).to_string();
            text.contains("test") && !text.contains("not")
        }
    })
}

/// Keeps the attributes that change what a user of the item can do.
fn keep_attrs(attrs: &mut Vec<Attribute>) {
    attrs.retain(|a| {
        let p = a.path();
        if p.is_ident("doc") {
            let text = quote::ToTokens::to_token_stream(&a.meta).to_string();
            return text.contains("hidden");
        }
        [
            "derive",
            "repr",
            "non_exhaustive",
            "cfg",
            "cfg_attr",
            "from",
            "source",
        ]
        .iter()
        .any(|k| p.is_ident(k))
    });
}

fn empty_block() -> syn::Block {
    syn::parse_quote!({})
}

fn private_fields_marker() -> Attribute {
    syn::parse_quote!(#[api(private_fields)])
}

/// Strips `fields` down to its public fields; true if any field was private.
fn strip_fields(fields: &mut Fields) -> bool {
    let mut private = false;
    match fields {
        Fields::Named(named) => {
            let kept: Punctuated<_, _> = std::mem::take(&mut named.named)
                .into_iter()
                .filter(|f| {
                    let public = is_public(&f.vis);
                    private |= !public;
                    public
                })
                .map(|mut f| {
                    keep_attrs(&mut f.attrs);
                    f
                })
                .collect();
            named.named = kept;
        }
        Fields::Unnamed(unnamed) => {
            // Positions matter in a tuple struct: a private field stays as `_` of type `()`.
            for f in unnamed.unnamed.iter_mut() {
                keep_attrs(&mut f.attrs);
                if !is_public(&f.vis) {
                    private = true;
                    f.ty = syn::parse_quote!(_);
                }
            }
        }
        Fields::Unit => {}
    }
    private
}

/// The public surface of one item, or `None` if it has none. `dir` is where the files of the
/// item's child modules live.
fn surface(item: Item, dir: &Path, file: &Path) -> Option<Item> {
    match item {
        Item::Fn(mut f) if is_public(&f.vis) && !is_cfg_test(&f.attrs) => {
            keep_attrs(&mut f.attrs);
            *f.block = empty_block();
            Some(Item::Fn(f))
        }
        Item::Struct(mut s) if is_public(&s.vis) && !is_cfg_test(&s.attrs) => {
            keep_attrs(&mut s.attrs);
            if strip_fields(&mut s.fields) {
                s.attrs.push(private_fields_marker());
            }
            Some(Item::Struct(s))
        }
        Item::Enum(mut e) if is_public(&e.vis) && !is_cfg_test(&e.attrs) => {
            keep_attrs(&mut e.attrs);
            for v in e.variants.iter_mut() {
                keep_attrs(&mut v.attrs);
                for f in v.fields.iter_mut() {
                    keep_attrs(&mut f.attrs);
                }
            }
            Some(Item::Enum(e))
        }
        Item::Union(mut u) if is_public(&u.vis) && !is_cfg_test(&u.attrs) => {
            keep_attrs(&mut u.attrs);
            let mut fields = Fields::Named(u.fields.clone());
            if strip_fields(&mut fields) {
                u.attrs.push(private_fields_marker());
            }
            if let Fields::Named(named) = fields {
                u.fields = named;
            }
            Some(Item::Union(u))
        }
        Item::Const(mut c) if is_public(&c.vis) && !is_cfg_test(&c.attrs) => {
            keep_attrs(&mut c.attrs);
            Some(Item::Const(c))
        }
        Item::Static(mut s) if is_public(&s.vis) && !is_cfg_test(&s.attrs) => {
            keep_attrs(&mut s.attrs);
            Some(Item::Static(s))
        }
        Item::Type(mut t) if is_public(&t.vis) && !is_cfg_test(&t.attrs) => {
            keep_attrs(&mut t.attrs);
            Some(Item::Type(t))
        }
        Item::Use(mut u) if is_public(&u.vis) && !is_cfg_test(&u.attrs) => {
            keep_attrs(&mut u.attrs);
            Some(Item::Use(u))
        }
        Item::Trait(mut t) if is_public(&t.vis) && !is_cfg_test(&t.attrs) => {
            keep_attrs(&mut t.attrs);
            for ti in t.items.iter_mut() {
                match ti {
                    TraitItem::Fn(f) => {
                        keep_attrs(&mut f.attrs);
                        if f.default.is_some() {
                            f.default = Some(empty_block());
                        }
                    }
                    TraitItem::Const(c) => keep_attrs(&mut c.attrs),
                    TraitItem::Type(t) => keep_attrs(&mut t.attrs),
                    _ => {}
                }
            }
            Some(Item::Trait(t))
        }
        Item::Impl(mut i) if !is_cfg_test(&i.attrs) => {
            keep_attrs(&mut i.attrs);
            let trait_impl = i.trait_.is_some();
            i.items = std::mem::take(&mut i.items)
                .into_iter()
                .filter_map(|ii| match ii {
                    ImplItem::Fn(mut f) if !trait_impl && is_public(&f.vis) => {
                        keep_attrs(&mut f.attrs);
                        f.block = empty_block();
                        Some(ImplItem::Fn(f))
                    }
                    ImplItem::Const(mut c) if trait_impl || is_public(&c.vis) => {
                        keep_attrs(&mut c.attrs);
                        Some(ImplItem::Const(c))
                    }
                    ImplItem::Type(mut t) if trait_impl => {
                        keep_attrs(&mut t.attrs);
                        Some(ImplItem::Type(t))
                    }
                    _ => None,
                })
                .collect();
            (trait_impl || !i.items.is_empty()).then_some(Item::Impl(i))
        }
        Item::Macro(mut m) => {
            let exported = m.attrs.iter().any(|a| a.path().is_ident("macro_export"));
            if !exported {
                return None;
            }
            keep_attrs(&mut m.attrs);
            m.mac.tokens = proc_macro2::TokenStream::new();
            Some(Item::Macro(m))
        }
        Item::Mod(mut m) if !is_cfg_test(&m.attrs) => {
            keep_attrs(&mut m.attrs);
            let name = m.ident.to_string();
            let (items, child_dir) = match m.content.take() {
                Some((_, items)) => (items, dir.join(&name)),
                None => {
                    let flat = dir.join(format!("{name}.rs"));
                    let nested = dir.join(&name).join("mod.rs");
                    let path = if flat.exists() { flat } else { nested };
                    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                        panic!(
                            "module {name} of {}: {}: {e}",
                            file.display(),
                            path.display()
                        )
                    });
                    let parsed = syn::parse_file(&text)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    (parsed.items, dir.join(&name))
                }
            };
            let kept: Vec<Item> = items
                .into_iter()
                .filter_map(|i| surface(i, &child_dir, file))
                .collect();
            if kept.is_empty() && !is_public(&m.vis) {
                return None;
            }
            m.content = Some((syn::token::Brace::default(), kept));
            m.semi = None;
            Some(Item::Mod(m))
        }
        _ => None,
    }
}

/// The public API of the crate in `crates/<name>`, as Rust-like text.
fn public_api(name: &str) -> String {
    let src = crates_dir().join(name).join("src");
    let lib = src.join("lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", lib.display()));
    let items = parsed
        .items
        .into_iter()
        .filter_map(|i| surface(i, &src, &lib))
        .collect();
    let file = syn::File {
        shebang: None,
        attrs: Vec::new(),
        items,
    };
    let mut out = String::new();
    writeln!(
        out,
        "// The public API of {name} (generated by tph-testkit/tests/public_api.rs; \
         UPDATE_GOLDEN=1 regenerates it)."
    )
    .unwrap();
    out.push_str(&prettyplease::unparse(&file));
    out
}

/// A line diff of `want` against `got` (lines only in one side, in order), enough to review.
fn diff(want: &str, got: &str) -> String {
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    // Longest common subsequence over lines; the files are a few thousand lines at most.
    let mut lcs = vec![vec![0u32; g.len() + 1]; w.len() + 1];
    for i in (0..w.len()).rev() {
        for j in (0..g.len()).rev() {
            lcs[i][j] = if w[i] == g[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < w.len() || j < g.len() {
        if i < w.len() && j < g.len() && w[i] == g[j] {
            i += 1;
            j += 1;
        } else if j < g.len() && (i == w.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            writeln!(out, "+{:5} {}", j + 1, g[j]).unwrap();
            j += 1;
        } else {
            writeln!(out, "-{:5} {}", i + 1, w[i]).unwrap();
            i += 1;
        }
    }
    out
}

fn check(name: &str) {
    let got = public_api(name);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/public-api")
        .join(format!("{name}.rs"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{} (UPDATE_GOLDEN=1 creates it): {e}", golden.display()));
    assert!(
        want == got,
        "the public API of {name} changed (- golden, + now); if intended, regenerate with \
         UPDATE_GOLDEN=1 cargo test -p tph-testkit --test public_api and note it in \
         crates/{name}/CHANGELOG.md:\n{}",
        diff(&want, &got)
    );
}

#[test]
fn tph_abi_public_api() {
    check("tph-abi");
}

#[test]
fn tph_regs_public_api() {
    check("tph-regs");
}

#[test]
fn tph_report_public_api() {
    check("tph-report");
}

#[test]
fn tph_acpi_public_api() {
    check("tph-acpi");
}

#[test]
fn tph_kernel_public_api() {
    check("tph-kernel");
}

#[test]
fn tph_client_public_api() {
    check("tph-client");
}

#[test]
fn tph_emu_public_api() {
    check("tph-emu");
}

#[test]
fn tph_vmm_public_api() {
    check("tph-vmm");
}

#[test]
fn tph_vfio_user_public_api() {
    check("tph-vfio-user");
}

#[test]
fn tph_emulate_public_api() {
    check("tph-emulate");
}

/// Every published library crate has a golden file and a test above, and a CHANGELOG.
#[test]
fn every_published_crate_is_covered() {
    for entry in std::fs::read_dir(crates_dir()).unwrap() {
        let dir = entry.unwrap().path();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let published = !manifest.contains("publish = false") && !manifest.is_empty();
        if !published {
            continue;
        }
        assert!(
            dir.join("CHANGELOG.md").exists(),
            "{name} is published and has no CHANGELOG.md"
        );
        if dir.join("src/lib.rs").exists() {
            assert!(
                PUBLISHED.contains(&name.as_str()),
                "{name} is a published library and has no public-API snapshot"
            );
        }
    }
}

/// The snapshot sees what a user sees: a private field, a body, a doc comment or a test module
/// do not reach it; a new public function, a derive and `non_exhaustive` do.
#[test]
fn surface_keeps_the_api_and_drops_the_rest() {
    let file: syn::File = syn::parse_quote! {
        /// docs
        #[derive(Debug)]
        #[non_exhaustive]
        pub struct A { pub x: u8, y: u8 }
        struct Hidden;
        impl A { pub fn new() -> Self { todo!() } fn private() {} }
        impl Clone for A { fn clone(&self) -> Self { todo!() } }
        #[cfg(test)]
        mod tests { pub fn t() {} }
        pub const N: u32 = 4;
    };
    let dir = Path::new("/nonexistent");
    let items = file
        .items
        .into_iter()
        .filter_map(|i| surface(i, dir, dir))
        .collect();
    let text = prettyplease::unparse(&syn::File {
        shebang: None,
        attrs: Vec::new(),
        items,
    });
    assert_eq!(
        text,
        "#[derive(Debug)]\n#[non_exhaustive]\n#[api(private_fields)]\npub struct A {\n    pub x: u8,\n}\n\
         impl A {\n    pub fn new() -> Self {}\n}\nimpl Clone for A {}\npub const N: u32 = 4;\n"
    );
}

#[test]
fn tphctl_public_api() {
    check("tphctl");
}
