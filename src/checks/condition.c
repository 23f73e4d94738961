/* condition.c - the LiveMigratable condition as KubeVirt writes it, and change detection so the
 * daemon writes the VMI only when something changed. */
#include "vmig/checks.h"

VmigModelCondition *
vmig_checks_condition(const VmigChecksResult *r)
{
    VmigModelCondition *c = g_new0(VmigModelCondition, 1);
    c->type = g_strdup(VMIG_CHECKS_CONDITION_TYPE);
    if (r->migratable) {
        c->status = g_strdup("True");
    } else {
        const VmigChecksFinding *f = g_ptr_array_index(r->findings, 0);
        c->status = g_strdup("False");
        c->reason = g_strdup(vmig_checks_reason_to_string(f->reason));
        c->message = g_strdup(f->message);
    }
    return c;
}

JsonNode *
vmig_checks_condition_to_json(const VmigChecksResult *r, const char *now)
{
    g_autoptr(VmigModelCondition) c = vmig_checks_condition(r);
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, c->type);
    json_builder_set_member_name(b, "status");
    json_builder_add_string_value(b, c->status);
    if (c->reason) {
        json_builder_set_member_name(b, "reason");
        json_builder_add_string_value(b, c->reason);
        json_builder_set_member_name(b, "message");
        json_builder_add_string_value(b, c->message);
    }
    json_builder_set_member_name(b, "lastProbeTime");
    json_builder_add_null_value(b);
    json_builder_set_member_name(b, "lastTransitionTime");
    if (now)
        json_builder_add_string_value(b, now);
    else
        json_builder_add_null_value(b);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

gboolean
vmig_checks_status_changed(const VmigModelVmi *vmi, const VmigChecksResult *r)
{
    g_autoptr(VmigModelCondition) want = vmig_checks_condition(r);
    const VmigModelCondition *have = vmig_model_vmi_find_condition(vmi, VMIG_CHECKS_CONDITION_TYPE);
    if (vmi->migration_method != r->method)
        return TRUE;
    if (!have)
        return TRUE;
    return g_strcmp0(have->status, want->status) != 0 ||
           g_strcmp0(have->reason ? have->reason : "", want->reason ? want->reason : "") != 0 ||
           g_strcmp0(have->message ? have->message : "", want->message ? want->message : "") != 0;
}

gboolean
vmig_checks_write_status(JsonNode *vmi_node, const VmigChecksResult *r, const char *now,
                         GError **error)
{
    g_autoptr(VmigModelCondition) c = vmig_checks_condition(r);
    g_autoptr(GError) e = NULL;
    vmig_model_set_condition(vmi_node, c, now, &e);
    if (e) {
        g_propagate_error(error, g_steal_pointer(&e));
        return FALSE;
    }
    return vmig_model_json_set_string(vmi_node, "status.migrationMethod",
                                      vmig_model_migration_method_to_string(r->method), error);
}
