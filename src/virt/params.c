/* params.c - the ONE table mapping vmigrated's migration settings to the flags and
 * typed parameters of virDomainMigrateToURI3 (see vmig/virt.h, docs/virt.md).
 * Add a setting: add a field to VmigVirtMigrateSettings and a row here. */
#include "vmig/virt.h"

#include <libvirt/libvirt.h>
#include <stddef.h>
#include <string.h>

G_DEFINE_QUARK(vmig - virt - error - quark, vmig_virt_error)

/* How a row reads its setting. */
typedef enum {
    ROW_ALWAYS,    /* flag always set */
    ROW_BOOL,      /* gboolean: flag when TRUE */
    ROW_STRING,    /* const char *: parameter when non-NULL */
    ROW_STRV,      /* const char *const *: flag + one parameter per element when non-empty */
    ROW_PARALLEL,  /* gboolean + guint connections: flag + INT parameter */
    ROW_BANDWIDTH, /* guint64 MiB/s: ULLONG parameter, 0 sent as the maximum */
    ROW_ULLONG,    /* guint64: ULLONG parameter when non-zero */
} RowKind;

typedef struct {
    const char *setting; /* our name, as in docs/virt.md */
    RowKind kind;
    gsize offset;      /* of the field in VmigVirtMigrateSettings */
    guint64 flag;      /* VIR_MIGRATE_* or 0 */
    const char *param; /* VIR_MIGRATE_PARAM_* or NULL */
} ParamRow;

#define FIELD(f) offsetof(VmigVirtMigrateSettings, f)

static const ParamRow param_table[] = {
    {"live", ROW_ALWAYS, 0, VIR_MIGRATE_LIVE, NULL},
    {"peer2peer", ROW_ALWAYS, 0, VIR_MIGRATE_PEER2PEER, NULL},
    {"persist_dest", ROW_ALWAYS, 0, VIR_MIGRATE_PERSIST_DEST, NULL},
    {"auto_converge", ROW_BOOL, FIELD(auto_converge), VIR_MIGRATE_AUTO_CONVERGE, NULL},
    {"allow_postcopy", ROW_BOOL, FIELD(allow_postcopy), VIR_MIGRATE_POSTCOPY, NULL},
    {"postcopy_resume", ROW_BOOL, FIELD(postcopy_resume), VIR_MIGRATE_POSTCOPY_RESUME, NULL},
    {"shared_storage_declared", ROW_BOOL, FIELD(shared_storage_declared), VIR_MIGRATE_UNSAFE, NULL},
    {"parallel", ROW_PARALLEL, FIELD(parallel), VIR_MIGRATE_PARALLEL,
     VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS},
    {"migrate_uri", ROW_STRING, FIELD(migrate_uri), 0, VIR_MIGRATE_PARAM_URI},
    {"migrate_disks", ROW_STRV, FIELD(migrate_disks), VIR_MIGRATE_NON_SHARED_INC,
     VIR_MIGRATE_PARAM_MIGRATE_DISKS},
    {"disks_uri", ROW_STRING, FIELD(disks_uri), 0, VIR_MIGRATE_PARAM_DISKS_URI},
    {"bandwidth_mibps", ROW_BANDWIDTH, FIELD(bandwidth_mibps), 0, VIR_MIGRATE_PARAM_BANDWIDTH},
    {"bandwidth_postcopy_mibps", ROW_ULLONG, FIELD(bandwidth_postcopy_mibps), 0,
     VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY},
    {"destination_xml", ROW_STRING, FIELD(destination_xml), 0, VIR_MIGRATE_PARAM_DEST_XML},
};

/* Flag names for logs, one table. */
static const struct {
    guint64 flag;
    const char *name;
} flag_names[] = {
    {VIR_MIGRATE_LIVE, "LIVE"},
    {VIR_MIGRATE_PEER2PEER, "PEER2PEER"},
    {VIR_MIGRATE_PERSIST_DEST, "PERSIST_DEST"},
    {VIR_MIGRATE_NON_SHARED_INC, "NON_SHARED_INC"},
    {VIR_MIGRATE_UNSAFE, "UNSAFE"},
    {VIR_MIGRATE_AUTO_CONVERGE, "AUTO_CONVERGE"},
    {VIR_MIGRATE_POSTCOPY, "POSTCOPY"},
    {VIR_MIGRATE_POSTCOPY_RESUME, "POSTCOPY_RESUME"},
    {VIR_MIGRATE_PARALLEL, "PARALLEL"},
};

#define FIELD_PTR(s, row, type) ((type const *)((const char *)(s) + (row)->offset))

static void
param_clear(gpointer p)
{
    VmigVirtParam *param = p;
    g_clear_pointer(&param->s, g_free);
}

static void
add_string(VmigVirtMigrateCall *call, const char *name, const char *value)
{
    VmigVirtParam p = {.name = name, .type = VMIG_VIRT_PARAM_STRING, .s = g_strdup(value)};
    g_array_append_val(call->params, p);
}

static gboolean
check_uri(const char *what, const char *field, const char *value, const char *const *schemes,
          gboolean required, GError **error)
{
    if (!value) {
        if (!required)
            return TRUE;
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID, "%s: %s is required", what,
                    field);
        return FALSE;
    }
    for (const char *const *s = schemes; *s; s++) {
        if (g_str_has_prefix(value, *s) && value[strlen(*s)] != '\0')
            return TRUE;
    }
    g_autofree char *list = g_strjoinv("|", (char **)schemes);
    g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID, "%s: %s \"%s\" is not a %s URI",
                what, field, value, list);
    return FALSE;
}

static gboolean
validate(const VmigVirtMigrateSettings *s, const char *what, GError **error)
{
    static const char *const dconn_schemes[] = {"qemu+unix://", "qemu+tcp://", "qemu+tls://",
                                                "qemu://", NULL};
    static const char *const data_schemes[] = {"unix://", "tcp://", NULL};

    if (!check_uri(what, "dconnuri", s->dconnuri, dconn_schemes, TRUE, error) ||
        !check_uri(what, "migrate_uri", s->migrate_uri, data_schemes, TRUE, error) ||
        !check_uri(what, "disks_uri", s->disks_uri, data_schemes, FALSE, error))
        return FALSE;

    gboolean have_disks = s->migrate_disks && s->migrate_disks[0];
    if (s->disks_uri && !have_disks) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                    "%s: disks_uri \"%s\" given without migrate_disks", what, s->disks_uri);
        return FALSE;
    }
    for (gsize i = 0; have_disks && s->migrate_disks[i]; i++) {
        const char *d = s->migrate_disks[i];
        if (!*d || strchr(d, '/') || strstr(d, "..") || strchr(d, ',')) {
            g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                        "%s: migrate_disks[%zu] \"%s\" is not a disk target name", what, i, d);
            return FALSE;
        }
    }
    if (s->bandwidth_mibps > VMIG_VIRT_BANDWIDTH_UNLIMITED) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                    "%s: bandwidth_mibps %" G_GUINT64_FORMAT
                    " is above libvirt's maximum %" G_GUINT64_FORMAT,
                    what, s->bandwidth_mibps, VMIG_VIRT_BANDWIDTH_UNLIMITED);
        return FALSE;
    }
    /* libvirt resumes only a migration that ran with VIR_MIGRATE_POSTCOPY, and wants the
     * same flags again. */
    if (s->postcopy_resume && !s->allow_postcopy) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                    "%s: postcopy_resume needs allow_postcopy", what);
        return FALSE;
    }
    if (s->bandwidth_postcopy_mibps > VMIG_VIRT_BANDWIDTH_UNLIMITED) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                    "%s: bandwidth_postcopy_mibps %" G_GUINT64_FORMAT
                    " is above libvirt's maximum %" G_GUINT64_FORMAT,
                    what, s->bandwidth_postcopy_mibps, VMIG_VIRT_BANDWIDTH_UNLIMITED);
        return FALSE;
    }
    /* QEMU's multifd-channels is a uint8. */
    if (s->parallel && s->parallel_connections > 255) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                    "%s: parallel_connections %u is above 255", what, s->parallel_connections);
        return FALSE;
    }
    return TRUE;
}

VmigVirtMigrateCall *
vmig_virt_migrate_call_build(const VmigVirtMigrateSettings *s, const char *what, GError **error)
{
    if (!what)
        what = "migration";
    if (!validate(s, what, error))
        return NULL;

    g_autoptr(VmigVirtMigrateCall) call = g_new0(VmigVirtMigrateCall, 1);
    call->params = g_array_new(FALSE, TRUE, sizeof(VmigVirtParam));
    g_array_set_clear_func(call->params, param_clear);
    call->dconnuri = g_strdup(s->dconnuri);

    for (gsize r = 0; r < G_N_ELEMENTS(param_table); r++) {
        const ParamRow *row = &param_table[r];
        switch (row->kind) {
        case ROW_ALWAYS:
            call->flags |= row->flag;
            break;
        case ROW_BOOL:
            if (*FIELD_PTR(s, row, gboolean))
                call->flags |= row->flag;
            break;
        case ROW_STRING: {
            const char *v = *FIELD_PTR(s, row, const char *);
            if (v)
                add_string(call, row->param, v);
            break;
        }
        case ROW_STRV: {
            const char *const *v = *FIELD_PTR(s, row, const char *const *);
            if (v && v[0]) {
                call->flags |= row->flag;
                for (gsize i = 0; v[i]; i++)
                    add_string(call, row->param, v[i]);
            }
            break;
        }
        case ROW_PARALLEL:
            if (s->parallel) {
                call->flags |= row->flag;
                VmigVirtParam p = {.name = row->param,
                                   .type = VMIG_VIRT_PARAM_INT,
                                   .i = s->parallel_connections
                                            ? (gint)s->parallel_connections
                                            : VMIG_VIRT_PARALLEL_CONNECTIONS_DEFAULT};
                g_array_append_val(call->params, p);
            }
            break;
        case ROW_BANDWIDTH: {
            /* 0 would mean "no limit given" to some layers and QEMU's default to
             * others; send the hypervisor maximum explicitly (B21). */
            guint64 v = *FIELD_PTR(s, row, guint64);
            call->bandwidth_unlimited = v == 0;
            VmigVirtParam p = {.name = row->param,
                               .type = VMIG_VIRT_PARAM_ULLONG,
                               .ul = v ? v : VMIG_VIRT_BANDWIDTH_UNLIMITED};
            g_array_append_val(call->params, p);
            break;
        }
        case ROW_ULLONG: {
            guint64 v = *FIELD_PTR(s, row, guint64);
            if (v) {
                VmigVirtParam p = {.name = row->param, .type = VMIG_VIRT_PARAM_ULLONG, .ul = v};
                g_array_append_val(call->params, p);
            }
            break;
        }
        }
    }
    return g_steal_pointer(&call);
}

void
vmig_virt_migrate_call_free(VmigVirtMigrateCall *call)
{
    if (!call)
        return;
    if (call->params)
        g_array_unref(call->params);
    g_free(call->dconnuri);
    g_free(call);
}

const VmigVirtParam *
vmig_virt_migrate_call_find(const VmigVirtMigrateCall *call, const char *name)
{
    for (guint i = 0; i < call->params->len; i++) {
        const VmigVirtParam *p = &g_array_index(call->params, VmigVirtParam, i);
        if (g_strcmp0(p->name, name) == 0)
            return p;
    }
    return NULL;
}

char *
vmig_virt_migrate_call_describe(const VmigVirtMigrateCall *call)
{
    GString *out = g_string_new(NULL);
    g_string_append_printf(out, "flags=0x%" G_GINT64_MODIFIER "x(", call->flags);
    gboolean first = TRUE;
    for (gsize i = 0; i < G_N_ELEMENTS(flag_names); i++) {
        if (call->flags & flag_names[i].flag) {
            g_string_append_printf(out, "%s%s", first ? "" : "|", flag_names[i].name);
            first = FALSE;
        }
    }
    g_string_append_printf(out, ") dconnuri=%s", call->dconnuri);
    for (guint i = 0; i < call->params->len; i++) {
        const VmigVirtParam *p = &g_array_index(call->params, VmigVirtParam, i);
        if (g_strcmp0(p->name, VIR_MIGRATE_PARAM_DEST_XML) == 0)
            g_string_append_printf(out, " %s=<%zu bytes>", p->name, strlen(p->s));
        else if (g_strcmp0(p->name, VIR_MIGRATE_PARAM_BANDWIDTH) == 0 && call->bandwidth_unlimited)
            g_string_append_printf(out, " %s=unlimited", p->name);
        else if (p->type == VMIG_VIRT_PARAM_STRING)
            g_string_append_printf(out, " %s=%s", p->name, p->s);
        else if (p->type == VMIG_VIRT_PARAM_INT)
            g_string_append_printf(out, " %s=%d", p->name, p->i);
        else
            g_string_append_printf(out, " %s=%" G_GUINT64_FORMAT, p->name, p->ul);
    }
    return g_string_free(out, FALSE);
}
