/*
 * An SSDT that adds the TPH steering-tag _DSM (PCI Firmware Specification ECN "_DSM to Query
 * Cache Locality TPH Features": UUID E5C937D0-3553-4D7A-9117-EA4D19C3434D, revision 7,
 * function 0xF) to QEMU q35's host bridge \_SB.PCI0, which has none. Passed to the guest with
 * `-acpitable file=...`. The q35 DSDT is revision 1: integers are 32 bits wide in the whole
 * namespace, so the 8-byte result is built from two DWORD fields.
 *
 * For processor UID u: VM tag 0x40+u (extended 0x100+u), PM tag 0xE0-u (extended 0xF000+u),
 * all valid, PH ignore clear. TPHQ(u) calls the _DSM as the kernel does, for acpiexec.
 */
DefinitionBlock ("", "SSDT", 1, "TPHPRJ", "TPHDSM", 1)
{
    External (\_SB.PCI0, DeviceObj)

    Scope (\_SB.PCI0)
    {
        Method (_DSM, 4, Serialized)
        {
            If ((Arg0 != ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d")) || (Arg1 < 7))
            {
                Return (Buffer (One) { 0x00 })
            }
            If (Arg2 == Zero)
            {
                /* Functions 0 and 15. */
                Return (Buffer (2) { 0x01, 0x80 })
            }
            If (Arg2 != 0x0F)
            {
                Return (Buffer (One) { 0x00 })
            }
            Local0 = DerefOf (Arg3 [One])
            Name (RES, Buffer (8) {})
            CreateDWordField (RES, Zero, VMHF)
            CreateDWordField (RES, 4, PMHF)
            VMHF = (0x03 | ((0x40 + Local0) << 8) | ((0x0100 + Local0) << 16))
            PMHF = (0x03 | ((0xE0 - Local0) << 8) | ((0xF000 + Local0) << 16))
            Return (RES)
        }
    }

    Method (TPHQ, 1, Serialized)
    {
        Local0 = Package (3) { Zero, Zero, Zero }
        Local0 [One] = Arg0
        Return (\_SB.PCI0._DSM (ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d"), 7, 0x0F, Local0))
    }
}
