// Style: state set up at initialization: \_SB._INI picks OSYS from \_OSI (guarded by
// CondRefOf), device _INI methods adjust a tag base, a device whose _STA says absent must not
// run its _INI, and the _DSM reads the result.
DefinitionBlock ("", "DSDT", 2, "TPHT", "INITOSI", 1)
{
    Name (OSYS, Zero)
    Scope (\_SB)
    {
        Name (TBAS, 0x10)
        Method (_INI, 0, NotSerialized)
        {
            OSYS = 0x07D0
            If (CondRefOf (\_OSI))
            {
                If (\_OSI ("Windows 2009")) { OSYS = 0x07D9 }
                If (\_OSI ("Windows 2015")) { OSYS = 0x07DF }
                If (\_OSI ("Linux")) { OSYS = 0x03E8 }
            }
        }
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Name (INIC, Zero)
            Method (_STA, 0, NotSerialized) { Return (0x0F) }
            Method (_INI, 0, NotSerialized)
            {
                INIC++
                TBAS = (TBAS + (OSYS & 0xFF))
            }
            Device (RP01)
            {
                Name (_ADR, 0x001C0000)
                Method (_INI, 0, NotSerialized) { TBAS |= 0x0100 }
            }
            Method (_DSM, 4, Serialized)
            {
                If (Arg0 == ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d"))
                {
                    If (Arg2 == Zero) { Return (Buffer () { 0x01, 0x80 }) }
                    Local0 = (TBAS + DerefOf (Arg3 [One]))
                    Return (ToBuffer (0x03 | ((Local0 & 0xFF) << 8) | (Local0 << 16) | (INIC << 40) | (1 << 32)))
                }
                Return (Buffer () { 0 })
            }
        }
        Device (ABSN)
        {
            Name (_HID, "TPHX0002")
            Method (_STA, 0, NotSerialized) { Return (Zero) }
            Method (_INI, 0, NotSerialized) { TBAS = 0xDEAD }
        }
    }
}
