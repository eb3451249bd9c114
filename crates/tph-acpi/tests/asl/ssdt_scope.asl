// Style: the bridge lives in the DSDT; the _DSM is added by an SSDT (below, in
// ssdt_scope.ssdt.asl) through Scope() and External references to DSDT helpers.
DefinitionBlock ("", "DSDT", 2, "TPHT", "SPLIT", 1)
{
    Scope (\_SB)
    {
        Name (BASE, 0x50)
        Method (XTAG, 1, NotSerialized) { Return ((Arg0 + BASE) & 0xFF) }
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))
        }
    }
}
