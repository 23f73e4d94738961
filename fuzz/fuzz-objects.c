/* fuzz-objects.c - libFuzzer target: arbitrary bytes as JSON or YAML, through every object
 * parser of vmig/model.h and the source checks. Must never crash, leak or hang. */
#include <stdint.h>
#include <stdlib.h>

#include "vmig/checks.h"
#include "vmig/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
exercise(JsonNode *doc)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(VmigModelVmi) vmi = vmig_model_vmi_from_json(doc, &e);
    if (vmi) {
        VmigChecksInput in = {.vmi = vmi, .node_facts_known = TRUE};
        g_autoptr(VmigChecksResult) r = vmig_checks_source(&in);
        json_node_unref(vmig_checks_condition_to_json(r, "2026-01-01T00:00:00Z"));
        (void)vmig_checks_status_changed(vmi, r);
        (void)vmig_checks_write_status(doc, r, "2026-01-01T00:00:00Z", NULL);
    }
    g_clear_error(&e);
    g_autoptr(VmigModelVmim) vmim = vmig_model_vmim_from_json(doc, &e);
    if (vmim)
        (void)vmig_model_vmim_set_phase(doc, VMIG_MODEL_MIGRATION_PHASE_FAILED, "t", NULL);
    g_clear_error(&e);
    vmig_model_pvc_free(vmig_model_pvc_from_json(doc, NULL));
    vmig_model_data_volume_free(vmig_model_data_volume_from_json(doc, NULL));
    vmig_model_node_free(vmig_model_node_from_json(doc, NULL));
    vmig_model_kubevirt_free(vmig_model_kubevirt_from_json(doc, NULL));
    vmig_model_migration_policy_free(vmig_model_migration_policy_from_json(doc, NULL));
    vmig_model_namespace_free(vmig_model_namespace_from_json(doc, NULL));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    g_autoptr(GPtrArray) docs = NULL;
    if (!vmig_model_load_documents((const char *)data, (gssize)size, "fuzz", &docs, NULL))
        return 0;
    for (guint i = 0; i < docs->len; i++) {
        /* The parsers take JSON from the API server: force the kind so every parser runs on
         * every document, not only on the one its kind names. */
        JsonNode *doc = g_ptr_array_index(docs, i);
        if (JSON_NODE_HOLDS_OBJECT(doc)) {
            JsonObject *o = json_node_get_object(doc);
            if (json_object_has_member(o, "kind"))
                json_object_remove_member(o, "kind");
        }
        exercise(doc);
    }
    return 0;
}
