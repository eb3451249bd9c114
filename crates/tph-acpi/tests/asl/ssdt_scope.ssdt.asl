DefinitionBlock ("", "SSDT", 2, "TPHT", "SPLITDSM", 1)
{
    External (\_SB.PCI0, DeviceObj)
    External (\_SB.XTAG, MethodObj)
    External (\_SB.BASE, IntObj)
    Scope (\_SB.PCI0)
    {
        Method (_DSM, 4, NotSerialized)
        {
            If (Arg0 == ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d"))
            {
                If (Arg2 == Zero) { Return (Buffer () { 0x01, 0x80 }) }
                Local0 = \_SB.XTAG (DerefOf (Arg3 [One]))
                Return (ToBuffer ((Local0 << 8) | 0x01 | (\_SB.BASE << 40) | (1 << 32)))
            }
            Return (Buffer () { 0 })
        }
    }
}
