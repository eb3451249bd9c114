// Style: an old DSDT (revision 1: 32-bit integers). The 64-bit result must be assembled as a
// buffer, since integers are only 32 bits wide here.
DefinitionBlock ("", "DSDT", 1, "TPHT", "REV1", 1)
{
    Device (\_SB.PCI0)
    {
        Name (_HID, EisaId ("PNP0A08"))
        Method (_DSM, 4, NotSerialized)
        {
            If (Arg0 == ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d"))
            {
                If (Arg2 == Zero) { Return (Buffer () { 0x01, 0x80 }) }
                Local0 = DerefOf (Arg3 [One])
                Local1 = 0x03 | (Local0 << 8) | (0xFFFF << 16)
                Local2 = Ones
                Return (Concatenate (Local1, Local2))
            }
            Return (Buffer () { 0 })
        }
    }
}
