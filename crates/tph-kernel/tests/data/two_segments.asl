/*
 * Firmware of a two-segment host for the kernel model's firmware-lookup tests
 * (tests/firmware_lookup.rs). Compiled to two_segments.aml with `iasl two_segments.asl`.
 *
 * PC00  segment 0, root bus 0x00: function 0 bitmap as an Integer (0x8001);
 *       VM tag = 0x10 + UID.
 * PC40  segment 0, root bus 0x40: function 0 bitmap has bit 15 but not bit 0 (a Buffer);
 *       would answer VM tag 0x7F.
 * PC80  segment 1, root bus 0x80 from the bus range in _CRS (no _BBN): function 0 bitmap
 *       as a Buffer {0x01, 0x80}; VM tag = 0x40 + UID.
 * PCC0  segment 2, root bus 0xC0: advertises the query on its first function-0 call only;
 *       VM tag = 0x60 + UID.
 * Every answer is valid for the VM 8-bit tag only.
 */
DefinitionBlock ("", "DSDT", 2, "TPHT", "TWOSEG", 1)
{
    Scope (\_SB)
    {
        Method (ANSW, 1, NotSerialized)
        {
            Local0 = Buffer (8) { 0x01 }
            Local0 [One] = Arg0
            Return (Local0)
        }

        Device (PC00)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Name (_SEG, Zero)
            Name (_BBN, Zero)
            Method (_DSM, 4, NotSerialized)
            {
                If (Arg0 != ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d")) { Return (Buffer () { 0 }) }
                If (Arg2 == Zero) { Return (0x8001) }
                Return (ANSW (0x10 + DerefOf (Arg3 [One])))
            }
        }

        Device (PC40)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Name (_SEG, Zero)
            Name (_BBN, 0x40)
            Method (_DSM, 4, NotSerialized)
            {
                If (Arg2 == Zero) { Return (Buffer () { 0x00, 0x80 }) }
                Return (ANSW (0x7F))
            }
        }

        Device (PC80)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Name (_SEG, One)
            Name (_CRS, ResourceTemplate ()
            {
                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
                    0x0000, 0x0080, 0x00FF, 0x0000, 0x0080)
            })
            Method (_DSM, 4, NotSerialized)
            {
                If (Arg0 != ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d")) { Return (Buffer () { 0 }) }
                If (Arg2 == Zero) { Return (Buffer () { 0x01, 0x80 }) }
                Return (ANSW (0x40 + DerefOf (Arg3 [One])))
            }
        }

        Device (PCC0)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Name (_SEG, 0x02)
            Name (_BBN, 0xC0)
            Name (CALL, Zero)
            Method (_DSM, 4, Serialized)
            {
                If (Arg2 == Zero)
                {
                    CALL++
                    If (CALL == One) { Return (0x8001) }
                    Return (Zero)
                }
                Return (ANSW (0x60 + DerefOf (Arg3 [One])))
            }
        }
    }
}
