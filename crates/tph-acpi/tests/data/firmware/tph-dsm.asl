/*
 * Example firmware for the emulated host: a PCI host bridge whose _DSM (PCI Firmware
 * Specification UUID E5C937D0-3553-4D7A-9117-EA4D19C3434D) implements the TPH steering-tag
 * query, revision 7, function 0xF, written the way vendor firmware usually is: a Switch on the
 * function index, a per-processor tag table indexed by the ACPI processor UID, and the result
 * assembled in a named buffer through CreateDWordField.
 *
 * Use: tphctl session --emulated 01:00.0 --firmware tph-dsm.asl (iasl compiles it at start).
 *
 * Result layout (docs/spec/firmware-dsm.md): per memory type a 32-bit half, bit 0 8-bit tag
 * valid, bit 1 16-bit tag valid, bit 2 processing hints ignored, bits 15:8 the 8-bit tag, bits
 * 31:16 the 16-bit tag; volatile memory (VM) in bytes 0-3, persistent memory (PM) in bytes 4-7.
 */
DefinitionBlock ("", "DSDT", 2, "TPHCTL", "TPHDSM", 0x00000001)
{
    Scope (\_SB)
    {
        /*
         * Steering tags per processor UID: { VM flags, VM 8-bit tag, VM 16-bit tag,
         * PM flags, PM 8-bit tag, PM 16-bit tag }. Flags are the low bits of each half.
         * UIDs 0-3 sit on socket 0 (tags 0x2x), UIDs 4-7 on socket 1 (tags 0x6x).
         */
        Name (STTB, Package (0x08)
        {
            Package (0x06) { 0x03, 0x20, 0x1020, 0x03, 0xA0, 0x9020 },
            Package (0x06) { 0x03, 0x21, 0x1021, 0x03, 0xA1, 0x9021 },
            Package (0x06) { 0x03, 0x22, 0x1022, 0x01, 0xA2, 0x0000 },  // PM: 8-bit tag only
            Package (0x06) { 0x07, 0x23, 0x1023, 0x03, 0xA3, 0x9023 },  // VM: hints ignored
            Package (0x06) { 0x03, 0x64, 0x2064, 0x03, 0xE4, 0xA064 },
            Package (0x06) { 0x03, 0x65, 0x2065, 0x03, 0xE5, 0xA065 },
            Package (0x06) { 0x02, 0x00, 0x2066, 0x03, 0xE6, 0xA066 },  // VM: 16-bit tag only
            Package (0x06) { 0x03, 0x67, 0x2067, 0x00, 0x00, 0x0000 }   // PM: no tag
        })

        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))  // PCI Express root bridge
            Name (_CID, EisaId ("PNP0A03"))  // PCI root bridge
            Name (_UID, Zero)
            Name (_SEG, Zero)
            Name (_BBN, Zero)

            /* One half of the result: flags | 8-bit tag << 8 | 16-bit tag << 16. */
            Method (HALF, 3, NotSerialized)
            {
                Return ((Arg0 & 0x07) | ((Arg1 & 0xFF) << 0x08) | ((Arg2 & 0xFFFF) << 0x10))
            }

            /* Function 0xF: Arg0 is the _DSM's Arg3, Package { feature id, UID, reserved }. */
            Method (TPST, 1, Serialized)
            {
                Name (RBUF, Buffer (0x08) { 0x00 })
                CreateDWordField (RBUF, 0x00, VMHF)
                CreateDWordField (RBUF, 0x04, PMHF)
                Local0 = DerefOf (Arg0 [Zero])  // feature: 0 is the processor cache
                Local1 = DerefOf (Arg0 [One])   // ACPI processor UID
                If ((Local0 != Zero) || (Local1 >= SizeOf (STTB)))
                {
                    Return (RBUF)  // no valid tag
                }

                Local2 = DerefOf (STTB [Local1])
                VMHF = HALF (DerefOf (Local2 [0x00]), DerefOf (Local2 [0x01]), DerefOf (Local2 [0x02]))
                PMHF = HALF (DerefOf (Local2 [0x03]), DerefOf (Local2 [0x04]), DerefOf (Local2 [0x05]))
                Return (RBUF)
            }

            Method (_DSM, 4, Serialized)
            {
                If ((Arg0 == ToUUID ("e5c937d0-3553-4d7a-9117-ea4d19c3434d")))
                {
                    Switch (ToInteger (Arg2))
                    {
                        Case (Zero)
                        {
                            If ((Arg1 >= 0x07))
                            {
                                Return (Buffer (0x02) { 0x01, 0x80 })  // functions 0 and 0xF
                            }

                            Return (Buffer (One) { 0x00 })
                        }
                        Case (0x0F)
                        {
                            If ((Arg1 >= 0x07))
                            {
                                Return (TPST (Arg3))
                            }
                        }

                    }
                }

                Return (Buffer (One) { 0x00 })
            }
        }
    }
}
