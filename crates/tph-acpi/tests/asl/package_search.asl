// Style: a table of {UID, VM tag, PM tag} packages searched with a While loop (and Match
// on a UID list), Break on hit, Continue past disabled rows.
DefinitionBlock ("", "DSDT", 2, "TPHT", "PKGSRCH", 1)
{
    Scope (\_SB)
    {
        Name (STTB, Package ()
        {
            Package () { 0x00, 0x01, 0x81, 1 },
            Package () { 0x01, 0x02, 0x82, 1 },
            Package () { 0x02, 0x03, 0x83, 0 },
            Package () { 0x03, 0x04, 0x84, 1 },
            Package () { 0x08, 0x09, 0x89, 1 },
            Package () { 0x20, 0x0A, 0x8A, 1 },
        })
        Name (UIDS, Package () { 0x00, 0x01, 0x02, 0x03, 0x08, 0x20 })
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Name (_CID, Package () { EisaId ("PNP0A03") })
            Method (LOOK, 1, Serialized)
            {
                Local0 = Zero
                Local1 = SizeOf (STTB)
                While (Local0 < Local1)
                {
                    Local2 = DerefOf (STTB [Local0])
                    Local0++
                    If (DerefOf (Local2 [3]) == Zero) { Continue }
                    If (DerefOf (Local2 [Zero]) == Arg0) { Break }
                    Local2 = Zero
                }
                If (Local0 >= Local1) { If (ObjectType (Local2) != 4) { Return (Zero) } }
                If (ObjectType (Local2) != 4) { Return (Zero) }
                Return (0x0000000300000003 | (DerefOf (Local2 [One]) << 8) | (DerefOf (Local2 [2]) << 40))
            }
            Method (_DSM, 4, Serialized)
            {
                If (Arg0 == ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d"))
                {
                    If (Arg2 == Zero) { Return (Buffer (0x02) { 0x01, 0x80 }) }
                    If (Arg2 == 0x0F)
                    {
                        Local0 = Match (UIDS, MEQ, DerefOf (Arg3 [One]), MTR, Zero, Zero)
                        If (Local0 == Ones) { Return (Buffer (4) { 0, 0, 0, 0 }) }
                        Return (ToBuffer (LOOK (DerefOf (Arg3 [One]))))
                    }
                }
                Return (Buffer (One) { 0 })
            }
        }
    }
}
