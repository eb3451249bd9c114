// Style: tags computed by a While loop with Break/Continue, Increment/Decrement, Divide with
// remainder, FindSetLeftBit/FindSetRightBit, and a Package built element by element.
DefinitionBlock ("", "DSDT", 2, "TPHT", "WHILE", 1)
{
    Device (\_SB.PCI0)
    {
        Name (_HID, EisaId ("PNP0A08"))
        Method (MIX, 1, Serialized)
        {
            Name (ACC, Package (4) { 0, 0, 0, 0 })
            Local0 = Zero
            Local1 = Arg0
            While (One)
            {
                Local0++
                If (Local0 > 6) { Break }
                If ((Local0 % 2) == Zero) { Continue }
                Divide (Local1 + Local0, 3, Local2, Local3)
                ACC [Local2] = DerefOf (ACC [Local2]) + Local3
            }
            Local4 = FindSetLeftBit (Arg0) + (FindSetRightBit (Arg0) << 4)
            Return ((DerefOf (ACC [Zero]) + DerefOf (ACC [One]) + DerefOf (ACC [2]) + Local4) & 0xFF)
        }
        Method (_DSM, 4, NotSerialized)
        {
            If (Arg0 == ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d"))
            {
                If (Arg2 == Zero) { Return (Buffer () { 0x01, 0x80 }) }
                Local0 = MIX (DerefOf (Arg3 [One]))
                Local1 = Local0
                Local1--
                Return (ToBuffer (0x0000000100000001 | (Local0 << 8) | (Local1 << 40)))
            }
            Return (Buffer () { 0 })
        }
    }
}
