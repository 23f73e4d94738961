/* virt-private.h - shared between the files of src/virt only. */
#pragma once

#include "vmig/virt.h"

#include <libvirt/libvirt.h>

/* Returns: (transfer none): the libvirt handle of @dom. */
virDomainPtr vmig_virt_domain_get_ptr(VmigVirtDomain *dom);
