/* test-checks.c - source limitation checks (vmig/checks.h): every reason, KubeVirt's order,
 * field cases B05 (A/B/C), B06 (all five cases), B07 case 2 (source side), B17 eviction
 * warnings, condition JSON and change detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vmig/checks.h"

/* A scenario: one VMI plus the PVCs/DataVolumes/Node/KubeVirt CR of its namespace. */
typedef struct {
    VmigModelVmi *vmi;
    GPtrArray *pvcs;
    GPtrArray *dvs;
    VmigModelNode *node;
    VmigModelKubevirt *kv;
} Scenario;

static void
scenario_free(Scenario *s)
{
    vmig_model_vmi_free(s->vmi);
    g_ptr_array_unref(s->pvcs);
    g_ptr_array_unref(s->dvs);
    vmig_model_node_free(s->node);
    vmig_model_kubevirt_free(s->kv);
    g_free(s);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Scenario, scenario_free)

static Scenario *
scenario(const char *yaml)
{
    Scenario *s = g_new0(Scenario, 1);
    s->pvcs = g_ptr_array_new_with_free_func((GDestroyNotify)vmig_model_pvc_free);
    s->dvs = g_ptr_array_new_with_free_func((GDestroyNotify)vmig_model_data_volume_free);
    g_autoptr(GPtrArray) docs = NULL;
    g_autoptr(GError) e = NULL;
    if (!vmig_model_load_documents(yaml, -1, "scenario", &docs, &e))
        fail_msg("%s", e->message);
    for (guint i = 0; i < docs->len; i++) {
        JsonNode *d = g_ptr_array_index(docs, i);
        switch (vmig_model_kind_of(d)) {
        case VMIG_MODEL_KIND_VMI:
            s->vmi = vmig_model_vmi_from_json(d, &e);
            break;
        case VMIG_MODEL_KIND_PVC:
            g_ptr_array_add(s->pvcs, vmig_model_pvc_from_json(d, &e));
            break;
        case VMIG_MODEL_KIND_DATA_VOLUME:
            g_ptr_array_add(s->dvs, vmig_model_data_volume_from_json(d, &e));
            break;
        case VMIG_MODEL_KIND_NODE:
            s->node = vmig_model_node_from_json(d, &e);
            break;
        case VMIG_MODEL_KIND_KUBEVIRT:
            s->kv = vmig_model_kubevirt_from_json(d, &e);
            break;
        default:
            break;
        }
        if (e)
            fail_msg("%s", e->message);
    }
    assert_non_null(s->vmi);
    return s;
}

static VmigChecksInput
input_for(const Scenario *s)
{
    VmigChecksInput in = {
        .vmi = s->vmi,
        .pvcs = s->pvcs,
        .data_volumes = s->dvs,
        .cluster_cpu_model = s->kv ? s->kv->cpu_model : NULL,
        .migratable_binding_plugins = s->kv ? s->kv->migratable_binding_plugins : NULL,
        .node_facts_known = s->node != NULL,
        .node_host_model_cpu = s->node ? vmig_checks_node_host_model(s->node) : NULL,
    };
    return in;
}

#define VMI_HEAD                                                                                   \
    "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: vm1, namespace: "  \
    "ns1}\n"

/* ---- B05: interfaces and host devices ------------------------------------------------- */

static const char *b05_a =
    VMI_HEAD "spec:\n  domain:\n    cpu: {model: Skylake}\n    devices:\n      interfaces:\n"
             "      - {name: default, bridge: {}}\n  networks:\n  - {name: default, pod: {}}\n";
static const char *b05_b =
    VMI_HEAD "spec:\n  domain:\n    cpu: {model: Skylake}\n    devices:\n      interfaces:\n"
             "      - {name: default, masquerade: {}}\n  networks:\n  - {name: default, pod: {}}\n";
static const char *b05_c =
    VMI_HEAD "spec:\n  domain:\n    cpu: {model: Skylake}\n    devices:\n      interfaces:\n"
             "      - {name: default, masquerade: {}}\n"
             "      hostDevices:\n      - {name: gpu1, deviceName: vendor.example/GPU_X}\n"
             "  networks:\n  - {name: default, pod: {}}\n";

static void
test_b05_case_a_bridge_refused(void **state)
{
    g_autoptr(Scenario) s = scenario(b05_a);
    VmigChecksInput in = input_for(s);
    g_autoptr(VmigChecksResult) r = vmig_checks_source(&in);
    assert_false(r->migratable);
    assert_int_equal(r->findings->len, 1);
    VmigChecksFinding *f = g_ptr_array_index(r->findings, 0);
    assert_int_equal(f->reason, VMIG_CHECKS_REASON_INTERFACE);
    assert_string_equal(f->subject, "default");
    assert_non_null(strstr(f->message, "interface default"));
    g_autoptr(VmigModelCondition) c = vmig_checks_condition(r);
    assert_string_equal(c->status, "False");
    assert_string_equal(c->reason, "InterfaceNotLiveMigratable");
}

static void
test_b05_case_b_masquerade_ok(void **state)
{
    g_autoptr(Scenario) s = scenario(b05_b);
    VmigChecksInput in = input_for(s);
    g_autoptr(VmigChecksResult) r = vmig_checks_source(&in);
    assert_true(r->migratable);
    assert_int_equal(r->method, VMIG_MODEL_MIGRATION_METHOD_LIVE);
    g_autoptr(VmigModelCondition) c = vmig_checks_condition(r);
    assert_string_equal(c->status, "True");
    assert_null(c->reason);
}

static void
test_b05_case_c_host_device_refused(void **state)
{
    g_autoptr(Scenario) s = scenario(b05_c);
    VmigChecksInput in = input_for(s);
    g_autoptr(VmigChecksResult) r = vmig_checks_source(&in);
    assert_false(r->migratable);
    VmigChecksFinding *f = g_ptr_array_index(r->findings, 0);
    assert_int_equal(f->reason, VMIG_CHECKS_REASON_HOST_DEVICE);
    assert_string_equal(f->subject, "gpu1");
    assert_non_null(strstr(f->message, "gpu1"));
    assert_string_equal(vmig_checks_reason_to_string(f->reason), "HostDeviceNotLiveMigratable");
}

/* Every interface rule as a table: binding on the pod network, annotation, plugins. */
typedef struct {
    const char *itf;    /* interface member */
    const char *net;    /* network member */
    const char *annot;  /* extra metadata */
    gboolean plugin_ok; /* KubeVirt CR declares "mybind" with migration */
    gboolean migratable;
} ItfCase;

static void
test_interface_table(void **state)
{
    const ItfCase cases[] = {
        {"bridge: {}", "pod: {}", NULL, FALSE, FALSE},
        {"bridge: {}", "pod: {}", "kubevirt.io/allow-pod-bridge-network-live-migration: \"\"",
         FALSE, TRUE},
        {"masquerade: {}", "pod: {}", NULL, FALSE, TRUE},
        {"passt: {}", "pod: {}", NULL, FALSE, TRUE},
        {"slirp: {}", "pod: {}", NULL, FALSE, FALSE},
        {"binding: {name: mybind}", "pod: {}", NULL, TRUE, TRUE},
        {"binding: {name: mybind}", "pod: {}", NULL, FALSE, FALSE},
        {"bridge: {}", "multus: {networkName: blue}", NULL, FALSE, TRUE},
        {"sriov: {}", "multus: {networkName: vf}", NULL, FALSE, FALSE},
        {"macvtap: {}", "multus: {networkName: mv}", NULL, FALSE, TRUE},
        {"", "pod: {}", NULL, FALSE, FALSE}, /* no binding member: KubeVirt's default, bridge */
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *yaml = g_strdup_printf(
            "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: vm1, "
            "namespace: ns1%s%s%s}\nspec:\n  domain:\n    cpu: {model: Skylake}\n    devices:\n"
            "      interfaces: [{name: n1%s%s}]\n  networks: [{name: n1, %s}]\n"
            "---\napiVersion: kubevirt.io/v1\nkind: KubeVirt\nmetadata: {name: kubevirt, "
            "namespace: kubevirt}\nspec: {configuration: {network: {binding: {mybind: %s}}}}\n",
            cases[i].annot ? ", annotations: {" : "", cases[i].annot ? cases[i].annot : "",
            cases[i].annot ? "}" : "", *cases[i].itf ? ", " : "", cases[i].itf, cases[i].net,
            cases[i].plugin_ok ? "{migration: {}}" : "{sidecarImage: x}");
        g_autoptr(Scenario) s = scenario(yaml);
        VmigChecksInput in = input_for(s);
        g_autoptr(VmigChecksResult) r = vmig_checks_source(&in);
        if (r->migratable != cases[i].migratable)
            fail_msg("interface case %zu (%s on %s): migratable=%d", i, cases[i].itf, cases[i].net,
                     r->migratable);
        if (!r->migratable)
            assert_int_equal(((VmigChecksFinding *)g_ptr_array_index(r->findings, 0))->reason,
                             VMIG_CHECKS_REASON_INTERFACE);
    }
}

/* ---- B06: volumes --------------------------------------------------------------------- */

static const char *b06_objects =
    "---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: pvc-rwo, namespace: ns1}\n"
    "spec: {accessModes: [ReadWriteOnce]}\nstatus: {phase: Bound, accessModes: [ReadWriteOnce]}\n"
    "---\napiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata: {name: dv-rwx, "
    "namespace: ns1}\nstatus: {phase: Succeeded}\n"
    "---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: dv-rwx, namespace: ns1}\n"
    "spec: {accessModes: [ReadWriteMany]}\nstatus: {phase: Bound, accessModes: [ReadWriteMany]}\n";

/* Builds the B06 VMI with the named volumes (each with a virtio disk, in order). */
static char *
b06_vmi(const char *const *vols, gsize n)
{
    GString *disks = g_string_new(NULL), *volumes = g_string_new(NULL);
    for (gsize i = 0; i < n; i++) {
        g_string_append_printf(disks, "      - {name: %s, disk: {bus: virtio}}\n", vols[i]);
        const char *src =
            strcmp(vols[i], "root") == 0   ? "persistentVolumeClaim: {claimName: pvc-rwo}"
            : strcmp(vols[i], "data") == 0 ? "dataVolume: {name: dv-rwx}"
            : strcmp(vols[i], "scratch") == 0
                ? "hostDisk: {path: /var/lib/vm1/s.img, type: DiskOrCreate, capacity: 1Gi}"
                : "cloudInitNoCloud: {userData: \"#cloud-config\\n\"}";
        g_string_append_printf(volumes, "  - {name: %s, %s}\n", vols[i], src);
    }
    char *out = g_strdup_printf(VMI_HEAD "spec:\n  domain:\n    cpu: {model: Skylake}\n"
                                         "    devices:\n      disks:\n%s  volumes:\n%s%s",
                                disks->str, volumes->str, b06_objects);
    g_string_free(disks, TRUE);
    g_string_free(volumes, TRUE);
    return out;
}

typedef struct {
    const char *vols[2];
    gsize n;
    gboolean block_flag;
    gboolean migratable;
    VmigModelMigrationMethod method;
    const char *copy;   /* comma-joined copy_disks */
    const char *needle; /* in the first finding's message */
} B06Case;

static void
test_b06_table(void **state)
{
    const B06Case cases[] = {
        /* field case B06, as specified */
        {{"data"}, 1, FALSE, TRUE, VMIG_MODEL_MIGRATION_METHOD_LIVE, "", NULL},
        {{"root"},
         1,
         FALSE,
         FALSE,
         VMIG_MODEL_MIGRATION_METHOD_BLOCK,
         "",
         "PVC pvc-rwo (volume root) is not shared"},
        {{"scratch"},
         1,
         FALSE,
         FALSE,
         VMIG_MODEL_MIGRATION_METHOD_BLOCK,
         "",
         "non-shared HostDisk scratch"},
        {{"root", "data"}, 2, FALSE, FALSE, VMIG_MODEL_MIGRATION_METHOD_BLOCK, "", "volume root"},
        {{"data", "cidata"}, 2, FALSE, TRUE, VMIG_MODEL_MIGRATION_METHOD_BLOCK, "vdb", NULL},
        /* with block migration of non-shared volumes explicitly enabled */
        {{"root"}, 1, TRUE, TRUE, VMIG_MODEL_MIGRATION_METHOD_BLOCK, "vda", NULL},
        {{"scratch"}, 1, TRUE, TRUE, VMIG_MODEL_MIGRATION_METHOD_BLOCK, "vda", NULL},
        {{"root", "data"},
         2,
         TRUE,
         FALSE,
         VMIG_MODEL_MIGRATION_METHOD_LIVE,
         "",
         "mixes shared and non-shared"},
        {{"cidata", "scratch"}, 2, TRUE, TRUE, VMIG_MODEL_MIGRATION_METHOD_BLOCK, "vda,vdb", NULL},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *yaml = b06_vmi(cases[i].vols, cases[i].n);
        g_autoptr(Scenario) s = scenario(yaml);
        VmigChecksInput in = input_for(s);
        in.block_migrate_non_shared = cases[i].block_flag;
        g_autoptr(VmigChecksResult) r = vmig_checks_source(&in);
        g_autofree char *copy = NULL;
        g_ptr_array_add(r->copy_disks, NULL);
        copy = g_strjoinv(",", (char **)r->copy_disks->pdata);
        g_ptr_array_set_size(r->copy_disks, r->copy_disks->len - 1);
        if (r->migratable != cases[i].migratable || r->method != cases[i].method ||
            strcmp(copy, cases[i].copy) != 0)
            fail_msg("B06 case %zu: migratable=%d method=%s copy=%s", i, r->migratable,
                     vmig_model_migration_method_to_string(r->method), copy);
        if (cases[i].needle) {
            VmigChecksFinding *f = g_ptr_array_index(r->findings, 0);
            assert_int_equal(f->reason, VMIG_CHECKS_REASON_DISKS);
            if (!strstr(f->message, cases[i].needle))
                fail_msg("B06 case %zu: message %s", i, f->message);
        }
    }
}

/* The opposite bug of B06: the decision reads the bound PVC's status, following DV -> PVC. */
static void
test_b06_reads_bound_pvc_status(void **state)
{
    const char *yaml =
        VMI_HEAD "spec:\n  domain:\n    cpu: {model: Skylake}\n    devices: {disks: [{name: d, "
                 "disk: {}}]}\n  volumes: [{name: d, dataVolume: {name: dv1}}]\n"
                 "---\napiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata: {name: "
                 "dv1, namespace: ns1}\nstatus: {claimName: claim-of-dv1}\n"
                 /* a same-named PVC that is RWX must NOT be used: the DV's claim is another */
                 "---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: dv1, "
                 "namespace: ns1}\nstatus: {phase: Bound, accessModes: [ReadWriteMany]}\n"
                 "---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: claim-of-dv1, "
                 "namespace: ns1}\nspec: {accessModes: [ReadWriteMany]}\n"
                 "status: {phase: Bound, accessModes: [ReadWriteOnce]}\n";
    g_autoptr(Scenario) s = scenario(yaml);
    VmigChecksInput in = input_for(s);
    g_autoptr(VmigChecksResult) r = vmig_checks_source(&in);
    assert_false(r->migratable);
    assert_non_null(strstr(((VmigChecksFinding *)r->findings->pdata[0])->message, "claim-of-dv1"));

    /* Missing and unbound PVCs cannot be judged: refused, naming the claim. */
    const char *missing = VMI_HEAD "spec:\n  domain: {cpu: {model: Skylake}}\n  volumes: [{name: "
                                   "d, persistentVolumeClaim: {claimName: nope}}]\n";
    g_autoptr(Scenario) s2 = scenario(missing);
    VmigChecksInput in2 = input_for(s2);
    g_autoptr(VmigChecksResult) r2 = vmig_checks_source(&in2);
    assert_false(r2->migratable);
    assert_non_null(strstr(((VmigChecksFinding *)r2->findings->pdata[0])->message, "nope"));

    /* A PVC of another namespace does not count. */
    const char *other_ns =
        VMI_HEAD "spec:\n  domain: {cpu: {model: Skylake}}\n  volumes: [{name: d, "
                 "persistentVolumeClaim: {claimName: p}}]\n---\napiVersion: v1\nkind: "
                 "PersistentVolumeClaim\nmetadata: {name: p, namespace: ns2}\nstatus: {phase: "
                 "Bound, accessModes: [ReadWriteMany]}\n";
    g_autoptr(Scenario) s3 = scenario(other_ns);
    VmigChecksInput in3 = input_for(s3);
    g_autoptr(VmigChecksResult) r3 = vmig_checks_source(&in3);
    assert_false(r3->migratable);
}

/* With block migration enabled, a non-shared volume without a disk cannot be copied. */
static void
test_block_flag_needs_a_disk(void **state)
{
    g_autoptr(Scenario) s =
        scenario(VMI_HEAD "spec:\n  domain: {cpu: {model: Skylake}}\n  volumes: [{name: fs, "
                          "hostDisk: {path: /x, type: Disk}}]\n");
    VmigChecksInput in = input_for(s);
    in.block_migrate_non_shared = TRUE;
    g_autoptr(VmigChecksResult) r = vmig_checks_source(&in);
    assert_false(r->migratable);
    assert_non_null(strstr(((VmigChecksFinding *)r->findings->pdata[0])->message, "not a disk"));
}

/* Generated disks: copied unless a read-only CD-ROM; filesystems (no disk) are not copied. */
static void
test_generated_disks_and_targets(void **state)
{
    const char *yaml =
        VMI_HEAD "spec:\n  domain:\n    cpu: {model: Skylake}\n    devices:\n      disks:\n"
                 "      - {name: root, disk: {}}\n      - {name: cd, cdrom: {bus: sata}}\n"
                 "      - {name: cfg, disk: {bus: sata}}\n      - {name: scratch, disk: {bus: "
                 "virtio}}\n  volumes:\n  - {name: root, containerDisk: {image: x}}\n"
                 "  - {name: cd, cloudInitNoCloud: {userData: x}}\n  - {name: cfg, configMap: "
                 "{name: c}}\n  - {name: scratch, emptyDisk: {capacity: 2Gi}}\n"
                 "  - {name: fs, secret: {secretName: s}}\n";
    g_autoptr(Scenario) s = scenario(yaml);
    VmigChecksInput in = input_for(s);
    g_autoptr(VmigChecksResult) r = vmig_checks_source(&in);
    assert_true(r->migratable);
    assert_int_equal(r->method, VMIG_MODEL_MIGRATION_METHOD_BLOCK);
    assert_int_equal(r->copy_disks->len, 3);
    assert_string_equal(g_ptr_array_index(r->copy_disks, 0), "vda");
    assert_string_equal(g_ptr_array_index(r->copy_disks, 1), "sdb"); /* cd is sda */
    assert_string_equal(g_ptr_array_index(r->copy_disks, 2), "vdb");
    assert_int_equal(r->copy_bytes_known, 2147483648);
    g_autofree char *t = vmig_checks_disk_target(s->vmi, "cd");
    assert_string_equal(t, "sda");
    assert_null(vmig_checks_disk_target(s->vmi, "fs"));
}

static void
test_disk_target_names(void **state)
{
    GString *y = g_string_new(VMI_HEAD "spec:\n  domain:\n    devices:\n      disks:\n");
    for (int i = 0; i < 30; i++)
        g_string_append_printf(y, "      - {name: d%d, disk: {}}\n", i);
    g_autoptr(Scenario) s = scenario(y->str);
    g_string_free(y, TRUE);
    const struct {
        const char *disk, *target;
    } want[] = {{"d0", "vda"}, {"d25", "vdz"}, {"d26", "vdaa"}, {"d29", "vdad"}};
    for (gsize i = 0; i < G_N_ELEMENTS(want); i++) {
        g_autofree char *t = vmig_checks_disk_target(s->vmi, want[i].disk);
        assert_string_equal(t, want[i].target);
    }
}

/* ---- B07 (source side): CPU mode ------------------------------------------------------ */

static void
test_b07_host_passthrough(void **state)
{
    g_autoptr(Scenario) s =
        scenario(VMI_HEAD "spec:\n  domain: {cpu: {model: host-passthrough}}\n");
    VmigChecksInput in = input_for(s);
    g_autoptr(VmigChecksResult) r = vmig_checks_source(&in);
    assert_false(r->migratable);
    VmigChecksFinding *f = g_ptr_array_index(r->findings, 0);
    assert_int_equal(f->reason, VMIG_CHECKS_REASON_CPU_MODE);
    assert_string_equal(vmig_checks_reason_to_string(f->reason), "CPUModeLiveMigratable");
    assert_non_null(strstr(f->message, "host-passthrough"));
    /* Explicitly enabled: the source accepts; the target check decides (identical CPU only). */
    in.allow_host_passthrough = TRUE;
    g_autoptr(VmigChecksResult) r2 = vmig_checks_source(&in);
    assert_true(r2->migratable);
}

static void
test_host_model_node_facts(void **state)
{
    const char *vmi = VMI_HEAD "spec:\n  domain: {}\nstatus: {nodeName: node-a}\n";
    const char *node_without = "---\napiVersion: v1\nkind: Node\nmetadata: {name: node-a}\n";
    const char *node_with = "---\napiVersion: v1\nkind: Node\nmetadata: {name: node-a, labels: "
                            "{host-model-cpu.node.kubevirt.io/Skylake-Client: \"true\"}}\n";
    /* No cpu.model: the cluster default is host-model. Unknown node facts refuse nothing. */
    g_autoptr(Scenario) s0 = scenario(vmi);
    VmigChecksInput in0 = input_for(s0);
    g_autoptr(VmigChecksResult) r0 = vmig_checks_source(&in0);
    assert_true(r0->migratable);

    g_autofree char *y1 = g_strconcat(vmi, node_without, NULL);
    g_autoptr(Scenario) s1 = scenario(y1);
    VmigChecksInput in1 = input_for(s1);
    g_autoptr(VmigChecksResult) r1 = vmig_checks_source(&in1);
    assert_false(r1->migratable);
    VmigChecksFinding *f = g_ptr_array_index(r1->findings, 0);
    assert_string_equal(f->message, "the node \"node-a\" does not allow migration with host-model");

    g_autofree char *y2 = g_strconcat(vmi, node_with, NULL);
    g_autoptr(Scenario) s2 = scenario(y2);
    assert_string_equal(vmig_checks_node_host_model(s2->node), "Skylake-Client");
    VmigChecksInput in2 = input_for(s2);
    g_autoptr(VmigChecksResult) r2 = vmig_checks_source(&in2);
    assert_true(r2->migratable);

    /* Cluster default model host-passthrough applies to a VMI without a model. */
    g_autofree char *y3 =
        g_strconcat(vmi,
                    "---\napiVersion: kubevirt.io/v1\nkind: KubeVirt\nmetadata: {name: kv, "
                    "namespace: kubevirt}\nspec: {configuration: {cpuModel: host-passthrough}}\n",
                    NULL);
    g_autoptr(Scenario) s3 = scenario(y3);
    VmigChecksInput in3 = input_for(s3);
    g_autoptr(VmigChecksResult) r3 = vmig_checks_source(&in3);
    assert_false(r3->migratable);
}

/* ---- the remaining reasons, one row each, and KubeVirt's order ------------------------ */

typedef struct {
    const char *domain;
    VmigChecksReason reason;
    const char *name;
} ReasonCase;

static void
test_reason_table(void **state)
{
    const ReasonCase cases[] = {
        {"{cpu: {model: Skylake}, launchSecurity: {sev: {}}}", VMIG_CHECKS_REASON_SEV,
         "SEVNotLiveMigratable"},
        {"{cpu: {model: Skylake}, launchSecurity: {snp: {}}}", VMIG_CHECKS_REASON_SEV,
         "SEVNotLiveMigratable"},
        {"{cpu: {model: Skylake}, launchSecurity: {tdx: {}}}", VMIG_CHECKS_REASON_TDX,
         "TDXNotLiveMigratable"},
        {"{cpu: {model: Skylake}, launchSecurity: {}}", VMIG_CHECKS_REASON_SECURE_EXECUTION,
         "SecureExecutionNotLiveMigratable"},
        {"{cpu: {model: Skylake}, features: {hypervPassthrough: {enabled: true}}}",
         VMIG_CHECKS_REASON_HYPERV_PASSTHROUGH, "HypervPassthroughNotLiveMigratable"},
        {"{cpu: {model: Skylake}, devices: {gpus: [{name: g1, deviceName: x}]}}",
         VMIG_CHECKS_REASON_HOST_DEVICE, "HostDeviceNotLiveMigratable"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *y = g_strdup_printf(VMI_HEAD "spec:\n  domain: %s\n", cases[i].domain);
        g_autoptr(Scenario) s = scenario(y);
        VmigChecksInput in = input_for(s);
        g_autoptr(VmigChecksResult) r = vmig_checks_source(&in);
        assert_false(r->migratable);
        assert_int_equal(r->findings->len, 1);
        VmigChecksFinding *f = g_ptr_array_index(r->findings, 0);
        assert_int_equal(f->reason, cases[i].reason);
        assert_string_equal(vmig_checks_reason_to_string(f->reason), cases[i].name);
        VmigChecksReason back;
        assert_true(vmig_checks_reason_from_string(cases[i].name, &back));
        assert_int_equal(back, cases[i].reason);
    }
    /* hypervPassthrough: {enabled: false} is fine. */
    g_autoptr(Scenario) s = scenario(VMI_HEAD "spec:\n  domain: {cpu: {model: Skylake}, features: "
                                              "{hypervPassthrough: {enabled: false}}}\n");
    VmigChecksInput in = input_for(s);
    g_autoptr(VmigChecksResult) r = vmig_checks_source(&in);
    assert_true(r->migratable);
}

static void
test_kubevirt_order(void **state)
{
    const char *yaml =
        VMI_HEAD "spec:\n  domain:\n    cpu: {model: host-passthrough}\n"
                 "    launchSecurity: {tdx: {}}\n    features: {hypervPassthrough: {enabled: "
                 "true}}\n    devices:\n      interfaces: [{name: default, bridge: {}}]\n"
                 "      disks: [{name: root, disk: {}}]\n      hostDevices: [{name: h1, "
                 "deviceName: x}]\n  networks: [{name: default, pod: {}}]\n"
                 "  volumes: [{name: root, hostDisk: {path: /x, type: Disk}}]\n";
    g_autoptr(Scenario) s = scenario(yaml);
    VmigChecksInput in = input_for(s);
    g_autoptr(VmigChecksResult) r = vmig_checks_source(&in);
    const VmigChecksReason want[] = {
        VMIG_CHECKS_REASON_INTERFACE,          VMIG_CHECKS_REASON_CPU_MODE,
        VMIG_CHECKS_REASON_HOST_DEVICE,        VMIG_CHECKS_REASON_TDX,
        VMIG_CHECKS_REASON_HYPERV_PASSTHROUGH, VMIG_CHECKS_REASON_DISKS,
    };
    assert_int_equal(r->findings->len, G_N_ELEMENTS(want));
    for (gsize i = 0; i < G_N_ELEMENTS(want); i++)
        assert_int_equal(((VmigChecksFinding *)r->findings->pdata[i])->reason, want[i]);
    g_autoptr(VmigModelCondition) c = vmig_checks_condition(r);
    assert_string_equal(c->reason, "InterfaceNotLiveMigratable");
}

/* ---- condition JSON, change detection, write-back, eviction warnings ------------------ */

static void
test_condition_json_and_changes(void **state)
{
    g_autoptr(Scenario) s = scenario(b05_a);
    VmigChecksInput in = input_for(s);
    g_autoptr(VmigChecksResult) r = vmig_checks_source(&in);
    g_autoptr(JsonNode) j = vmig_checks_condition_to_json(r, "2026-11-29T19:00:00Z");
    g_autofree char *text = json_to_string(j, FALSE);
    assert_non_null(strstr(text, "\"type\":\"LiveMigratable\",\"status\":\"False\","
                                 "\"reason\":\"InterfaceNotLiveMigratable\""));
    assert_non_null(strstr(text, "\"lastProbeTime\":null"));

    /* A fresh VMI has no condition: changed. After writing: unchanged. */
    assert_true(vmig_checks_status_changed(s->vmi, r));
    JsonNode *node = s->vmi->node;
    assert_true(vmig_checks_write_status(node, r, "2026-11-29T19:00:00Z", NULL));
    g_autoptr(VmigModelVmi) again = vmig_model_vmi_from_json(node, NULL);
    assert_false(vmig_checks_status_changed(again, r));
    assert_int_equal(again->migration_method, VMIG_MODEL_MIGRATION_METHOD_LIVE);
    /* The spec the daemon does not own is untouched. */
    assert_non_null(vmig_model_json_get(node, "spec.domain.devices.interfaces"));

    /* Now migratable (annotation added): changed. */
    g_autoptr(Scenario) ok = scenario(b05_b);
    VmigChecksInput in2 = input_for(ok);
    g_autoptr(VmigChecksResult) r2 = vmig_checks_source(&in2);
    assert_true(vmig_checks_status_changed(again, r2));
}

static void
test_b17_eviction_warnings(void **state)
{
    g_autoptr(Scenario) bad = scenario(b05_a);
    VmigChecksInput in = input_for(bad);
    g_autoptr(VmigChecksResult) r = vmig_checks_source(&in);
    /* vm3 of B17: LiveMigrateIfPossible never warns, even with a LiveMigrate cluster default. */
    bad->vmi->eviction_strategy = VMIG_MODEL_EVICTION_LIVE_MIGRATE_IF_POSSIBLE;
    assert_false(vmig_checks_eviction_warns(bad->vmi, VMIG_MODEL_EVICTION_LIVE_MIGRATE, r));
    bad->vmi->eviction_strategy = VMIG_MODEL_EVICTION_UNSET;
    assert_true(vmig_checks_eviction_warns(bad->vmi, VMIG_MODEL_EVICTION_LIVE_MIGRATE, r));
    assert_false(vmig_checks_eviction_warns(bad->vmi, VMIG_MODEL_EVICTION_NONE, r));
    bad->vmi->eviction_strategy = VMIG_MODEL_EVICTION_LIVE_MIGRATE;
    assert_true(vmig_checks_eviction_warns(bad->vmi, VMIG_MODEL_EVICTION_NONE, r));
    g_autoptr(Scenario) good = scenario(b05_b);
    VmigChecksInput in2 = input_for(good);
    g_autoptr(VmigChecksResult) r2 = vmig_checks_source(&in2);
    assert_false(vmig_checks_eviction_warns(good->vmi, VMIG_MODEL_EVICTION_LIVE_MIGRATE, r2));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b05_case_a_bridge_refused),
        cmocka_unit_test(test_b05_case_b_masquerade_ok),
        cmocka_unit_test(test_b05_case_c_host_device_refused),
        cmocka_unit_test(test_interface_table),
        cmocka_unit_test(test_b06_table),
        cmocka_unit_test(test_b06_reads_bound_pvc_status),
        cmocka_unit_test(test_block_flag_needs_a_disk),
        cmocka_unit_test(test_generated_disks_and_targets),
        cmocka_unit_test(test_disk_target_names),
        cmocka_unit_test(test_b07_host_passthrough),
        cmocka_unit_test(test_host_model_node_facts),
        cmocka_unit_test(test_reason_table),
        cmocka_unit_test(test_kubevirt_order),
        cmocka_unit_test(test_condition_json_and_changes),
        cmocka_unit_test(test_b17_eviction_warnings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
