/* vmig/controller.h - the node agent: source and target roles of every migration.
 *
 * The controller is vmigrated's core loop. It mirrors VMIMs, VMIs, Nodes, PVCs,
 * DataVolumes, the KubeVirt CR, MigrationPolicies and the agents' heartbeat Leases
 * through informers (vmig/kube.h), and for every VMIM that involves this node asks
 * the state machine (vmig/migration.h) for the next action, then performs it:
 * status writes with preconditions, source checks (vmig/checks.h), target
 * capability checks (vmig/capability.h), proxy listeners (vmig/proxy.h) and the
 * libvirt migration call and monitor (vmig/virt.h). Blocking libvirt calls run on
 * worker threads; everything else runs on the GLib main loop. See docs/daemon.md.
 */
#pragma once

#include <gio/gio.h>

#include "vmig/agentconfig.h"
#include "vmig/kube.h"
#include "vmig/metrics.h"

G_BEGIN_DECLS

#define VMIG_CONTROLLER_ERROR (vmig_controller_error_quark())
GQuark vmig_controller_error_quark(void);

typedef enum {
    VMIG_CONTROLLER_ERROR_SETUP, /* TLS files, proxy, libvirt event loop could not start */
} VmigControllerError;

/* The finalizer KubeVirt's migration controller keeps on a VMIM; we keep the same one so
 * deleting a VMIM waits for the abort (B15). */
#define VMIG_CONTROLLER_FINALIZER "kubevirt.io/migrationJobFinalize"

typedef struct _VmigController VmigController;

/**
 * vmig_controller_new:
 * @config: (transfer none): the agent configuration; must outlive the controller
 * @client: (transfer none): referenced
 * @error: VMIG_CONTROLLER_ERROR_SETUP
 *
 * Returns: (transfer full) (nullable): the controller, not yet started.
 */
VmigController *vmig_controller_new(const VmigAgentConfig *config, VmigKubeClient *client,
                                    GError **error);

/* Starts the informers, the heartbeat Lease and the reconcile loop. */
void vmig_controller_start(VmigController *ctl);

/**
 * vmig_controller_is_ready:
 * Returns: TRUE when every informer has synced (the /readyz answer).
 */
gboolean vmig_controller_is_ready(VmigController *ctl);

/**
 * vmig_controller_shutdown:
 * @grace_ms: how long live migrations may go on (ms)
 * @done: called once on the main context when nothing of ours runs any more
 *
 * Accepts no new migration; lets running ones finish within @grace_ms (their
 * connections keep being relayed); then stops listeners and timers. A migration still
 * running at the deadline is left to libvirt (never destroyed): the next start
 * reconciles it.
 */
void vmig_controller_shutdown(VmigController *ctl, guint grace_ms, GSourceFunc done,
                              gpointer user_data);

/**
 * vmig_controller_set_metrics:
 * @metrics: (transfer none) (nullable): must outlive the controller; vmigrated's catalogue
 *           is registered in it
 *
 * From then on the controller feeds @metrics: KubeVirt's migration progress gauges
 * (kubevirt_vmi_migration_*, from each libvirt job sample, labels namespace/name/node),
 * the VMIM phase gauges and succeeded/failed markers (recounted at most once a second after
 * a VMIM change, over the VMIMs this node is source of), proxy bytes and connections, API
 * write errors and migrations started/completed.
 */
void vmig_controller_set_metrics(VmigController *ctl, VmigMetrics *metrics);

/**
 * vmig_controller_collect_metrics:
 * Refreshes the values read on demand (readiness, informer LIST counts, open proxy
 * connections); the /metrics handler calls it before rendering.
 */
void vmig_controller_collect_metrics(VmigController *ctl);

void vmig_controller_free(VmigController *ctl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigController, vmig_controller_free)

G_END_DECLS
