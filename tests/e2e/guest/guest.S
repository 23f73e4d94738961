# guest.S - the end-to-end test guest: a multiboot (v1) kernel that keeps writing and
# checking its own memory while it is live-migrated, and reports on COM1.
#
# libvirt boots it with <os><kernel>guest.elf</kernel><cmdline>dirty=N</cmdline> (QEMU
# -kernel), so it needs no disk, firmware image or network. 32-bit protected mode, no
# paging, PIT at 100 Hz, `hlt` between ticks (a busy guest would eat a core of the
# 2-core test machine and make timings noisy).
#
# Memory test. The region [2 MiB, top of RAM) is walked page by page, N pages
# (4 KiB) per tick, round robin; one walk over the whole region is a pass. Every visited
# page is stamped with the pass number it is written in:
#     +0 address   +4 pass   +8 ~address   +12 tick   +512*k (k=1..7) address ^ pass ^ SALT
# From pass 1 on, each page is checked before it is rewritten: it must carry its own
# address and the PREVIOUS pass number in every stamp. A page that still holds an older
# pass (a dirty page the migration forgot to resend), a zeroed page or a page of another
# address counts as an error (E) and its address is kept (X). Stamps every 512 bytes
# catch a page copied only in part.
#
# Migration under QEMU 7.2 TCG: the guest flushes QEMU's TLB at every tick and before
# every stamp (FLUSH_TLB below), because older QEMU stops tracking stores through TLB
# entries that survive a dirty-bitmap sync. Without this its own state page arrived
# stale after long pre-copies (docs/e2e.md, "QEMU 7.2 TCG loses dirty pages").
#
# Self-test: with "lose" on the command line the guest skips the stamp of the first page
# of the region in pass 1, as a migration that dropped a dirty page would; in pass 2 it
# must then report E=1 X=00200000 (proves the checker finds what it is there for).
#
# Output on COM1 (a `file` serial chardev):
#     BOOT B=<boot id hex> M=<end of region hex> D=<pages per tick>      once at start
#     T=<ticks> P=<passes> E=<errors> D=<pages per tick> B=<boot id> X=<last bad hex>
# the T line once per second (every 100 ticks), numbers decimal. The boot id mixes the
# RTC time and the TSC at boot: it stays the same across a live migration and changes
# on every (re)boot, so "same B, larger T, E=0" on the destination proves continuity.
#
# Build: as --32 -o guest.o guest.S && ld -m elf_i386 -T guest.ld -o guest.elf guest.o

        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0x00000003          # page-align modules, want memory info
        .set REGION_START, 0x00200000         # the kernel, its data and stack lie below
        .set PAGE, 4096
        .set SALT, 0x6d696772              # "migr"
        .set COM1, 0x3F8
        .set HZ, 100
        .set DEFAULT_DIRTY, 64             # 64 pages * 100 Hz = 25 MiB/s

# FLUSH_TLB (clobbers %eax): drop every TCG TLB entry. QEMU up to 8.2 does not re-arm
# TCG's dirty tracking of a page when a migration dirty-bitmap sync clears its bit
# (cpu_physical_memory_sync_dirty_bitmap's fast path skips tlb_reset_dirty_range_all;
# fixed in QEMU 9.0 by 03bfc2188f "physmem: Fix migration dirty bitmap coherency with
# TCG memory access"). A store through a TLB entry made while the page was dirty then
# never marks it dirty again, and the migration leaves the page stale on the
# destination (docs/e2e.md, "QEMU 7.2 TCG loses dirty pages"). A fresh entry is made
# by the next access and checks the bitmap. Without paging neither CR3 writes nor
# anything else the guest does flush QEMU's TLB; toggling CR4.PSE does.
        .macro FLUSH_TLB
        movl    %cr4, %eax
        xorl    $0x10, %eax
        movl    %eax, %cr4
        xorl    $0x10, %eax
        movl    %eax, %cr4
        .endm

        .section .multiboot, "a"
        .align 4
        .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

        .text
        .code32
        .globl _start
_start:
        cli
        lgdt    gdtr
        ljmp    $0x08, $1f
1:      movw    $0x10, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %fs
        movw    %ax, %gs
        movw    %ax, %ss
        movl    $stack_top, %esp
        movl    %ebx, %edx                 # the loader does not promise a zeroed .bss
        movl    $__bss_start, %edi
        movl    $__bss_end, %ecx
        subl    %edi, %ecx
        shrl    $2, %ecx
        xorl    %eax, %eax
        cld
        rep stosl
        movl    %edx, mbinfo

        call    read_meminfo
        call    read_cmdline
        call    make_boot_id
        call    setup_idt
        call    setup_pic_pit

        movl    $s_boot, %esi
        call    puts
        movl    boot_id, %eax
        call    puthex
        movl    $s_m, %esi
        call    puts
        movl    region_end, %eax
        call    puthex
        movl    $s_d, %esi
        call    puts
        movl    dirty, %eax
        call    putdec
        movl    $s_nl, %esi
        call    puts

        movl    $REGION_START, cursor
        sti

idle:   hlt
        movl    ticks, %eax
        cmpl    seen, %eax
        je      idle
        movl    %eax, seen
        movl    dirty, %ecx
        jecxz   2f
1:      call    visit_page
        loop    1b
2:      movl    seen, %eax
        xorl    %edx, %edx
        movl    $HZ, %ebx
        divl    %ebx
        testl   %edx, %edx
        jnz     idle
        call    report
        jmp     idle

# visit_page: check (from pass 1 on) and restamp the page at `cursor`, advance it.
visit_page:
        pushl   %ecx
        movl    cursor, %edi
        movl    pass, %ebx                 # pass being written now
        testl   %ebx, %ebx
        jz      3f
        leal    -1(%ebx), %edx             # pass the page was written in
        cmpl    %edi, 0(%edi)
        jne     bad
        cmpl    %edx, 4(%edi)
        jne     bad
        movl    8(%edi), %eax
        notl    %eax
        cmpl    %edi, %eax
        jne     bad
        movl    %edi, %eax
        xorl    %edx, %eax
        xorl    $SALT, %eax                # expected stamp
        movl    $512, %esi
1:      cmpl    %eax, (%edi,%esi)
        jne     bad
        addl    $512, %esi
        cmpl    $PAGE, %esi
        jb      1b
        jmp     3f
bad:    incl    errors
        movl    %edi, last_bad
3:      cmpl    $0, lose_one           # self-test: "forget" one write in pass 1
        je      6f
        cmpl    $1, %ebx
        jne     6f
        cmpl    $REGION_START, %edi
        je      7f
6:      movl    seen, %ecx
        FLUSH_TLB
        # the stamp: straight-line stores, one translation block after the flush (see
        # FLUSH_TLB), so a dirty-bitmap sync either sees the whole burst or none of it
        movl    %edi, %eax
        xorl    %ebx, %eax
        xorl    $SALT, %eax
        movl    %edi, 0(%edi)
        movl    %ebx, 4(%edi)
        movl    %edi, %edx
        notl    %edx
        movl    %edx, 8(%edi)
        movl    %ecx, 12(%edi)
        movl    %eax, 512(%edi)
        movl    %eax, 1024(%edi)
        movl    %eax, 1536(%edi)
        movl    %eax, 2048(%edi)
        movl    %eax, 2560(%edi)
        movl    %eax, 3072(%edi)
        movl    %eax, 3584(%edi)
7:      addl    $PAGE, %edi
        cmpl    region_end, %edi
        jb      5f
        movl    $REGION_START, %edi
        incl    pass
5:      movl    %edi, cursor
        popl    %ecx
        ret

report:
        movl    $s_t, %esi
        call    puts
        movl    seen, %eax
        call    putdec
        movl    $s_p, %esi
        call    puts
        movl    pass, %eax
        call    putdec
        movl    $s_e, %esi
        call    puts
        movl    errors, %eax
        call    putdec
        movl    $s_d, %esi
        call    puts
        movl    dirty, %eax
        call    putdec
        movl    $s_b, %esi
        call    puts
        movl    boot_id, %eax
        call    puthex
        movl    $s_x, %esi
        call    puts
        movl    last_bad, %eax
        call    puthex
        movl    $s_nl, %esi
        call    puts
        ret

# read_meminfo: region_end = top of RAM (multiboot mem_upper is KiB above 1 MiB; the
# firmware's tables up there are not needed any more); 128 MiB without memory info.
read_meminfo:
        movl    mbinfo, %ebx
        movl    $0x08000000, %eax
        testl   $1, 0(%ebx)
        jz      1f
        movl    8(%ebx), %eax
        addl    $1024, %eax
        shll    $10, %eax
1:      andl    $~(PAGE - 1), %eax
        cmpl    $(REGION_START + PAGE), %eax
        jae     2f
        movl    $(REGION_START + PAGE), %eax
2:      movl    %eax, region_end
        ret

# read_cmdline: dirty = N from "dirty=N" anywhere on the kernel command line.
read_cmdline:
        movl    $DEFAULT_DIRTY, dirty
        movl    mbinfo, %ebx
        testl   $4, 0(%ebx)
        jz      9f
        movl    16(%ebx), %esi
1:      cmpb    $0, (%esi)
        je      9f
        cmpl    $0x74726964, (%esi)        # "dirt"
        jne     2f
        cmpw    $0x3d79, 4(%esi)           # "y="
        je      3f
2:      incl    %esi
        jmp     1b
3:      addl    $6, %esi
        xorl    %edx, %edx
4:      movzbl  (%esi), %eax
        subl    $'0', %eax
        cmpl    $9, %eax
        ja      5f
        imull   $10, %edx, %edx
        addl    %eax, %edx
        incl    %esi
        jmp     4b
5:      movl    %edx, dirty
9:      movl    mbinfo, %ebx               # "lose" anywhere: the self-test
        testl   $4, 0(%ebx)
        jz      12f
        movl    16(%ebx), %esi
10:     cmpb    $0, (%esi)
        je      12f
        cmpl    $0x65736f6c, (%esi)        # "lose"
        je      11f
        incl    %esi
        jmp     10b
11:     movl    $1, lose_one
12:     ret

# make_boot_id: RTC seconds/minutes/hours mixed with the TSC.
make_boot_id:
        xorl    %ebx, %ebx
        movl    $4, %ecx                   # RTC registers 4 (hours), 2 (minutes), 0 (seconds)
1:      movb    %cl, %al
        outb    %al, $0x70
        inb     $0x71, %al
        shll    $8, %ebx
        movb    %al, %bl
        subl    $2, %ecx
        jns     1b
        rdtsc
        roll    $13, %eax
        xorl    %edx, %eax
        imull   $0x9e3779b1, %ebx, %ebx
        xorl    %ebx, %eax
        movl    %eax, boot_id
        ret

setup_idt:
        movl    $idt, %edi
        xorl    %ecx, %ecx
1:      movl    $fault_isr, %eax
        cmpl    $32, %ecx
        jb      2f
        movl    $spurious_isr, %eax
        cmpl    $0x20, %ecx
        jne     2f
        movl    $timer_isr, %eax
2:      movw    %ax, 0(%edi)
        movw    $0x08, 2(%edi)
        movw    $0x8E00, 4(%edi)           # present, DPL 0, 32-bit interrupt gate
        shrl    $16, %eax
        movw    %ax, 6(%edi)
        addl    $8, %edi
        incl    %ecx
        cmpl    $256, %ecx
        jb      1b
        lidt    idtr
        ret

# PIC: master at 0x20, slave at 0x28, only IRQ0 unmasked. PIT channel 0, mode 2, 100 Hz.
setup_pic_pit:
        movb    $0x11, %al
        outb    %al, $0x20
        outb    %al, $0xA0
        movb    $0x20, %al
        outb    %al, $0x21
        movb    $0x28, %al
        outb    %al, $0xA1
        movb    $0x04, %al
        outb    %al, $0x21
        movb    $0x02, %al
        outb    %al, $0xA1
        movb    $0x01, %al
        outb    %al, $0x21
        outb    %al, $0xA1
        movb    $0xFE, %al
        outb    %al, $0x21
        movb    $0xFF, %al
        outb    %al, $0xA1
        movb    $0x34, %al
        outb    %al, $0x43
        movw    $(1193182 / HZ), %ax
        outb    %al, $0x40
        movb    %ah, %al
        outb    %al, $0x40
        ret

timer_isr:
        pushl   %eax
        FLUSH_TLB
        incl    ticks
        movb    $0x20, %al
        outb    %al, $0x20
        popl    %eax
        iret

spurious_isr:
        iret

# A CPU exception means the guest state is broken: say so and stop ticking (the
# harness then sees no new T lines).
fault_isr:
        movl    $s_fault, %esi
        call    puts
1:      cli
        hlt
        jmp     1b

# putc: %al to COM1, waiting for the transmit holding register.
putc:
        pushl   %edx
        pushl   %eax
        movw    $(COM1 + 5), %dx
1:      inb     %dx, %al
        testb   $0x20, %al
        jz      1b
        popl    %eax
        movw    $COM1, %dx
        outb    %al, %dx
        popl    %edx
        ret

# puts: NUL-terminated string at %esi.
puts:
        pushl   %eax
1:      lodsb
        testb   %al, %al
        jz      2f
        call    putc
        jmp     1b
2:      popl    %eax
        ret

# puthex: %eax as 8 hex digits.
puthex:
        pushl   %ecx
        pushl   %ebx
        movl    %eax, %ebx
        movl    $8, %ecx
1:      roll    $4, %ebx
        movl    %ebx, %eax
        andl    $0xF, %eax
        movb    hexdigits(%eax), %al
        call    putc
        loop    1b
        popl    %ebx
        popl    %ecx
        ret

# putdec: %eax as unsigned decimal.
putdec:
        pushl   %ebx
        pushl   %ecx
        pushl   %edx
        movl    $10, %ebx
        xorl    %ecx, %ecx
1:      xorl    %edx, %edx
        divl    %ebx
        pushl   %edx
        incl    %ecx
        testl   %eax, %eax
        jnz     1b
2:      popl    %eax
        addb    $'0', %al
        call    putc
        loop    2b
        popl    %edx
        popl    %ecx
        popl    %ebx
        ret

        .section .rodata
hexdigits: .ascii "0123456789abcdef"
s_boot:    .asciz "BOOT B="
s_m:       .asciz " M="
s_t:       .asciz "T="
s_p:       .asciz " P="
s_e:       .asciz " E="
s_d:       .asciz " D="
s_b:       .asciz " B="
s_x:       .asciz " X="
s_nl:      .asciz "\r\n"
s_fault:   .asciz "\r\nFAULT\r\n"

        .data
        .align 8
gdt:    .quad 0
        .quad 0x00CF9A000000FFFF           # 0x08 code, flat 4 GiB, 32-bit
        .quad 0x00CF92000000FFFF           # 0x10 data, flat 4 GiB
gdtr:   .word gdtr - gdt - 1
        .long gdt
        .align 4
idtr:   .word 256 * 8 - 1
        .long idt

        .bss
        .align 4096
idt:        .space 256 * 8
mbinfo:     .space 4
region_end: .space 4
dirty:      .space 4
boot_id:    .space 4
cursor:     .space 4
pass:       .space 4
errors:     .space 4
last_bad:   .space 4
lose_one:   .space 4
ticks:      .space 4
seen:       .space 4
        .align 16
            .space 8192
stack_top:
