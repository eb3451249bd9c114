//! Differential test on generated programs: a seeded generator writes a few hundred methods
//! mixing the language the `_DSM`s use (arithmetic, logic, shifts, compare, If/Else, While with
//! Break/Continue, Switch, Index/DerefOf/SizeOf/Concatenate/Mid/ToBuffer/ToInteger, buffer
//! fields, packages, nested helper calls). `iasl` compiles them; `acpiexec` and this crate
//! evaluate each with two arguments; every result must be identical.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{
    acpiexec_args, compile, ours, require, same, scratch, write_tables, Outcome, Printed, Rng,
};
use tph_acpi::aml::{Aml, Value};

/// Number of generated programs (methods).
const PROGRAMS: usize = 320;
/// Fixed seed: the corpus is the same on every run.
const SEED: u64 = 0x5eed_0007_7a11_d5e5;
/// Calls per acpiexec process: its `-b` command line is cut near 1 KiB, and one call is at
/// most 34 characters ("evaluate G319 9223372036854775808;").
const CALLS_PER_PROCESS: usize = 28;

const CONSTS: [&str; 12] = [
    "Zero",
    "One",
    "Ones",
    "0x07",
    "0xFF",
    "0x100",
    "0x1234",
    "0x8000",
    "0xDEADBEEF",
    "0xFFFFFFFF",
    "0x123456789ABCDEF0",
    "0x8000000000000000",
];
const ARGS: [u64; 8] = [
    0,
    1,
    5,
    0xff,
    0x1234,
    0xffff_ffff,
    0x8000_0000_0000_0000,
    0x0123_4567_89ab_cdef,
];

/// Globals every generated method may read (never written, so call order does not matter).
const PRELUDE: &str = r#"
    Name (PKG0, Package () { 0x11, 0x2233, 0x44556677, 0x8899AABBCCDDEEFF, Zero, One, Ones, 0x80 })
    Name (BUF0, Buffer () { 0x00, 0x01, 0x02, 0x03, 0x10, 0x20, 0x40, 0x80, 0xFF, 0xFE, 0x7F, 0x3C, 0xA5, 0x5A, 0x99, 0x66 })
    Name (STR0, "TPH steering tag")
    Method (HLP0, 2, NotSerialized) { Return ((Arg0 * 3) ^ Arg1) }
    Method (HLP1, 2, Serialized)
    {
        Name (TB, Buffer (8) {})
        CreateDWordField (TB, Zero, LO)
        CreateWordField (TB, 4, MI)
        CreateByteField (TB, 6, HI)
        CreateBitField (TB, 63, TOP)
        LO = Arg0
        MI = Arg1
        HI = (Arg0 + Arg1)
        TOP = (Arg1 & One)
        Return (ToInteger (TB))
    }
    Method (HLP2, 2, NotSerialized)
    {
        If (Arg0 > Arg1) { Return (HLP0 (Arg1, Arg0)) }
        Return ((Arg0 - Arg1))
    }
    Method (HLP3, 2, NotSerialized)
    {
        Local0 = (Arg1 & 0x07)
        While (Local0)
        {
            Arg0 = ((Arg0 << One) ^ Local0)
            Local0--
        }
        Return (Arg0)
    }
    Method (HLP4, 2, NotSerialized)
    {
        Arg0 [(Arg1 & 0x03)] = Arg1
        Return (SizeOf (Arg0))
    }
    Method (HLP5, 2, Serialized)
    {
        CreateWordField (Arg0, (Arg1 & 0x03), WF)
        WF = (Arg1 ^ 0x1234)
        Return (DerefOf (Arg0 [Zero]))
    }
"#;

struct Gen {
    rng: Rng,
    loops: usize,
    switches: usize,
}

impl Gen {
    fn leaf(&mut self) -> String {
        match self.rng.below(6) {
            0 | 1 => "Arg0".into(),
            2 => self.rng.pick(&CONSTS).to_string(),
            _ => format!("Local{}", self.rng.below(4)),
        }
    }

    fn int(&mut self, depth: u32) -> String {
        if depth == 0 || self.rng.below(4) == 0 {
            return self.leaf();
        }
        let d = depth - 1;
        match self.rng.below(42) {
            0..=5 => {
                let op = self.rng.pick(&["+", "-", "*", "&", "|", "^"]).to_string();
                format!("({} {op} {})", self.int(d), self.int(d))
            }
            6 => format!("({} << ({} & 0x47))", self.int(d), self.int(d)),
            7 => format!("({} >> ({} & 0x47))", self.int(d), self.int(d)),
            8 => format!("({} / ({} | One))", self.int(d), self.int(d)),
            9 => format!("({} % ({} | One))", self.int(d), self.int(d)),
            10 => {
                let f = self
                    .rng
                    .pick(&["~", "FindSetLeftBit ", "FindSetRightBit ", "!"])
                    .to_string();
                format!("{f}({})", self.int(d))
            }
            11 | 12 => {
                let op = self
                    .rng
                    .pick(&["==", "!=", "<", ">", "<=", ">=", "&&", "||"])
                    .to_string();
                format!("({} {op} {})", self.int(d), self.int(d))
            }
            13 => format!("ToInteger (ToBuffer ({}))", self.int(d)),
            14 => format!("DerefOf (PKG0 [({} & 0x07)])", self.int(d)),
            15 => format!("DerefOf (BUF0 [({} % 0x10)])", self.int(d)),
            16 => format!(
                "ToInteger (Mid (Concatenate ({}, {}), ({} & 0x07), 0x08))",
                self.int(d),
                self.int(d),
                self.int(d)
            ),
            17 => format!(
                "HLP{} ({}, {})",
                self.rng.below(4),
                self.int(d),
                self.int(d)
            ),
            18 => format!("DerefOf (Local4 [({} & 0x03)])", self.int(d)),
            19 => format!("DerefOf (Local5 [({} & 0x07)])", self.int(d)),
            20 => format!(
                "SizeOf ({})",
                self.rng.pick(&["Local4", "Local5", "STR0", "PKG0", "BUF0"])
            ),
            21 => format!("ToInteger (ToDecimalString (({} & 0xFFFF)))", self.int(d)),
            22 => format!("ObjectType (Local{})", self.rng.below(6)),
            23 => format!(
                "ToInteger (Concatenate (\"0x\", ToHexString ({})))",
                self.int(d)
            ),
            24 => format!(
                "(ToHexString ({}) == ToHexString ({}))",
                self.int(d),
                self.int(d)
            ),
            25 => format!("ToInteger (ToHexString ({}))", self.int(d)),
            26 => format!("DerefOf (RefOf (Local{}))", self.rng.below(4)),
            27 => self
                .rng
                .pick(&["CondRefOf (HLP0)", "CondRefOf (\\NOPE)", "CondRefOf (PKG0)"])
                .to_string(),
            28 => format!("Match (PKG0, MGT, {}, MTR, Zero, Zero)", self.int(d)),
            29 => format!(
                "ToInteger (Mid (ToDecimalString ({}), ({} & 0x07), 0x04))",
                self.int(d),
                self.int(d)
            ),
            30 => format!("FromBCD (ToBCD (({} & 0xFFFF)))", self.int(d)),
            31 => "NINT".into(),
            32 => "ToInteger (NBUF)".into(),
            33 => self
                .rng
                .pick(&["SizeOf (NBUF)", "SizeOf (NSTR)"])
                .to_string(),
            34 => "ToInteger (Concatenate (\"0x\", NSTR))".into(),
            35 => format!(
                "HLP4 ({}, {})",
                self.rng.pick(&["Local4", "NBUF"]),
                self.int(d)
            ),
            36 => format!(
                "HLP5 ({}, {})",
                self.rng.pick(&["Local5", "NBUF"]),
                self.int(d)
            ),
            37 => format!("(STR0 < ToHexString ({}))", self.int(d)),
            38 => self.rng.pick(&["(NBUF == Local5)", "(BUF0 > Local5)", "(Local5 < NBUF)", "(NSTR == \"tag\")"]).to_string(),
            39 => format!("ToInteger (ToString (Concatenate (Buffer () {{ 0x31, 0x32 }}, Local5), ({} & 0x07)))", self.int(d)),
            40 => format!("DerefOf (Index (Mid (Local5, ({} & 0x07), 0x02), Zero))", self.int(d)),
            _ => format!("DerefOf (STR0 [({} & 0x0F)])", self.int(d)),
        }
    }

    fn stmts(&mut self, depth: u32, n: u64, indent: usize) -> String {
        (0..1 + self.rng.below(n))
            .map(|_| self.stmt(depth, indent))
            .collect()
    }

    fn stmt(&mut self, depth: u32, indent: usize) -> String {
        let pad = " ".repeat(indent);
        let local = self.rng.below(4);
        let choice = if depth == 0 {
            self.rng.below(5)
        } else {
            self.rng.below(12)
        };
        match choice {
            0 | 1 => format!("{pad}Local{local} = {}\n", self.int(3)),
            2 => format!("{pad}Local{local}{}\n", self.rng.pick(&["++", "--"])),
            3 => format!("{pad}Local4 [({} & 0x03)] = {}\n", self.int(2), self.int(2)),
            4 => format!("{pad}Local5 [({} & 0x07)] = {}\n", self.int(2), self.int(2)),
            5 => format!(
                "{pad}Divide ({}, ({} | One), Local{}, Local{local})\n",
                self.int(2),
                self.int(2),
                self.rng.below(4)
            ),
            6 | 7 => {
                let (c, a) = (self.int(2), self.stmts(depth - 1, 3, indent + 4));
                let els = if self.rng.below(2) == 0 {
                    format!(
                        "{pad}Else\n{pad}{{\n{}{pad}}}\n",
                        self.stmts(depth - 1, 2, indent + 4)
                    )
                } else {
                    String::new()
                };
                format!("{pad}If ({c})\n{pad}{{\n{a}{pad}}}\n{els}")
            }
            8 | 9 if self.loops < 2 => self.while_stmt(depth, indent),
            10 if self.switches < 2 => self.switch_stmt(depth, indent),
            11 => self.named_store(&pad),
            _ => format!("{pad}Local{local} = {}\n", self.int(2)),
        }
    }

    /// Stores into the method's Name'd integer, 4-byte buffer and string: Store converts to the
    /// target's type (a buffer keeps its length), CopyObject replaces.
    fn named_store(&mut self, pad: &str) -> String {
        let v = self.int(2);
        match self.rng.below(6) {
            0 => format!("{pad}NINT = {v}\n"),
            1 => format!("{pad}NBUF = {v}\n"),
            2 => format!("{pad}NSTR = {v}\n"),
            3 => format!("{pad}NBUF = Concatenate ({v}, Local5)\n"),
            4 => format!("{pad}NINT = Local5\n"),
            _ => format!("{pad}CopyObject ({v}, NSTR)\n"),
        }
    }

    /// A While bounded by its own counter (Local6 outer, Local7 inner), with Break/Continue
    /// placed after the counter moves, so every generated loop terminates.
    fn while_stmt(&mut self, depth: u32, indent: usize) -> String {
        let pad = " ".repeat(indent);
        let ctr = if self.loops == 0 { 6 } else { 7 };
        self.loops += 1;
        let bound = 1 + self.rng.below(6);
        let body = self.stmts(depth - 1, 3, indent + 4);
        let exit = match self.rng.below(3) {
            0 => format!("{pad}    If ({}) {{ Break }}\n", self.int(2)),
            1 => format!("{pad}    If ({}) {{ Continue }}\n", self.int(2)),
            _ => String::new(),
        };
        self.loops -= 1;
        format!("{pad}Local{ctr} = Zero\n{pad}While ((Local{ctr} < {bound}))\n{pad}{{\n{pad}    Local{ctr}++\n{exit}{body}{pad}}}\n")
    }

    fn switch_stmt(&mut self, depth: u32, indent: usize) -> String {
        let pad = " ".repeat(indent);
        self.switches += 1;
        let sel = self.int(2);
        let a = self.stmts(depth - 1, 2, indent + 8);
        let b = self.stmts(depth - 1, 2, indent + 8);
        let c = self.stmts(depth - 1, 2, indent + 8);
        self.switches -= 1;
        format!(
            "{pad}Switch (({sel} & 0x03))\n{pad}{{\n{pad}    Case (Zero)\n{pad}    {{\n{a}{pad}    }}\n{pad}    Case (Package () {{ One, 0x02 }})\n{pad}    {{\n{b}{pad}    }}\n{pad}    Default\n{pad}    {{\n{c}{pad}    }}\n{pad}}}\n"
        )
    }

    fn ret(&mut self) -> String {
        match self.rng.below(8) {
            0 => "Local4".into(),
            1 => self.rng.pick(&["Local5", "NBUF", "NSTR"]).to_string(),
            2 => "Concatenate (ToBuffer (Local0), Local5)".into(),
            3 => format!("Concatenate (STR0, {})", self.int(1)),
            _ => self.int(3),
        }
    }

    fn program(&mut self, i: usize) -> String {
        let body = self.stmts(3, 6, 8);
        let ret = self.ret();
        let ser = if self.rng.below(3) == 0 {
            "Serialized"
        } else {
            "NotSerialized"
        };
        format!(
            "    Method (G{i:03}, 1, {ser})\n    {{\n        Local0 = Arg0\n        Local1 = (Arg0 ^ 0x5A5A)\n        Local2 = One\n        Local3 = {}\n        Local4 = Package (4) {{ 0x10, 0x20, 0x30, 0x40 }}\n        Local5 = Buffer (8) {{ 1, 2, 3, 4, 5, 6, 7, 8 }}\n        Name (NINT, 0x05)\n        Name (NBUF, Buffer (4) {{ 0xAA, 0xBB, 0xCC, 0xDD }})\n        Name (NSTR, \"tag\")\n{body}        Return ({ret})\n    }}\n",
            self.rng.pick(&CONSTS)
        )
    }
}

fn generate() -> (String, Vec<(String, Option<u64>)>) {
    let mut g = Gen {
        rng: Rng(SEED),
        loops: 0,
        switches: 0,
    };
    let mut asl =
        format!("DefinitionBlock (\"\", \"DSDT\", 2, \"TPHT\", \"GENERATD\", 1)\n{{\n{PRELUDE}");
    let mut calls = Vec::new();
    for i in 0..PROGRAMS {
        asl += &g.program(i);
        for _ in 0..2 {
            let arg = *g.rng.pick(&ARGS);
            calls.push((format!("G{i:03}"), Some(arg)));
        }
    }
    asl += "}\n";
    (asl, calls)
}

fn kind(o: &Outcome) -> &'static str {
    match o {
        Outcome::Value(Printed::Integer(_)) => "integer",
        Outcome::Value(Printed::String(_)) => "string",
        Outcome::Value(Printed::Buffer(_)) => "buffer",
        Outcome::Value(Printed::Package(_)) => "package",
        Outcome::Value(_) => "other",
        Outcome::Failed(_) => "failed",
        Outcome::Nothing => "nothing",
    }
}

#[test]
fn generated_programs_match_acpiexec() {
    require("iasl");
    require("acpiexec");
    let dir = scratch();
    let (asl, calls) = generate();
    let table = compile(dir.path(), "generated", &asl);
    // DUMP_GENERATED=FILE keeps the generated ASL for reading a mismatch.
    if let Some(p) = std::env::var_os("DUMP_GENERATED") {
        std::fs::write(p, &asl).expect("write DUMP_GENERATED");
    }
    let files = write_tables(dir.path(), &[("generated", &table)]);
    let theirs: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = calls
            .chunks(CALLS_PER_PROCESS)
            .map(|c| s.spawn(|| acpiexec_args(&files, c)))
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("acpiexec thread"))
            .collect()
    });
    let mut aml = Aml::load(&[&table]).expect("load generated table");
    assert_eq!(aml.report().skipped, vec![]);
    let mut failures = Vec::new();
    for ((m, arg), want) in calls.iter().zip(&theirs) {
        let args: Vec<Value> = arg.iter().map(|a| Value::Integer(*a)).collect();
        let got = ours(aml.evaluate(&format!("\\{m}"), &args));
        if !same(&got, want) {
            failures.push(format!("{m}({arg:?}): acpiexec {want:?}, ours {got:?}"));
        }
    }
    let failed = theirs
        .iter()
        .filter(|o| matches!(o, Outcome::Failed(_)))
        .count();
    assert!(
        failed * 10 < calls.len(),
        "{failed} of {} calls failed in acpiexec: generator too error-prone",
        calls.len()
    );
    let kinds: std::collections::BTreeSet<&str> = theirs.iter().map(kind).collect();
    assert!(
        kinds.len() >= 4,
        "generated results lack variety: {kinds:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        calls.len(),
        failures.join("\n")
    );
}
