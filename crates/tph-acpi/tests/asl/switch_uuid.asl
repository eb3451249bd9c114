// Style: Switch on the UUID buffer, then on the function index; tags from a Name'd package
// indexed by the processor UID (out-of-range UIDs fall back to "no tag").
DefinitionBlock ("", "DSDT", 2, "TPHT", "SWUUID", 1)
{
    Scope (\_SB)
    {
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Name (_CID, EisaId ("PNP0A03"))
            Name (_UID, Zero)
            Name (VMST, Package () { 0x10, 0x11, 0x12, 0x13, 0x20, 0x21, 0x22, 0x23 })
            Method (_DSM, 4, Serialized)
            {
                Switch (ToBuffer (Arg0))
                {
                    Case (ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d"))
                    {
                        Switch (ToInteger (Arg2))
                        {
                            Case (Zero)
                            {
                                If (Arg1 >= 7) { Return (Buffer (2) { 0x21, 0x80 }) }
                                Return (Buffer (1) { 0x21 })
                            }
                            Case (0x0F)
                            {
                                Local0 = DerefOf (Arg3 [One])
                                If (Local0 >= SizeOf (VMST)) { Return (Buffer (8) { 0 }) }
                                Local1 = DerefOf (VMST [Local0])
                                Local2 = (One | (Local1 << 8))
                                Local2 |= ((Local1 | 0x80) << 40) | (One << 32)
                                Return (ToBuffer (Local2))
                            }
                            Default { Return (Buffer (1) { 0 }) }
                        }
                    }
                    Default { Return (Buffer (1) { 0 }) }
                }
            }
        }
    }
}
