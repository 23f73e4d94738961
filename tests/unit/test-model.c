/* test-model.c - object model: quantities, names, object views, malformed input, write-back,
 * loader (vmig/model.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vmig/model.h"

/* ---- quantities ----------------------------------------------------------------------- */

typedef struct {
    const char *text;
    gboolean ok;
    gboolean negative;
    gint64 units;
    guint32 nanos;
    int code; /* error code when !ok */
} QCase;

static const QCase qcases[] = {
    {"0", TRUE, FALSE, 0, 0},
    {"1", TRUE, FALSE, 1, 0},
    {"00012", TRUE, FALSE, 12, 0},
    {"+1", TRUE, FALSE, 1, 0},
    {"-1", TRUE, TRUE, 1, 0},
    {"-0", TRUE, FALSE, 0, 0},
    {"1m", TRUE, FALSE, 0, 1000000},
    {"500m", TRUE, FALSE, 0, 500000000},
    {"1500m", TRUE, FALSE, 1, 500000000},
    {"1u", TRUE, FALSE, 0, 1000},
    {"1n", TRUE, FALSE, 0, 1},
    {"0.1n", TRUE, FALSE, 0, 1}, /* more precise than a nano: rounded up */
    {"1e-1000", TRUE, FALSE, 0, 1},
    {"1k", TRUE, FALSE, 1000, 0},
    {"1M", TRUE, FALSE, 1000000, 0},
    {"1G", TRUE, FALSE, 1000000000, 0},
    {"1T", TRUE, FALSE, 1000000000000, 0},
    {"1P", TRUE, FALSE, 1000000000000000, 0},
    {"1E", TRUE, FALSE, 1000000000000000000, 0},
    {"1Ki", TRUE, FALSE, 1024, 0},
    {"512Ki", TRUE, FALSE, 524288, 0},
    {"1.5Ki", TRUE, FALSE, 1536, 0},
    {"0.1Ki", TRUE, FALSE, 102, 400000000},
    {"1Mi", TRUE, FALSE, 1048576, 0},
    {"1536Ki", TRUE, FALSE, 1572864, 0},
    {"5.9999Mi", TRUE, FALSE, 6291351, 142400000},
    {"64Mi", TRUE, FALSE, 67108864, 0},
    {"2Gi", TRUE, FALSE, 2147483648, 0},
    {"1Ti", TRUE, FALSE, 1099511627776, 0},
    {"1Pi", TRUE, FALSE, 1125899906842624, 0},
    {"1Ei", TRUE, FALSE, 1152921504606846976, 0},
    {"7.99Ei", TRUE, FALSE, 9211842821808707338, 240000000}, /* 7.99 * 2^60 exactly */
    {"8Ei", TRUE, FALSE, G_MAXINT64, 0},                     /* 2^63: BinarySI saturates */
    {"1000Ei", TRUE, FALSE, G_MAXINT64, 0},
    {"9223372036854775807", TRUE, FALSE, G_MAXINT64, 0},
    {"1e3", TRUE, FALSE, 1000, 0},
    {"1E3", TRUE, FALSE, 1000, 0},
    {"1e+3", TRUE, FALSE, 1000, 0},
    {"1e-3", TRUE, FALSE, 0, 1000000},
    {"1.5e3", TRUE, FALSE, 1500, 0},
    {"1e03", TRUE, FALSE, 1000, 0},
    {".5", TRUE, FALSE, 0, 500000000},
    {"1.", TRUE, FALSE, 1, 0},
    {"1.G", TRUE, FALSE, 1000000000, 0},
    {"0.000000000000000000000000000000000000000000001", TRUE, FALSE, 0, 1},
    {"123456789.123456789123", TRUE, FALSE, 123456789, 123456790},
    /* errors */
    {"", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {"-", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {".", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {"e3", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {"fast", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {"1 ", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {" 1", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {"1K", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {"1i", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {"0.1mi", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {"1.1.M", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {"1+1.0M", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {"-3.01e-", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {"1Mi5", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {"1Ee3", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {"1e", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {"9999999999999999999", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_RANGE}, /* apimachinery: ErrNumeric */
    {"1e99999999999999999999", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_INVALID},
    {"9223372036854775808", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_RANGE},
    {"10E", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_RANGE},
    {"1e1000", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_RANGE},
    {"99999999999999999999999999999999999999999999", FALSE, 0, 0, 0, VMIG_MODEL_ERROR_RANGE},
};

static void
test_quantity_table(void **state)
{
    for (gsize i = 0; i < G_N_ELEMENTS(qcases); i++) {
        const QCase *c = &qcases[i];
        VmigModelQuantity q = {0};
        g_autoptr(GError) e = NULL;
        gboolean ok = vmig_model_quantity_parse(c->text, "spec.x", &q, &e);
        if (ok != c->ok)
            fail_msg("case \"%s\": ok=%d, want %d (%s)", c->text, ok, c->ok, e ? e->message : "");
        if (c->ok) {
            if (q.units != c->units || q.nanos != c->nanos || q.negative != c->negative)
                fail_msg("case \"%s\": got %s%" G_GINT64_FORMAT ".%09u", c->text,
                         q.negative ? "-" : "", q.units, q.nanos);
        } else {
            assert_int_equal(e->code, c->code);
            assert_non_null(strstr(e->message, "spec.x"));
        }
    }
}

static void
test_quantity_json_and_helpers(void **state)
{
    VmigModelQuantity q;
    g_autoptr(GError) e = NULL;
    g_autoptr(JsonNode) n = json_node_new(JSON_NODE_VALUE);
    json_node_set_int(n, 1073741824);
    assert_true(vmig_model_quantity_from_json(n, "f", FALSE, &q, NULL));
    assert_int_equal(q.units, 1073741824);
    json_node_set_double(n, 0.5);
    assert_true(vmig_model_quantity_from_json(n, "f", FALSE, &q, NULL));
    assert_int_equal(q.nanos, 500000000);
    assert_int_equal(vmig_model_quantity_ceil(&q), 1);
    json_node_set_string(n, "-1Mi");
    assert_false(vmig_model_quantity_from_json(n, "spec.bw", FALSE, &q, &e));
    assert_int_equal(e->code, VMIG_MODEL_ERROR_RANGE);
    assert_non_null(strstr(e->message, "spec.bw"));
    g_clear_error(&e);
    json_node_set_string(n, " 64Mi\t");
    assert_true(vmig_model_quantity_from_json(n, "f", FALSE, &q, NULL));
    assert_int_equal(q.units, 67108864);
    assert_int_equal(q.format, VMIG_MODEL_QUANTITY_BINARY_SI);
    assert_true(vmig_model_quantity_parse("0.5Ki", NULL, &q, NULL));
    assert_int_equal(q.format, VMIG_MODEL_QUANTITY_BINARY_SI); /* 512: still binary */
    assert_true(vmig_model_quantity_parse("0.0001Ki", NULL, &q, NULL));
    assert_int_equal(q.format, VMIG_MODEL_QUANTITY_DECIMAL_SI); /* below 1: DecimalSI */
    assert_true(vmig_model_quantity_parse("1e3", NULL, &q, NULL));
    assert_int_equal(q.format, VMIG_MODEL_QUANTITY_DECIMAL_EXPONENT);
    json_node_set_boolean(n, TRUE);
    assert_false(vmig_model_quantity_from_json(n, "f", FALSE, &q, &e));
    assert_int_equal(e->code, VMIG_MODEL_ERROR_TYPE);
    assert_true(vmig_model_quantity_parse("-1.5", NULL, &q, NULL));
    assert_int_equal(vmig_model_quantity_ceil(&q), -2);
    assert_true(vmig_model_quantity_parse("0", NULL, &q, NULL));
    assert_true(vmig_model_quantity_is_zero(&q));
}

/* ---- names ---------------------------------------------------------------------------- */

typedef struct {
    const char *value;
    gboolean name_ok;
    gboolean ns_ok;
} NameCase;

static void
test_names_table(void **state)
{
    g_autofree char *l63 = g_strnfill(63, 'a');
    g_autofree char *l64 = g_strnfill(64, 'a');
    g_autofree char *b61 = g_strnfill(61, 'b');
    g_autofree char *b62 = g_strnfill(62, 'b');
    g_autofree char *n253 = g_strdup_printf("%s.%s.%s.%s", l63, l63, l63, b61);
    g_autofree char *n254 = g_strdup_printf("%s.%s.%s.%s", l63, l63, l63, b62);
    const NameCase cases[] = {
        {"vm1", TRUE, TRUE},
        {"a", TRUE, TRUE},
        {"a-b", TRUE, TRUE},
        {"a.b", TRUE, FALSE},
        {"node-a.example", TRUE, FALSE},
        {l63, TRUE, TRUE},
        {l64, FALSE, FALSE},
        {n253, TRUE, FALSE},
        {n254, FALSE, FALSE},
        {"", FALSE, FALSE},
        {"VM1", FALSE, FALSE},
        {"a/b", FALSE, FALSE},
        {"..", FALSE, FALSE},
        {"a..b", FALSE, FALSE},
        {"../etc", FALSE, FALSE},
        {".a", FALSE, FALSE},
        {"a.", FALSE, FALSE},
        {"-a", FALSE, FALSE},
        {"a-", FALSE, FALSE},
        {"a_b", FALSE, FALSE},
        {"a b", FALSE, FALSE},
        {"\xc3\xa9", FALSE, FALSE},
        {"a\nb", FALSE, FALSE},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) e1 = NULL;
        g_autoptr(GError) e2 = NULL;
        if (vmig_model_validate_name(cases[i].value, "metadata.name", &e1) != cases[i].name_ok)
            fail_msg("name case %zu \"%s\"", i, cases[i].value);
        if (vmig_model_validate_namespace(cases[i].value, "metadata.namespace", &e2) !=
            cases[i].ns_ok)
            fail_msg("namespace case %zu \"%s\"", i, cases[i].value);
        if (e1)
            assert_non_null(strstr(e1->message, "metadata.name"));
    }
    assert_false(vmig_model_validate_name(NULL, "f", NULL));
}

static void
test_uid(void **state)
{
    assert_true(vmig_model_validate_uid("2e432308-e94c-4866-a86a-388ce0b6cbc1", "u", NULL));
    assert_true(vmig_model_validate_uid("2E432308-E94C-4866-A86A-388CE0B6CBC1", "u", NULL));
    const char *bad[] = {"",
                         "2e432308e94c4866a86a388ce0b6cbc1",
                         "2e432308-e94c-4866-a86a-388ce0b6cbc",
                         "2e432308-e94c-4866-a86a-388ce0b6cbc1x",
                         "2e432308-e94c-4866-a86a_388ce0b6cbc1",
                         "zz432308-e94c-4866-a86a-388ce0b6cbc1",
                         "../../../../../../../../../../etc"};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) e = NULL;
        assert_false(vmig_model_validate_uid(bad[i], "metadata.uid", &e));
        assert_int_equal(e->code, VMIG_MODEL_ERROR_INVALID);
    }
}

/* ---- objects -------------------------------------------------------------------------- */

static JsonNode *
load_one(const char *yaml)
{
    g_autoptr(GPtrArray) docs = NULL;
    g_autoptr(GError) e = NULL;
    if (!vmig_model_load_documents(yaml, -1, "test.yaml", &docs, &e))
        fail_msg("load: %s", e->message);
    assert_int_equal(docs->len, 1);
    return json_node_ref(g_ptr_array_index(docs, 0));
}

static const char *vmi_full_yaml =
    "apiVersion: kubevirt.io/v1\n"
    "kind: VirtualMachineInstance\n"
    "metadata:\n"
    "  name: vm1\n"
    "  namespace: ns1\n"
    "  uid: 2e432308-e94c-4866-a86a-388ce0b6cbc1\n"
    "  resourceVersion: \"42\"\n"
    "  labels: {app: web}\n"
    "  annotations: {kubevirt.io/allow-pod-bridge-network-live-migration: \"\"}\n"
    "  futureMetadata: keep\n"
    "spec:\n"
    "  evictionStrategy: LiveMigrateIfPossible\n"
    "  domain:\n"
    "    cpu: {model: host-passthrough, features: [{name: vmx, policy: require}]}\n"
    "    memory: {guest: 2Gi}\n"
    "    resources: {requests: {memory: 1Gi}}\n"
    "    features: {hypervPassthrough: {enabled: true}}\n"
    "    launchSecurity: {sev: {}}\n"
    "    devices:\n"
    "      interfaces:\n"
    "      - {name: default, masquerade: {}}\n"
    "      - {name: blue, binding: {name: passt}}\n"
    "      disks:\n"
    "      - {name: root, disk: {bus: virtio}}\n"
    "      - {name: cd, cdrom: {bus: sata}}\n"
    "      hostDevices: [{name: gpu1, deviceName: vendor.example/GPU_X}]\n"
    "      gpus: [{name: gpu2, deviceName: vendor.example/GPU_Y}]\n"
    "  networks:\n"
    "  - {name: default, pod: {}}\n"
    "  - {name: blue, multus: {networkName: blue-net}}\n"
    "  volumes:\n"
    "  - {name: root, containerDisk: {image: quay.io/x/y}}\n"
    "  - {name: cd, cloudInitNoCloud: {userData: \"#cloud-config\\n\"}}\n"
    "  - {name: d, dataVolume: {name: dv1}}\n"
    "  - {name: h, hostDisk: {path: /var/lib/h.img, type: DiskOrCreate, capacity: 1Gi, shared: "
    "true}}\n"
    "  - {name: e, ephemeral: {persistentVolumeClaim: {claimName: base}}}\n"
    "  - {name: s, secret: {secretName: s1}}\n"
    "status:\n"
    "  nodeName: node-a\n"
    "  phase: Running\n"
    "  migrationMethod: BlockMigration\n"
    "  evacuationNodeName: node-a\n"
    "  conditions:\n"
    "  - {type: Ready, status: \"True\"}\n"
    "  - {type: LiveMigratable, status: \"False\", reason: DisksNotLiveMigratable, message: m}\n"
    "  migrationState:\n"
    "    migrationUid: 11111111-2222-3333-4444-555555555555\n"
    "    sourceNode: node-a\n"
    "    targetNode: node-b\n"
    "    targetDirectMigrationNodePorts: {\"40001\": 0, \"40002\": 49152}\n"
    "    completed: false\n";

static void
test_vmi_full(void **state)
{
    g_autoptr(JsonNode) n = load_one(vmi_full_yaml);
    g_autoptr(GError) e = NULL;
    g_autoptr(VmigModelVmi) vmi = vmig_model_vmi_from_json(n, &e);
    if (!vmi)
        fail_msg("%s", e->message);
    assert_string_equal(vmi->meta.name, "vm1");
    assert_string_equal(vmi->meta.namespace, "ns1");
    assert_string_equal(vmi->meta.resource_version, "42");
    assert_string_equal(g_hash_table_lookup(vmi->meta.labels, "app"), "web");
    assert_string_equal(vmi->cpu_model, "host-passthrough");
    assert_int_equal(vmi->cpu_features->len, 1);
    assert_int_equal(vmi->memory_bytes, 2147483648); /* memory.guest wins over requests */
    assert_true(vmi->hyperv_passthrough);
    assert_int_equal(vmi->launch_security, VMIG_MODEL_LAUNCH_SECURITY_SEV);
    assert_int_equal(vmi->eviction_strategy, VMIG_MODEL_EVICTION_LIVE_MIGRATE_IF_POSSIBLE);
    assert_int_equal(vmi->interfaces->len, 2);
    const VmigModelInterface *i1 = g_ptr_array_index(vmi->interfaces, 1);
    assert_int_equal(i1->binding, VMIG_MODEL_BINDING_PLUGIN);
    assert_string_equal(i1->binding_plugin, "passt");
    const VmigModelNetwork *n1 = g_ptr_array_index(vmi->networks, 1);
    assert_string_equal(n1->multus_network_name, "blue-net");
    assert_int_equal(vmi->volumes->len, 6);
    const VmigModelVolume *h = vmig_model_vmi_find_volume(vmi, "h");
    assert_int_equal(h->kind, VMIG_MODEL_VOLUME_HOST_DISK);
    assert_true(h->host_disk_shared);
    assert_int_equal(h->capacity_bytes, 1073741824);
    assert_string_equal(vmig_model_vmi_find_volume(vmi, "e")->claim_name, "base");
    assert_string_equal(vmig_model_vmi_find_volume(vmi, "d")->claim_name, "dv1");
    assert_true(vmig_model_vmi_find_disk(vmi, "cd")->read_only);
    assert_string_equal(vmi->node_name, "node-a");
    assert_int_equal(vmi->phase, VMIG_MODEL_VMI_PHASE_RUNNING);
    assert_int_equal(vmi->migration_method, VMIG_MODEL_MIGRATION_METHOD_BLOCK);
    assert_string_equal(vmig_model_vmi_find_condition(vmi, "LiveMigratable")->reason,
                        "DisksNotLiveMigratable");
    assert_non_null(vmi->migration_state);
    assert_string_equal(vmi->migration_state->target_node, "node-b");
    assert_int_equal(GPOINTER_TO_INT(g_hash_table_lookup(
                         vmi->migration_state->target_direct_migration_node_ports, "40002")),
                     49152);
}

/* Each malformed variant must give an error naming the field, never a crash. */
typedef struct {
    const char *yaml;
    int code;
    const char *needle;
} BadCase;

static void
test_vmi_malformed(void **state)
{
    const BadCase cases[] = {
        {"kind: VirtualMachineInstance\napiVersion: kubevirt.io/v1\nspec: {domain: {}}\n",
         VMIG_MODEL_ERROR_MISSING, "metadata"},
        {"metadata: {name: vm1}\n", VMIG_MODEL_ERROR_MISSING, "spec"},
        {"metadata: {name: vm1}\nspec: {}\n", VMIG_MODEL_ERROR_MISSING, "spec.domain"},
        {"metadata: {name: Vm1}\nspec: {domain: {}}\n", VMIG_MODEL_ERROR_INVALID, "metadata.name"},
        {"metadata: {name: ../x}\nspec: {domain: {}}\n", VMIG_MODEL_ERROR_INVALID, "metadata.name"},
        {"metadata: {name: vm1, namespace: a/b}\nspec: {domain: {}}\n", VMIG_MODEL_ERROR_INVALID,
         "metadata.namespace"},
        {"metadata: {name: vm1, uid: nope}\nspec: {domain: {}}\n", VMIG_MODEL_ERROR_INVALID,
         "metadata.uid"},
        {"metadata: {name: 7}\nspec: {domain: {}}\n", VMIG_MODEL_ERROR_TYPE, "metadata.name"},
        {"metadata: {name: vm1, labels: {a: [1]}}\nspec: {domain: {}}\n", VMIG_MODEL_ERROR_TYPE,
         "metadata.labels.a"},
        {"metadata: {name: vm1}\nspec: {domain: {devices: {interfaces: {}}}}\n",
         VMIG_MODEL_ERROR_TYPE, "spec.domain.devices.interfaces"},
        {"metadata: {name: vm1}\nspec: {domain: {devices: {interfaces: [7]}}}\n",
         VMIG_MODEL_ERROR_TYPE, "interfaces[0]"},
        {"metadata: {name: vm1}\nspec: {domain: {devices: {interfaces: [{name: a, bridge: {}, "
         "masquerade: {}}]}}}\n",
         VMIG_MODEL_ERROR_INVALID, "more than one binding"},
        {"metadata: {name: vm1}\nspec: {domain: {memory: {guest: -1Gi}}}\n", VMIG_MODEL_ERROR_RANGE,
         "spec.domain.memory.guest"},
        {"metadata: {name: vm1}\nspec: {domain: {memory: {guest: lots}}}\n",
         VMIG_MODEL_ERROR_INVALID, "spec.domain.memory.guest"},
        {"metadata: {name: vm1}\nspec: {domain: {memory: {guest: \"1e1000\"}}}\n",
         VMIG_MODEL_ERROR_RANGE, "spec.domain.memory.guest"},
        {"metadata: {name: vm1}\nspec: {domain: {}, volumes: [{name: v}]}\n",
         VMIG_MODEL_ERROR_INVALID, "spec.volumes[0]"},
        {"metadata: {name: vm1}\nspec: {domain: {}, volumes: [{name: v, persistentVolumeClaim: "
         "{claimName: ../../etc}}]}\n",
         VMIG_MODEL_ERROR_INVALID, "claimName"},
        {"metadata: {name: vm1}\nspec: {domain: {}, volumes: [{name: v, persistentVolumeClaim: "
         "{}}]}\n",
         VMIG_MODEL_ERROR_MISSING, "claimName"},
        {"metadata: {name: vm1}\nspec: {domain: {}, evictionStrategy: Sometimes}\n",
         VMIG_MODEL_ERROR_INVALID, "spec.evictionStrategy"},
        {"metadata: {name: vm1}\nspec: {domain: {}}\nstatus: {phase: Dancing}\n",
         VMIG_MODEL_ERROR_INVALID, "status.phase"},
        {"metadata: {name: vm1}\nspec: {domain: {}}\nstatus: {nodeName: node/a}\n",
         VMIG_MODEL_ERROR_INVALID, "status.nodeName"},
        {"metadata: {name: vm1}\nspec: {domain: {}}\nstatus: {conditions: [{status: \"True\"}]}\n",
         VMIG_MODEL_ERROR_MISSING, "status.conditions[0].type"},
        {"metadata: {name: vm1}\nspec: {domain: {}}\nstatus: {migrationState: {migrationUid: "
         "x}}\n",
         VMIG_MODEL_ERROR_INVALID, "migrationUid"},
        {"metadata: {name: vm1}\nspec: {domain: {}}\nstatus: {migrationState: "
         "{targetDirectMigrationNodePorts: {a: 70000}}}\n",
         VMIG_MODEL_ERROR_RANGE, "targetDirectMigrationNodePorts"},
        {"apiVersion: v1\nkind: Pod\nmetadata: {name: vm1}\nspec: {domain: {}}\n",
         VMIG_MODEL_ERROR_KIND, "VirtualMachineInstance"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(JsonNode) n = load_one(cases[i].yaml);
        g_autoptr(GError) e = NULL;
        g_autoptr(VmigModelVmi) vmi = vmig_model_vmi_from_json(n, &e);
        if (vmi || !e)
            fail_msg("case %zu parsed", i);
        if (e->code != cases[i].code || !strstr(e->message, cases[i].needle))
            fail_msg("case %zu: code %d message \"%s\"", i, e->code, e->message);
    }
    /* Not an object at all. */
    g_autoptr(JsonNode) arr = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(arr, json_array_new());
    g_autoptr(GError) e = NULL;
    assert_null(vmig_model_vmi_from_json(arr, &e));
}

static const char *vmim_yaml =
    "apiVersion: kubevirt.io/v1\n"
    "kind: VirtualMachineInstanceMigration\n"
    "metadata: {name: mig1, namespace: ns1, uid: 11111111-2222-3333-4444-555555555555}\n"
    "spec: {vmiName: vm1, addedNodeSelector: {zone: a}}\n"
    "status:\n"
    "  phase: Scheduling\n"
    "  phaseTransitionTimestamps:\n"
    "  - {phase: Pending, phaseTransitionTimestamp: \"2026-11-29T19:00:00Z\"}\n"
    "  - {phase: Scheduling, phaseTransitionTimestamp: \"2026-11-29T19:00:01Z\"}\n"
    "  futureStatus: {x: 1}\n";

static void
test_vmim_and_phase_writeback(void **state)
{
    g_autoptr(JsonNode) n = load_one(vmim_yaml);
    g_autoptr(GError) e = NULL;
    g_autoptr(VmigModelVmim) m = vmig_model_vmim_from_json(n, &e);
    if (!m)
        fail_msg("%s", e->message);
    assert_string_equal(m->vmi_name, "vm1");
    assert_string_equal(g_hash_table_lookup(m->added_node_selector, "zone"), "a");
    assert_int_equal(m->phase, VMIG_MODEL_MIGRATION_PHASE_SCHEDULING);
    assert_int_equal(m->phase_transitions->len, 2);
    assert_false(vmig_model_migration_phase_is_final(m->phase));

    assert_true(vmig_model_vmim_set_phase(n, VMIG_MODEL_MIGRATION_PHASE_SCHEDULED,
                                          "2026-11-29T19:00:02Z", NULL));
    assert_true(vmig_model_vmim_set_phase(n, VMIG_MODEL_MIGRATION_PHASE_SCHEDULED,
                                          "2026-11-29T19:00:03Z", NULL));
    g_autoptr(VmigModelVmim) m2 = vmig_model_vmim_from_json(n, NULL);
    assert_int_equal(m2->phase, VMIG_MODEL_MIGRATION_PHASE_SCHEDULED);
    assert_int_equal(m2->phase_transitions->len, 3); /* unchanged phase adds no entry */
    /* Unknown fields survive the write. */
    assert_non_null(vmig_model_json_get(n, "status.futureStatus.x"));

    const char *bad[] = {
        "metadata: {name: mig1}\nspec: {}\n",
        "metadata: {name: mig1}\nspec: {vmiName: ../vm}\n",
        "metadata: {name: mig1}\nspec: {vmiName: vm1}\nstatus: {phase: Flying}\n",
        "metadata: {name: mig1}\nspec: {vmiName: vm1}\nstatus: {phaseTransitionTimestamps: "
        "[{phase: Nope}]}\n",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(JsonNode) b = load_one(bad[i]);
        g_autoptr(GError) be = NULL;
        g_autoptr(VmigModelVmim) bm = vmig_model_vmim_from_json(b, &be);
        assert_null(bm);
        assert_non_null(be);
    }
}

static void
test_writeback_preserves_unknown(void **state)
{
    g_autoptr(JsonNode) n = load_one(vmi_full_yaml);
    VmigModelCondition c = {.type = "LiveMigratable", .status = "True"};
    /* Changes: status False -> True. */
    assert_true(vmig_model_set_condition(n, &c, "2026-11-29T19:10:00Z", NULL));
    /* Same again: no change. */
    assert_false(vmig_model_set_condition(n, &c, "2026-11-29T19:11:00Z", NULL));
    assert_true(vmig_model_json_set_string(n, "status.migrationMethod", "LiveMigration", NULL));
    assert_true(vmig_model_json_set_string(n, "status.migrationState.targetNode", "node-c", NULL));
    g_autoptr(VmigModelVmi) vmi = vmig_model_vmi_from_json(n, NULL);
    const VmigModelCondition *lc = vmig_model_vmi_find_condition(vmi, "LiveMigratable");
    assert_string_equal(lc->status, "True");
    assert_null(lc->reason);
    assert_string_equal(lc->last_transition_time, "2026-11-29T19:10:00Z");
    assert_int_equal(vmi->conditions->len, 2);
    assert_string_equal(vmi->migration_state->target_node, "node-c");
    assert_string_equal(vmi->migration_state->source_node, "node-a");
    /* Fields the model does not know are still there, byte for byte. */
    JsonNode *fm = vmig_model_json_get(n, "metadata.futureMetadata");
    assert_string_equal(json_node_get_string(fm), "keep");
    JsonNode *img = vmig_model_json_get(n, "spec.domain.cpu");
    assert_non_null(img);
    /* JSON input is writable too; a sealed node is refused, not crashed on. */
    g_autoptr(GPtrArray) docs = NULL;
    assert_true(vmig_model_load_documents(
        "{\"metadata\":{\"name\":\"vm1\"},\"spec\":{\"domain\":{}},\"x\":[1]}", -1, "j", &docs,
        NULL));
    JsonNode *j = g_ptr_array_index(docs, 0);
    assert_true(vmig_model_set_condition(j, &c, "t", NULL));
    assert_true(vmig_model_json_set_string(j, "status.migrationMethod", "LiveMigration", NULL));
    g_autoptr(JsonNode) sealed = json_node_copy(j);
    json_node_seal(sealed);
    g_autoptr(GError) se = NULL;
    assert_false(vmig_model_json_set_string(sealed, "status.phase", "Running", &se));
    assert_int_equal(se->code, VMIG_MODEL_ERROR_TYPE);
    g_clear_error(&se);
    assert_false(vmig_model_set_condition(sealed, &c, "t", &se));
    assert_non_null(se);
    g_clear_error(&se);
    assert_false(vmig_model_vmim_set_phase(sealed, VMIG_MODEL_MIGRATION_PHASE_FAILED, "t", &se));
    assert_non_null(se);
    /* A set through a non-object refuses. */
    g_autoptr(GError) e = NULL;
    assert_false(vmig_model_json_set_string(n, "metadata.name.x", "y", &e));
    assert_int_equal(e->code, VMIG_MODEL_ERROR_TYPE);
}

static void
test_pvc_dv_node_kv_policy(void **state)
{
    g_autoptr(JsonNode) pn = load_one(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: pvc1, namespace: ns1}\n"
        "spec: {accessModes: [ReadWriteMany], volumeMode: Block}\n"
        "status: {phase: Bound, accessModes: [ReadWriteOnce], capacity: {storage: 10Gi}}\n");
    g_autoptr(VmigModelPvc) pvc = vmig_model_pvc_from_json(pn, NULL);
    assert_non_null(pvc);
    assert_int_equal(pvc->spec_access_modes, VMIG_MODEL_ACCESS_RWX);
    assert_int_equal(pvc->status_access_modes, VMIG_MODEL_ACCESS_RWO);
    assert_false(vmig_model_pvc_is_shared(pvc)); /* status decides, not spec */
    assert_int_equal(pvc->capacity_bytes, 10737418240);

    g_autoptr(JsonNode) dn = load_one("apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\n"
                                      "metadata: {name: dv1, namespace: ns1}\n");
    g_autoptr(VmigModelDataVolume) dv = vmig_model_data_volume_from_json(dn, NULL);
    assert_string_equal(dv->claim_name, "dv1");

    g_autoptr(JsonNode) nn = load_one(
        "apiVersion: v1\nkind: Node\nmetadata: {name: node-a, labels: "
        "{host-model-cpu.node.kubevirt.io/Skylake: \"true\"}}\n"
        "spec: {unschedulable: true, taints: [{key: kubevirt.io/drain, effect: NoSchedule}]}\n"
        "status: {addresses: [{type: InternalIP, address: 10.77.0.1}], allocatable: {memory: "
        "8Gi, cpu: \"4\"}}\n");
    g_autoptr(GError) e = NULL;
    g_autoptr(VmigModelNode) node = vmig_model_node_from_json(nn, &e);
    if (!node)
        fail_msg("%s", e->message);
    assert_true(node->unschedulable);
    assert_true(vmig_model_node_has_taint(node, "kubevirt.io/drain"));
    assert_int_equal(node->allocatable_memory_bytes, 8589934592);
    assert_string_equal(((VmigModelNodeAddress *)g_ptr_array_index(node->addresses, 0))->address,
                        "10.77.0.1");

    g_autoptr(JsonNode) kn = load_one(
        "apiVersion: kubevirt.io/v1\nkind: KubeVirt\nmetadata: {name: kubevirt, namespace: "
        "kubevirt}\nspec:\n  configuration:\n    evictionStrategy: LiveMigrate\n"
        "    network: {binding: {mybind: {sidecarImage: x, migration: {}}, other: {}}}\n"
        "    migrations: {bandwidthPerMigration: 64Mi, parallelMigrationsPerCluster: 10, "
        "allowPostCopy: true, nodeDrainTaintKey: x/drain}\n");
    g_autoptr(VmigModelKubevirt) kv = vmig_model_kubevirt_from_json(kn, &e);
    if (!kv)
        fail_msg("%s", e->message);
    assert_int_equal(kv->eviction_strategy, VMIG_MODEL_EVICTION_LIVE_MIGRATE);
    assert_int_equal(kv->migrations.set,
                     VMIG_MODEL_MIG_BANDWIDTH | VMIG_MODEL_MIG_PARALLEL_PER_CLUSTER |
                         VMIG_MODEL_MIG_ALLOW_POST_COPY | VMIG_MODEL_MIG_NODE_DRAIN_TAINT_KEY);
    assert_int_equal(kv->migrations.bandwidth_per_migration.units, 67108864);
    assert_int_equal(kv->migratable_binding_plugins->len, 1);

    g_autoptr(JsonNode) bad = load_one(
        "apiVersion: kubevirt.io/v1\nkind: KubeVirt\nmetadata: {name: kubevirt, namespace: "
        "kubevirt}\nspec: {configuration: {migrations: {bandwidthPerMigration: fast}}}\n");
    g_clear_error(&e);
    assert_null(vmig_model_kubevirt_from_json(bad, &e));
    assert_non_null(strstr(e->message, "spec.configuration.migrations.bandwidthPerMigration"));
    assert_non_null(strstr(e->message, "KubeVirt kubevirt/kubevirt"));

    g_autoptr(JsonNode) mp = load_one(
        "apiVersion: migrations.kubevirt.io/v1alpha1\nkind: MigrationPolicy\nmetadata: {name: p1}\n"
        "spec: {selectors: {namespaceSelector: {team: a}, virtualMachineInstanceSelector: {app: "
        "web}}, allowAutoConverge: true, completionTimeoutPerGiB: 300, "
        "parallelMigrationsPerCluster: 9}\n");
    g_autoptr(VmigModelMigrationPolicy) pol = vmig_model_migration_policy_from_json(mp, NULL);
    assert_non_null(pol);
    /* parallelMigrationsPerCluster is not a policy field: ignored. */
    assert_int_equal(pol->options.set, VMIG_MODEL_MIG_ALLOW_AUTO_CONVERGE |
                                           VMIG_MODEL_MIG_COMPLETION_TIMEOUT_PER_GIB);
    assert_int_equal(g_hash_table_size(pol->namespace_selector), 1);
}

/* ---- loader --------------------------------------------------------------------------- */

static void
test_loader(void **state)
{
    g_autoptr(GPtrArray) docs = NULL;
    g_autoptr(GError) e = NULL;
    const char *multi = "---\na: 1\nb: \"1\"\nc: true\nd: ~\ne: 1.5\nf: 0x10\n---\n---\n"
                        "kind: List\nitems: [{x: 1}, {x: 2}]\n";
    assert_true(vmig_model_load_documents(multi, -1, "m.yaml", &docs, &e));
    assert_int_equal(docs->len, 3);
    JsonObject *o = json_node_get_object(g_ptr_array_index(docs, 0));
    assert_int_equal(json_node_get_value_type(json_object_get_member(o, "a")), G_TYPE_INT64);
    assert_int_equal(json_node_get_value_type(json_object_get_member(o, "b")), G_TYPE_STRING);
    assert_int_equal(json_node_get_value_type(json_object_get_member(o, "c")), G_TYPE_BOOLEAN);
    assert_true(JSON_NODE_HOLDS_NULL(json_object_get_member(o, "d")));
    assert_int_equal(json_node_get_value_type(json_object_get_member(o, "e")), G_TYPE_DOUBLE);
    assert_int_equal(json_node_get_value_type(json_object_get_member(o, "f")), G_TYPE_STRING);
    g_clear_pointer(&docs, g_ptr_array_unref);

    /* JSON input. */
    assert_true(
        vmig_model_load_documents(" {\"kind\":\"X\",\"a\":[1,2]}", -1, "x.json", &docs, &e));
    assert_int_equal(docs->len, 1);
    g_clear_pointer(&docs, g_ptr_array_unref);

    /* Errors name the origin and the line. */
    const struct {
        const char *text;
        const char *needle;
    } bad[] = {
        {"a: 1\nb: [1, 2\n", "bad.yaml:"}, {"a: 1\na: 2\n", "bad.yaml:2: duplicate key"},
        {"a: &x 1\nb: *x\n", "anchors"},   {"{\"a\": }", "bad.yaml"},
        {"? [1]\n: 2\n", "mapping keys"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_clear_error(&e);
        if (vmig_model_load_documents(bad[i].text, -1, "bad.yaml", &docs, &e))
            fail_msg("bad case %zu loaded", i);
        if (!strstr(e->message, bad[i].needle))
            fail_msg("bad case %zu: %s", i, e->message);
    }
    /* Deep nesting is refused in both syntaxes, without recursion trouble. */
    GString *deep = g_string_new(NULL);
    for (int i = 0; i < 100000; i++)
        g_string_append_c(deep, '[');
    g_clear_error(&e);
    assert_false(vmig_model_load_documents(deep->str, -1, "deep.json", &docs, &e));
    assert_int_equal(e->code, VMIG_MODEL_ERROR_RANGE);
    g_string_truncate(deep, 0);
    for (int i = 0; i < 200; i++)
        g_string_append(deep, "- ");
    g_string_append(deep, "x\n");
    g_clear_error(&e);
    assert_false(vmig_model_load_documents(deep->str, -1, "deep.yaml", &docs, &e));
    assert_non_null(strstr(e->message, "deeper"));
    g_string_free(deep, TRUE);

    /* Brackets inside strings do not count towards the depth. */
    g_autoptr(GString) quoted = g_string_new("{\"a\": \"");
    for (int i = 0; i < 1000; i++)
        g_string_append(quoted, "[{");
    g_string_append(quoted, "\\\"\"}");
    g_clear_error(&e);
    g_autoptr(JsonNode) qn = vmig_model_parse_json(quoted->str, -1, &e);
    if (!qn)
        fail_msg("%s", e->message);
    g_clear_error(&e);
    assert_null(vmig_model_parse_json("", -1, &e));
    assert_int_equal(e->code, VMIG_MODEL_ERROR_PARSE);

    g_clear_error(&e);
    assert_false(vmig_model_load_file("/nonexistent/vmig.yaml", &docs, &e));
    assert_int_equal(e->code, VMIG_MODEL_ERROR_IO);
}

static void
test_enum_tables(void **state)
{
    VmigModelMigrationPhase p;
    const char *names[] = {"Pending",     "Scheduling", "Scheduled", "PreparingTarget",
                           "TargetReady", "Running",    "Succeeded", "Failed"};
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        assert_true(vmig_model_migration_phase_from_string(names[i], &p));
        assert_string_equal(vmig_model_migration_phase_to_string(p), names[i]);
    }
    assert_false(vmig_model_migration_phase_from_string("Done", &p));
    assert_false(vmig_model_migration_phase_from_string(NULL, &p));
    assert_string_equal(vmig_model_migration_phase_to_string(99), "unknown");
    VmigModelMigrationMethod m;
    assert_true(vmig_model_migration_method_from_string("BlockMigration", &m));
    assert_int_equal(m, VMIG_MODEL_MIGRATION_METHOD_BLOCK);
    VmigModelEvictionStrategy s;
    assert_true(vmig_model_eviction_strategy_from_string("LiveMigrateIfPossible", &s));
    VmigModelVolumeKind k;
    assert_true(vmig_model_volume_kind_from_string("cloudInitNoCloud", &k));
    assert_true(vmig_model_volume_kind_is_generated(k));
    assert_false(vmig_model_volume_kind_is_generated(VMIG_MODEL_VOLUME_DATA_VOLUME));
    VmigModelVmiPhase vp;
    assert_true(vmig_model_vmi_phase_from_string("Running", &vp));
    assert_string_equal(vmig_model_binding_to_string(VMIG_MODEL_BINDING_MASQUERADE), "masquerade");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantity_table),
        cmocka_unit_test(test_quantity_json_and_helpers),
        cmocka_unit_test(test_names_table),
        cmocka_unit_test(test_uid),
        cmocka_unit_test(test_vmi_full),
        cmocka_unit_test(test_vmi_malformed),
        cmocka_unit_test(test_vmim_and_phase_writeback),
        cmocka_unit_test(test_writeback_preserves_unknown),
        cmocka_unit_test(test_pvc_dv_node_kv_policy),
        cmocka_unit_test(test_loader),
        cmocka_unit_test(test_enum_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
