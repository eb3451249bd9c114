// Style: the result built with Concatenate from smaller buffers and integers, a VarPackage
// sized at run time, Mid/SizeOf, and a 12-byte result (longer than 8 is allowed).
DefinitionBlock ("", "DSDT", 2, "TPHT", "CONCAT", 1)
{
    Device (\_SB.PCI0)
    {
        Name (_HID, EisaId ("PNP0A03"))
        Method (VMHF, 1, NotSerialized)
        {
            Local0 = Buffer (4) { 0x01, 0x00, 0x00, 0x00 }
            Local0 [One] = Arg0
            Return (Local0)
        }
        Method (_DSM, 4, Serialized)
        {
            Name (HLP, Package (Arg1) {})
            If (Arg0 != ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d")) { Return (Buffer (1) { 0 }) }
            If (Arg2 == Zero)
            {
                If (SizeOf (HLP) == 7) { Return (Concatenate (Buffer (1) { 0x01 }, Buffer (1) { 0x80 })) }
                Return (Buffer (1) { 0x01 })
            }
            Local1 = DerefOf (Arg3 [One])
            Local2 = Concatenate (VMHF (Local1 + 0x30), VMHF (Local1 + 0x60))
            Local2 = Concatenate (Local2, Buffer (4) { 0xEE, 0xEE, 0xEE, 0xEE })
            If (Local1 > 12) { Return (Mid (Local2, Zero, 6)) }
            Return (Local2)
        }
    }
}
