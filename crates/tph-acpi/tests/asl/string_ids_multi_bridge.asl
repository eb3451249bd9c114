// tph-bridge: \_SB.PCI1
// Style: several host bridges; the first has no _DSM, the second answers, a third (string
// _HID, _CID package) advertises the function at revision 7 only for even segments; a non-
// bridge device has a _DSM too. Integer results (not buffers) for some UIDs.
DefinitionBlock ("", "DSDT", 2, "TPHT", "MULTI", 1)
{
    Scope (\_SB)
    {
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Name (_SEG, Zero)
        }
        Device (PCI1)
        {
            Name (_HID, "PNP0A08")
            Name (_CID, "PNP0A03")
            Name (_SEG, One)
            Method (_DSM, 4, NotSerialized)
            {
                If (Arg0 == ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d"))
                {
                    If (Arg2 == Zero) { Return (Buffer () { 0xFF, 0xFF }) }
                    Local0 = DerefOf (Arg3 [One])
                    If (Local0 == 5) { Return (0x1234) }
                    If (Local0 == 6) { Return ("not a buffer") }
                    Local1 = Buffer (8) { 0x01 }
                    Local1 [One] = Local0
                    Return (Local1)
                }
                Return (Buffer () { 0 })
            }
        }
        Device (PCI2)
        {
            Name (_HID, "ACPI0016")
            Name (_CID, Package () { "ACPI0016", EisaId ("PNP0A08") })
            Method (_DSM, 4, NotSerialized) { Return (Buffer () { 0 }) }
        }
        Device (NOTB)
        {
            Name (_HID, "TPHX0001")
            Method (_DSM, 4, NotSerialized) { Return (Buffer () { 0xFF, 0xFF }) }
        }
    }
}
