// Style: If-chain on the UUID, a Name'd result buffer carved up with CreateDWordField /
// CreateWordField / CreateByteField, fields written one by one (as many OEM DSDTs do).
DefinitionBlock ("", "DSDT", 2, "TPHT", "CRFIELD", 1)
{
    Device (\_SB.PCI0)
    {
        Name (_HID, EisaId ("PNP0A08"))
        Method (_DSM, 4, Serialized)
        {
            Name (RBUF, Buffer (8) {})
            CreateDWordField (RBUF, 0, VMHF)
            CreateByteField (RBUF, 1, VMST)
            CreateWordField (RBUF, 2, VMXS)
            CreateDWordField (RBUF, 4, PMHF)
            CreateBitField (RBUF, 32, PMVL)
            If (Arg0 != ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d")) { Return (Buffer (1) { 0 }) }
            If (Arg1 < 7) { Return (Buffer (1) { 0x01 }) }
            If (Arg2 == Zero) { Return (Buffer (2) { 0x01, 0x80 }) }
            If (Arg2 != 0x0F) { Return (Buffer (1) { 0 }) }
            If (DerefOf (Arg3 [Zero]) != Zero) { Return (Buffer (8) { 0 }) }
            Local0 = DerefOf (Arg3 [One])
            VMHF = 0x03
            VMST = (Local0 * 3) & 0xFF
            VMXS = 0x1000 + Local0
            If ((Local0 & 1) == Zero)
            {
                PMHF = 0x0004 | (Local0 << 8)
                PMVL = One
            }
            Return (RBUF)
        }
    }
}
