/* test-controller-edit.c - precondition-checked edits of live objects (src/controller/edit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "edit.h"

#define UID   "5b2a7c1e-0d1f-4c55-9a77-0000000000aa"
#define OTHER "5b2a7c1e-0d1f-4c55-9a77-0000000000bb"

static JsonNode *
parse(const char *json)
{
    JsonNode *n = json_from_string(json, NULL);
    assert_non_null(n);
    return n;
}

static VmigKubeMutateResult
apply(JsonNode *obj, VmigCtlEdit *e, GError **error)
{
    return vmig_ctl_edit_apply(json_node_get_object(obj), e, error);
}

static const char *
str_at(JsonNode *root, const char *path)
{
    JsonNode *n = vmig_model_json_get(root, path);
    return n && JSON_NODE_TYPE(n) == JSON_NODE_VALUE ? json_node_get_string(n) : NULL;
}

/* B04: a write based on the live object keeps fields other writers added. */
static void
test_keeps_other_writers_fields(void **state)
{
    g_autoptr(JsonNode) vmi =
        parse("{\"metadata\":{\"name\":\"vm1\",\"namespace\":\"ns1\",\"uid\":\"u1\"},"
              "\"status\":{\"conditions\":[{\"type\":\"AgentConnected\",\"status\":\"True\"}],"
              "\"migrationState\":{\"migrationUid\":\"" UID "\",\"targetNode\":\"node-b\","
              "\"unknownField\":7}}}");
    g_autoptr(VmigCtlEdit) e = vmig_ctl_edit_new("VirtualMachineInstance ns1/vm1");
    e->claim_uid = g_strdup(UID);
    vmig_ctl_edit_set_string(e, "status.migrationState.targetNodeAddress", "10.77.0.2");
    g_autoptr(GError) err = NULL;
    assert_int_equal(apply(vmi, e, &err), VMIG_KUBE_MUTATE_CHANGED);
    assert_string_equal(str_at(vmi, "status.migrationState.targetNodeAddress"), "10.77.0.2");
    assert_string_equal(str_at(vmi, "status.migrationState.targetNode"), "node-b");
    assert_non_null(vmig_model_json_get(vmi, "status.migrationState.unknownField"));
    assert_non_null(vmig_model_json_get(vmi, "status.conditions"));
    /* Applying again changes nothing. */
    assert_int_equal(apply(vmi, e, &err), VMIG_KUBE_MUTATE_UNCHANGED);
}

/* B04 variant 5 / B19: never overwrite a claim held by another live migration. */
static gboolean
holder_live(const char *ns, const char *uid, gpointer data)
{
    return GPOINTER_TO_INT(data);
}

static void
test_claim_preconditions(void **state)
{
    const char *held = "{\"metadata\":{\"name\":\"vm1\",\"namespace\":\"ns1\"},"
                       "\"status\":{\"migrationState\":{\"migrationUid\":\"" OTHER "\","
                       "\"completed\":true,\"targetNode\":\"node-c\"}}}";
    for (int live = 0; live <= 1; live++) {
        g_autoptr(JsonNode) vmi = parse(held);
        g_autoptr(VmigCtlEdit) e = vmig_ctl_edit_new("VirtualMachineInstance ns1/vm1");
        e->claim_uid = g_strdup(UID);
        e->claim_new = TRUE;
        e->reset_migration_state = TRUE;
        e->holder_live = holder_live;
        e->holder_live_data = GINT_TO_POINTER(live);
        vmig_ctl_edit_set_string(e, "status.migrationState.migrationUid", UID);
        vmig_ctl_edit_set_string(e, "status.migrationState.sourceNode", "node-a");
        g_autoptr(GError) err = NULL;
        VmigKubeMutateResult r = apply(vmi, e, &err);
        if (live) {
            assert_int_equal(r, VMIG_KUBE_MUTATE_REFUSE);
            assert_true(g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_REFUSED));
            assert_non_null(strstr(err->message, "VirtualMachineInstance ns1/vm1"));
            assert_non_null(strstr(err->message, OTHER));
            assert_string_equal(str_at(vmi, "status.migrationState.migrationUid"), OTHER);
        } else {
            /* The final holder's state is replaced, not merged into ours. */
            assert_int_equal(r, VMIG_KUBE_MUTATE_CHANGED);
            assert_string_equal(str_at(vmi, "status.migrationState.migrationUid"), UID);
            assert_null(vmig_model_json_get(vmi, "status.migrationState.completed"));
            assert_null(vmig_model_json_get(vmi, "status.migrationState.targetNode"));
        }
    }
    /* An edit for the claim owner is refused when the claim is someone else's. */
    g_autoptr(JsonNode) vmi = parse(held);
    g_autoptr(VmigCtlEdit) e = vmig_ctl_edit_new("VirtualMachineInstance ns1/vm1");
    e->claim_uid = g_strdup(UID);
    vmig_ctl_edit_set_string(e, "status.nodeName", "node-b");
    g_autoptr(GError) err = NULL;
    assert_int_equal(apply(vmi, e, &err), VMIG_KUBE_MUTATE_REFUSE);
    assert_null(str_at(vmi, "status.nodeName"));
}

static void
test_phase_uid_deleting_target(void **state)
{
    const char *vmim = "{\"metadata\":{\"name\":\"mig1\",\"namespace\":\"ns1\",\"uid\":\"" UID
                       "\",\"labels\":{\"a\":\"b\"}},"
                       "\"status\":{\"phase\":\"Scheduled\"}}";
    static const VmigModelMigrationPhase sched[] = {VMIG_MODEL_MIGRATION_PHASE_SCHEDULED};
    static const VmigModelMigrationPhase pend[] = {VMIG_MODEL_MIGRATION_PHASE_PENDING};
    {
        g_autoptr(JsonNode) o = parse(vmim);
        g_autoptr(VmigCtlEdit) e = vmig_ctl_edit_new("VirtualMachineInstanceMigration ns1/mig1");
        e->require_uid = g_strdup(UID);
        e->set_phase = TRUE;
        e->phase = VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET;
        e->now = g_strdup("2026-11-29T19:03:02Z");
        vmig_ctl_edit_from_phases(e, sched, 1);
        vmig_ctl_edit_set_key(e, "metadata.labels", "kubevirt.io/vmi-name",
                              json_node_init_string(json_node_alloc(), "vm1"));
        e->add_finalizer = g_strdup("kubevirt.io/migrationJobFinalize");
        g_autoptr(GError) err = NULL;
        assert_int_equal(apply(o, e, &err), VMIG_KUBE_MUTATE_CHANGED);
        assert_string_equal(str_at(o, "status.phase"), "PreparingTarget");
        assert_string_equal(str_at(o, "metadata.labels.a"), "b");
        JsonObject *labels = json_node_get_object(vmig_model_json_get(o, "metadata.labels"));
        assert_string_equal(json_object_get_string_member(labels, "kubevirt.io/vmi-name"), "vm1");
        JsonArray *fin = json_node_get_array(vmig_model_json_get(o, "metadata.finalizers"));
        assert_int_equal(json_array_get_length(fin), 1);
        /* removing the finalizer removes the member */
        g_autoptr(VmigCtlEdit) r = vmig_ctl_edit_new("VirtualMachineInstanceMigration ns1/mig1");
        r->remove_finalizer = g_strdup("kubevirt.io/migrationJobFinalize");
        assert_int_equal(apply(o, r, &err), VMIG_KUBE_MUTATE_CHANGED);
        assert_null(vmig_model_json_get(o, "metadata.finalizers"));
    }
    {
        /* wrong phase, replaced object, being deleted, wrong target: all refused */
        g_autoptr(JsonNode) o = parse(vmim);
        g_autoptr(VmigCtlEdit) e = vmig_ctl_edit_new("VirtualMachineInstanceMigration ns1/mig1");
        vmig_ctl_edit_from_phases(e, pend, 1);
        g_autoptr(GError) err = NULL;
        assert_int_equal(apply(o, e, &err), VMIG_KUBE_MUTATE_REFUSE);
        assert_non_null(strstr(err->message, "status.phase is 'Scheduled'"));
        g_clear_error(&err);
        g_autoptr(VmigCtlEdit) u = vmig_ctl_edit_new("x");
        u->require_uid = g_strdup(OTHER);
        assert_int_equal(apply(o, u, &err), VMIG_KUBE_MUTATE_REFUSE);
        assert_non_null(strstr(err->message, "replaced"));
        g_clear_error(&err);
        g_autoptr(JsonNode) d = parse("{\"metadata\":{\"name\":\"m\",\"deletionTimestamp\":"
                                      "\"2026-11-29T19:03:02Z\"},\"status\":{"
                                      "\"migrationState\":{\"targetNode\":\"node-c\"}}}");
        g_autoptr(VmigCtlEdit) del = vmig_ctl_edit_new("x");
        del->not_deleting = TRUE;
        assert_int_equal(apply(d, del, &err), VMIG_KUBE_MUTATE_REFUSE);
        g_clear_error(&err);
        g_autoptr(VmigCtlEdit) t = vmig_ctl_edit_new("x");
        t->require_target = g_strdup("node-b");
        assert_int_equal(apply(d, t, &err), VMIG_KUBE_MUTATE_REFUSE);
        assert_non_null(strstr(err->message, "node-c"));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keeps_other_writers_fields),
        cmocka_unit_test(test_claim_preconditions),
        cmocka_unit_test(test_phase_uid_deleting_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
