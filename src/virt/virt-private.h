/* virt-private.h - shared between the files of src/virt only. */
#pragma once

#include "vmig/virt.h"

#include <libvirt/libvirt.h>

/* Returns: (transfer none): the libvirt handle of @dom. */
virDomainPtr vmig_virt_domain_get_ptr(VmigVirtDomain *dom);

/* The migration's own hook on monitor actions, called before the user's on_action
 * (vmig_virt_monitor_set_callbacks): its bookkeeping (post-copy started, paused by the
 * monitor) must not depend on whether a caller replaced the public callbacks. */
void vmig_virt_monitor_set_owner_hook(VmigVirtMonitor *monitor, VmigVirtMonitorActionFunc hook,
                                      gpointer data);
