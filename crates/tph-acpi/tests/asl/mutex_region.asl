// Style: a Serialized _DSM guarded by a Mutex, operation regions and fields declared next to
// it (not touched on the TPH path), Name'd state updated across calls, ToHexString for a
// debug string, and Processor objects as real firmware still declares them.
DefinitionBlock ("", "DSDT", 2, "TPHT", "MUTEX", 1)
{
    Scope (\_PR)
    {
        Processor (CPU0, 0x00, 0x00000410, 0x06) {}
        Processor (CPU1, 0x01, 0x00000410, 0x06) {}
    }
    Scope (\_SB)
    {
        OperationRegion (GNVS, SystemMemory, 0x7FFF0000, 0x100)
        Field (GNVS, AnyAcc, NoLock, Preserve)
        {
            OSYS, 16,
            Offset (0x10),
            TPHE, 8,
        }
        Mutex (TPHM, 0)
        Name (CNT0, Zero)
        Name (DBGS, "")
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Name (_CID, EisaId ("PNP0A03"))
            Method (_DSM, 4, Serialized)
            {
                Acquire (TPHM, 0xFFFF)
                CNT0++
                If (Arg0 == ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d"))
                {
                    If (Arg2 == Zero)
                    {
                        Release (TPHM)
                        Return (Buffer () { 0x01, 0x80 })
                    }
                    Local0 = DerefOf (Arg3 [One])
                    DBGS = ToHexString (Local0)
                    Local1 = (Local0 << 8) | (Local0 << 16) | 0x03
                    Release (TPHM)
                    Return (ToBuffer (Local1))
                }
                Release (TPHM)
                Return (Buffer () { 0 })
            }
        }
    }
}
