// Style: a buggy _DSM: out-of-range Index for large UIDs, divide by zero for UID 3,
// a short (4-byte) buffer for UID 4, an uninitialized local for UID 7.
DefinitionBlock ("", "DSDT", 2, "TPHT", "ERRORS", 1)
{
    Device (\_SB.PCI0)
    {
        Name (_HID, EisaId ("PNP0A08"))
        Name (TAGS, Buffer () { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 })
        Method (_DSM, 4, Serialized)
        {
            If (Arg0 != ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d")) { Return (Buffer (1) { 0 }) }
            If (Arg2 == Zero) { Return (Buffer (2) { 0x01, 0x80 }) }
            Local0 = DerefOf (Arg3 [One])
            If (Local0 == 3) { Local1 = Zero  Local2 = 10 / Local1  Return (Local2) }
            If (Local0 == 4) { Return (Buffer (4) { 1, 2, 3, 4 }) }
            If (Local0 == 0x63) { Local5 = One }
            If (Local0 == 7) { Return (ToBuffer (Local5)) }
            Local3 = DerefOf (TAGS [Local0])
            Return (ToBuffer (0x01 | (Local3 << 8)))
        }
    }
}
