/* fuzz-capability.c - libvirt XML parsers of the capability checks (domain, capabilities,
 * domain capabilities, CPU) and the destination-XML rewrite: malformed input must give an
 * error, never a crash or a leak. A parsed domain is also evaluated against a fixed target. */
#include <stddef.h>
#include <stdint.h>

#include "vmig/capability.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char target_caps[] =
    "<capabilities><host><uuid>22222222-bbbb-4bbb-8bbb-00000000000b</uuid></host>"
    "<guest><os_type>hvm</os_type><arch name='x86_64'><emulator>/usr/bin/qemu-system-x86_64"
    "</emulator><machine>pc-q35-7.2</machine><machine canonical='pc-q35-7.2'>q35</machine>"
    "<domain type='qemu'/></arch></guest></capabilities>";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *xml = g_strndup((const char *)data, size);
    g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL, e5 = NULL;

    g_autoptr(VmigCapabilityHost) host = vmig_capability_host_parse(xml, &e2);
    g_autoptr(VmigCapabilityDomcaps) dc = vmig_capability_domcaps_parse(xml, &e3);
    g_autoptr(VmigCapabilityCpu) cpu = vmig_capability_cpu_parse(xml, &e4);
    g_autoptr(VmigCapabilityDomain) d = vmig_capability_domain_parse(xml, &e1);
    /* what parsed must be complete */
    g_assert(!host || host->host_uuid);
    g_assert(!dc || dc->path);
    g_assert(!cpu || cpu->xml);
    if (!d)
        return 0;
    g_assert(d->machine && d->arch && d->virt_type && d->memory_bytes > 0);
    g_autofree char *dst = vmig_capability_destination_xml(xml, "/usr/libexec/qemu-kvm", &e5);
    g_autoptr(VmigCapabilityHost) caps = vmig_capability_host_parse(target_caps, NULL);
    VmigCapabilitySource src = {.node = (char *)"node-a", .libvirt_version = 9000000};
    VmigCapabilityTarget t = {.node = "node-b",
                              .caps = caps,
                              .domcaps = dc,
                              .free_memory_bytes = 1 << 30,
                              .libvirt_version = 9000000,
                              .target_cpu_expanded = cpu};
    g_autoptr(VmigCapabilityResult) r = vmig_capability_evaluate(d, &src, &t, NULL);
    g_assert(r->eligible == (r->reasons->len == 0));
    if (dst) {
        g_autoptr(VmigCapabilityDomain) back = vmig_capability_domain_parse(dst, NULL);
        g_assert(back && g_strcmp0(back->machine, d->machine) == 0);
    }
    return 0;
}
