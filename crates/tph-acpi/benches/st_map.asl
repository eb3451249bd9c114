// Benchmark firmware: the helper-method style _DSM of tests/asl/helper_methods.asl, plus
// MAP_ (the tag map for UIDs 0..255 computed by an in-AML loop calling the _DSM, folded to
// one integer so printing does not dominate) and NOP_ (the same loop without the _DSM calls,
// to subtract loop and process overhead).
DefinitionBlock ("", "DSDT", 2, "TPHT", "BENCH", 1)
{
    Scope (\_SB)
    {
        Method (STVM, 1, NotSerialized) { Return (((Arg0 % 24) + 0x40) & 0xFF) }
        Method (STPM, 1, Serialized) { Return (STVM (Arg0) ^ 0xA5) }
        Method (HALF, 2, NotSerialized) { Return (0x03 | (Arg0 << 8) | (Arg1 << 16)) }
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
            Name (_HID, EisaId ("PNP0A08"))
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
    Method (MAP_, 0, NotSerialized)
    {
        Local0 = Zero
        Local2 = Zero
        While (Local0 < 0x0100)
        {
            Local1 = Package (3) { Zero, Zero, Zero }
            Local1 [One] = Local0
            Local3 = \_SB.PCI0._DSM (ToUUID ("E5C937D0-3553-4D7A-9117-EA4D19C3434D"), 7, 0x0F, Local1)
            Local2 += ToInteger (Local3)
            Local0++
        }
        Return (Local2)
    }
    Method (NOP_, 0, NotSerialized)
    {
        Local0 = Zero
        Local2 = Zero
        While (Local0 < 0x0100)
        {
            Local1 = Package (3) { Zero, Zero, Zero }
            Local1 [One] = Local0
            Local2 += Local0
            Local0++
        }
        Return (Local2)
    }
}
