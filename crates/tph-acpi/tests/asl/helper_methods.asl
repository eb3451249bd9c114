// Style: the _DSM delegates to helper methods (one per function), with nested calls,
// Serialized helpers, arithmetic on the UID, and a QWord assembled from two halves.
DefinitionBlock ("", "DSDT", 2, "TPHT", "HELPERS", 1)
{
    Scope (\_SB)
    {
        Method (STVM, 1, NotSerialized) { Return (((Arg0 % 24) + 0x40) & 0xFF) }
        Method (STPM, 1, Serialized) { Return (STVM (Arg0) ^ 0xA5) }
        Method (HALF, 2, NotSerialized)
        {
            // Arg0: 8-bit tag, Arg1: 16-bit tag -> valid bits 0 and 1
            Return (0x03 | (Arg0 << 8) | (Arg1 << 16))
        }
        Method (QTAG, 1, Serialized)
        {
            Local0 = HALF (STVM (Arg0), (Arg0 * 0x101) & 0xFFFF)
            Local1 = HALF (STPM (Arg0), 0xF000 | Arg0)
            Return (ToBuffer (Local0 | (Local1 << 32)))
        }
        Method (FUN0, 1, NotSerialized)
        {
            If (Arg0 >= 7) { Return (Buffer () { 0x01, 0x80 }) }
            Return (Buffer () { 0x01 })
        }
        Device (PCI0)
        {
            Name (_HID, "PNP0A08")
            Method (_DSM, 4, NotSerialized)
            {
                If (Arg0 == ToUUID ("E5C937D0-3553-4D7A-9117-EA4D19C3434D"))
                {
                    If (Arg2 == Zero) { Return (FUN0 (Arg1)) }
                    If ((Arg2 == 0x0F) && (Arg1 >= 7)) { Return (QTAG (DerefOf (Arg3 [One]))) }
                }
                Return (Buffer (One) { 0x00 })
            }
        }
    }
}
