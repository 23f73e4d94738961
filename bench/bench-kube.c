/* bench-kube.c - figures for the kube client (docs/kube.md):
 *   1. watch decode rate: realistic VMI-sized MODIFIED events through the stream decoder
 *      (16 KiB reads), side by side with json-glib parsing the same events pre-split (the
 *      floor: what the JSON parser alone costs), in events/s on one core;
 *   2. memory: RSS of this process while two informers hold 1,000 VMIs and 1,000 VMIMs
 *      listed from a fake API server running in a child process (so its memory is not
 *      counted).
 * Usage: bench-kube [EVENTS]   (default 20000). Build with --buildtype=release. */
#include <libsoup/soup.h>
#include <malloc.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmig/kube.h"

/* A VirtualMachineInstance as virt-controller/virt-handler leave it: labels, annotations,
 * owner reference, finalizers, domain spec with disks and interfaces, status with
 * conditions, interfaces, volume status, guest OS info, migration state. */
static char *
vmi_json(guint i, guint rv)
{
    return g_strdup_printf(
        "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachineInstance\",\"metadata\":{"
        "\"annotations\":{\"kubevirt.io/latest-observed-api-version\":\"v1\","
        "\"kubevirt.io/storage-observed-api-version\":\"v1\",\"kubevirt.io/vm-generation\":\"3\"},"
        "\"creationTimestamp\":\"2026-11-29T10:00:00Z\",\"finalizers\":[\"kubevirt.io/"
        "virtualMachineControllerFinalize\",\"foregroundDeleteVirtualMachine\"],\"generation\":"
        "12,\"labels\":{\"kubevirt.io/nodeName\":\"node-%u\",\"kubevirt.io/domain\":\"vm-%u\","
        "\"kubevirt.io/size\":\"small\",\"app\":\"web\",\"tier\":\"frontend\"},\"name\":\"vm-%u\","
        "\"namespace\":\"tenant-%u\",\"ownerReferences\":[{\"apiVersion\":\"kubevirt.io/v1\","
        "\"blockOwnerDeletion\":true,\"controller\":true,\"kind\":\"VirtualMachine\",\"name\":"
        "\"vm-%u\",\"uid\":\"6f1c2a9e-3b4d-4c5e-8f90-%012u\"}],\"resourceVersion\":\"%u\","
        "\"uid\":\"0a1b2c3d-4e5f-4061-8273-%012u\"},\"spec\":{\"architecture\":\"amd64\","
        "\"domain\":{\"cpu\":{\"cores\":2,\"model\":\"host-model\",\"sockets\":1,\"threads\":1},"
        "\"devices\":{\"disks\":[{\"disk\":{\"bus\":\"virtio\"},\"name\":\"rootdisk\"},{\"disk\":"
        "{\"bus\":\"virtio\"},\"name\":\"cloudinitdisk\"},{\"disk\":{\"bus\":\"virtio\"},\"name\":"
        "\"datadisk\",\"serial\":\"D%u\"}],\"interfaces\":[{\"macAddress\":\"02:00:00:%02x:%02x:"
        "01\",\"masquerade\":{},\"name\":\"default\"}],\"rng\":{}},\"features\":{\"acpi\":{"
        "\"enabled\":true},\"smm\":{\"enabled\":true}},\"firmware\":{\"bootloader\":{\"efi\":{"
        "\"secureBoot\":false}},\"uuid\":\"3e5a7c9b-1d2f-4a6b-8c0d-%012u\"},\"machine\":{"
        "\"type\":\"q35\"},\"memory\":{\"guest\":\"2Gi\"},\"resources\":{\"requests\":{"
        "\"memory\":\"2Gi\"}}},\"evictionStrategy\":\"LiveMigrate\",\"networks\":[{\"name\":"
        "\"default\",\"pod\":{}}],\"terminationGracePeriodSeconds\":180,\"volumes\":[{"
        "\"dataVolume\":{\"name\":\"vm-%u-root\"},\"name\":\"rootdisk\"},{\"cloudInitNoCloud\":{"
        "\"userData\":\"#cloud-config\\nuser: fedora\\npassword: changeme\\nchpasswd: { expire: "
        "False }\\n\"},\"name\":\"cloudinitdisk\"},{\"name\":\"datadisk\","
        "\"persistentVolumeClaim\":{\"claimName\":\"vm-%u-data\"}}]},\"status\":{"
        "\"activePods\":{\"5d6e7f80-91a2-4b3c-8d4e-%012u\":\"node-%u\"},\"conditions\":[{"
        "\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-29T10:00:20Z\",\"status\":"
        "\"True\",\"type\":\"Ready\"},{\"lastProbeTime\":null,\"lastTransitionTime\":null,"
        "\"status\":\"True\",\"type\":\"LiveMigratable\"},{\"lastProbeTime\":\"2026-11-29T10:01:"
        "00Z\",\"lastTransitionTime\":null,\"status\":\"True\",\"type\":\"AgentConnected\"}],"
        "\"currentCPUTopology\":{\"cores\":2,\"sockets\":1,\"threads\":1},\"guestOSInfo\":{"
        "\"id\":\"fedora\",\"kernelRelease\":\"6.5.6-300.fc39.x86_64\",\"kernelVersion\":\"#1 "
        "SMP PREEMPT_DYNAMIC\",\"name\":\"Fedora Linux\",\"prettyName\":\"Fedora Linux 39 (Cloud "
        "Edition)\",\"version\":\"39 (Cloud Edition)\",\"versionId\":\"39\"},\"interfaces\":[{"
        "\"infoSource\":\"domain, guest-agent\",\"interfaceName\":\"eth0\",\"ipAddress\":"
        "\"10.244.%u.%u\",\"ipAddresses\":[\"10.244.%u.%u\",\"fd10:244::%x\"],\"mac\":\"02:00:"
        "00:%02x:%02x:01\",\"name\":\"default\",\"queueCount\":1}],"
        "\"launcherContainerImageVersion\":"
        "\"quay.io/kubevirt/virt-launcher:v1.3.0\",\"machine\":{\"type\":\"pc-q35-rhel9.4.0\"},"
        "\"migrationMethod\":\"BlockMigration\",\"migrationState\":{\"completed\":true,"
        "\"endTimestamp\":\"2026-11-29T10:30:00Z\",\"migrationUid\":\"7e8f9a0b-1c2d-4e3f-a4b5-"
        "%012u\",\"mode\":\"PreCopy\",\"sourceNode\":\"node-%u\",\"startTimestamp\":\"2026-11-29T"
        "10:29:40Z\",\"targetNode\":\"node-%u\",\"targetNodeAddress\":\"10.0.0.%u\","
        "\"targetPod\":\"virt-launcher-vm-%u-x7k2p\"},\"migrationTransport\":\"Unix\",\"nodeName\":"
        "\"node-%u\",\"phase\":\"Running\",\"phaseTransitionTimestamps\":[{\"phase\":\"Pending\","
        "\"phaseTransitionTimestamp\":\"2026-11-29T10:00:00Z\"},{\"phase\":\"Scheduling\","
        "\"phaseTransitionTimestamp\":\"2026-11-29T10:00:01Z\"},{\"phase\":\"Scheduled\","
        "\"phaseTransitionTimestamp\":\"2026-11-29T10:00:12Z\"},{\"phase\":\"Running\","
        "\"phaseTransitionTimestamp\":\"2026-11-29T10:00:15Z\"}],\"qosClass\":\"Burstable\","
        "\"runStrategy\":\"Always\",\"selinuxContext\":\"none\",\"virtualMachineRevisionName\":"
        "\"revision-start-vm-%u-3\",\"volumeStatus\":[{\"name\":\"cloudinitdisk\",\"size\":"
        "1048576,\"target\":\"vdb\"},{\"name\":\"datadisk\",\"persistentVolumeClaimInfo\":{"
        "\"accessModes\":[\"ReadWriteMany\"],\"capacity\":{\"storage\":\"10Gi\"},"
        "\"filesystemOverhead\":\"0.055\",\"requests\":{\"storage\":\"10Gi\"},\"volumeMode\":"
        "\"Block\"},\"target\":\"vdc\"},{\"name\":\"rootdisk\",\"persistentVolumeClaimInfo\":{"
        "\"accessModes\":[\"ReadWriteMany\"],\"capacity\":{\"storage\":\"30Gi\"},"
        "\"filesystemOverhead\":\"0.055\",\"requests\":{\"storage\":\"30Gi\"},\"volumeMode\":"
        "\"Block\"},\"target\":\"vda\"}]}}",
        i % 50, i, i, i % 20, i, i, rv, i, i, (i >> 8) & 0xff, i & 0xff, i, i, i, i, i % 50,
        (i >> 8) & 0xff, i & 0xff, (i >> 8) & 0xff, i & 0xff, i, (i >> 8) & 0xff, i & 0xff, i,
        (i + 1) % 50, i % 50, i % 250, i, i % 50, i);
}

static char *
vmim_json(guint i, guint rv)
{
    return g_strdup_printf(
        "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachineInstanceMigration\","
        "\"metadata\":{\"annotations\":{\"kubevirt.io/latest-observed-api-version\":\"v1\","
        "\"kubevirt.io/storage-observed-api-version\":\"v1\"},\"creationTimestamp\":"
        "\"2026-11-29T10:29:30Z\",\"finalizers\":[\"kubevirt.io/migrationJobFinalize\"],"
        "\"generation\":1,\"labels\":{\"kubevirt.io/vmi-name\":\"vm-%u\"},\"name\":\"mig-%u\","
        "\"namespace\":\"tenant-%u\",\"resourceVersion\":\"%u\",\"uid\":\"7e8f9a0b-1c2d-4e3f-"
        "a4b5-%012u\"},\"spec\":{\"vmiName\":\"vm-%u\"},\"status\":{\"migrationState\":{"
        "\"completed\":true,\"endTimestamp\":\"2026-11-29T10:30:00Z\",\"migrationUid\":"
        "\"7e8f9a0b-1c2d-4e3f-a4b5-%012u\",\"mode\":\"PreCopy\",\"sourceNode\":\"node-%u\","
        "\"startTimestamp\":\"2026-11-29T10:29:40Z\",\"targetNode\":\"node-%u\","
        "\"targetNodeAddress\":\"10.0.0.%u\",\"targetPod\":\"virt-launcher-vm-%u-x7k2p\"},"
        "\"phase\":\"Succeeded\",\"phaseTransitionTimestamps\":[{\"phase\":\"Pending\","
        "\"phaseTransitionTimestamp\":\"2026-11-29T10:29:30Z\"},{\"phase\":\"Scheduling\","
        "\"phaseTransitionTimestamp\":\"2026-11-29T10:29:31Z\"},{\"phase\":\"Scheduled\","
        "\"phaseTransitionTimestamp\":\"2026-11-29T10:29:33Z\"},{\"phase\":\"PreparingTarget\","
        "\"phaseTransitionTimestamp\":\"2026-11-29T10:29:34Z\"},{\"phase\":\"TargetReady\","
        "\"phaseTransitionTimestamp\":\"2026-11-29T10:29:38Z\"},{\"phase\":\"Running\","
        "\"phaseTransitionTimestamp\":\"2026-11-29T10:29:40Z\"},{\"phase\":\"Succeeded\","
        "\"phaseTransitionTimestamp\":\"2026-11-29T10:30:00Z\"}]}}",
        i, i, i % 20, rv, i, i, i, i % 50, (i + 1) % 50, i % 250, i);
}

static gboolean
on_event(VmigKubeEventType type, JsonNode *object, gpointer user_data)
{
    if (vmig_kube_meta_string(object, "resourceVersion"))
        (*(guint *)user_data)++;
    return TRUE;
}

static gboolean
on_raw(const VmigKubeRawEvent *ev, gpointer user_data)
{
    if (ev->resource_version)
        (*(guint *)user_data)++;
    return TRUE;
}

static double
now_s(void)
{
    return (double)g_get_monotonic_time() / 1e6;
}

static void
bench_decode(guint events)
{
    GString *stream = g_string_new(NULL);
    GPtrArray *split = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < 64; i++) {
        g_autofree char *obj = vmi_json(i, 1000 + i);
        char *ev = g_strdup_printf("{\"type\":\"MODIFIED\",\"object\":%s}\n", obj);
        g_ptr_array_add(split, ev);
    }
    gsize ev_bytes = strlen(split->pdata[0]);
    for (guint i = 0; i < events; i++)
        g_string_append(stream, split->pdata[i % 64]);

    /* best of 3 for each: the machine is shared, the best run is the least disturbed */
    double t_dec = 1e9, t_raw = 1e9, t_json = 1e9;
    guint n = 0, r = 0, m = 0;
    for (int rep = 0; rep < 3; rep++) {
        /* decoder, 16 KiB reads (what curl hands over), json-glib trees */
        VmigKubeDecoder *d = vmig_kube_decoder_new(0);
        n = 0;
        double t0 = now_s();
        for (gsize pos = 0; pos < stream->len; pos += 16384)
            vmig_kube_decoder_feed(d, stream->str + pos, MIN(16384, stream->len - pos), on_event,
                                   &n, NULL);
        t_dec = MIN(t_dec, now_s() - t0);
        vmig_kube_decoder_free(d);

        /* raw path: validated framing + metadata, no tree (what the informer does) */
        d = vmig_kube_decoder_new(0);
        r = 0;
        t0 = now_s();
        for (gsize pos = 0; pos < stream->len; pos += 16384)
            vmig_kube_decoder_feed_raw(d, stream->str + pos, MIN(16384, stream->len - pos), on_raw,
                                       &r, NULL);
        t_raw = MIN(t_raw, now_s() - t0);
        vmig_kube_decoder_free(d);

        /* peer: json-glib's JsonParser alone on pre-split events */
        JsonParser *p = json_parser_new();
        m = 0;
        t0 = now_s();
        for (guint i = 0; i < events; i++)
            if (json_parser_load_from_data(p, split->pdata[i % 64], -1, NULL))
                m++;
        t_json = MIN(t_json, now_s() - t0);
        g_object_unref(p);
    }

    printf("watch decode (%u MODIFIED events of a VMI, %zu bytes each, one core, best of 3)\n",
           events, ev_bytes);
    printf("  %-34s %12s %10s\n", "", "events/s", "MiB/s");
    printf("  %-34s %12.0f %10.1f\n", "decoder_feed_raw (informer path)", r / t_raw,
           stream->len / t_raw / 1048576.0);
    printf("  %-34s %12.0f %10.1f\n", "decoder_feed (json-glib tree)", n / t_dec,
           stream->len / t_dec / 1048576.0);
    printf("  %-34s %12.0f %10.1f\n", "peer: json_parser_load_from_data", m / t_json,
           stream->len / t_json / 1048576.0);
    printf("  target: >= 50000 events/s\n\n");
    g_string_free(stream, TRUE);
    g_ptr_array_unref(split);
}

/* ---- RSS with 1,000 VMIs + 1,000 VMIMs in informers ---------------------------------------- */

#define N_OBJECTS 1000
static char *vmi_items[N_OBJECTS], *vmim_items[N_OBJECTS];
static char *watch_stream;
static guint watch_events;
static gboolean vmi_watch_sent;

static void
serve(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
      gpointer user_data)
{
    gboolean vmim = strstr(path, "migrations") != NULL;
    if (query && g_hash_table_lookup(query, "watch")) {
        soup_server_message_set_status(msg, 200, NULL);
        if (!vmim && !vmi_watch_sent) {
            /* the event burst for the apply-rate figure, then a clean close */
            vmi_watch_sent = TRUE;
            soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_STATIC,
                                             watch_stream, strlen(watch_stream));
            return;
        }
        /* stay open and silent: the informer just holds its cache */
        soup_message_headers_set_encoding(soup_server_message_get_response_headers(msg),
                                          SOUP_ENCODING_CHUNKED);
        return;
    }
    /* pages as kube-apiserver gives them: limit + continue (an index here) */
    const char *limit_s = query ? g_hash_table_lookup(query, "limit") : NULL;
    const char *cont_s = query ? g_hash_table_lookup(query, "continue") : NULL;
    guint limit = limit_s ? (guint)atoi(limit_s) : N_OBJECTS;
    guint from = cont_s ? (guint)atoi(cont_s) : 0;
    guint to = MIN(from + (limit ? limit : N_OBJECTS), N_OBJECTS);
    GString *g = g_string_new(NULL);
    g_string_append_printf(g, "{\"kind\":\"%sList\",\"metadata\":{\"resourceVersion\":\"5000\"",
                           vmim ? "VirtualMachineInstanceMigration" : "VirtualMachineInstance");
    if (to < N_OBJECTS)
        g_string_append_printf(g, ",\"continue\":\"%u\"", to);
    g_string_append(g, "},\"items\":[");
    for (guint i = from; i < to; i++)
        g_string_append_printf(g, "%s%s", i > from ? "," : "", vmim ? vmim_items[i] : vmi_items[i]);
    g_string_append(g, "]}");
    soup_server_message_set_status(msg, 200, NULL);
    gsize len = g->len;
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE,
                                     g_string_free(g, FALSE), len);
}

static long
rss_kib(void)
{
    g_autofree char *status = NULL;
    if (!g_file_get_contents("/proc/self/status", &status, NULL, NULL))
        return -1;
    const char *p = strstr(status, "VmRSS:");
    return p ? strtol(p + 6, NULL, 10) : -1;
}

static void
synced(VmigKubeInformer *inf, gpointer user_data)
{
    (*(guint *)user_data)++;
}

static void
bench_rss(guint events)
{
    watch_events = events;
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return;
    pid_t child = fork();
    if (child == 0) {
        close(pipefd[0]);
        for (guint i = 0; i < N_OBJECTS; i++) {
            vmi_items[i] = vmi_json(i, 100 + i);
            vmim_items[i] = vmim_json(i, 2000 + i);
        }
        GString *ws = g_string_new(NULL);
        for (guint i = 0; i < watch_events; i++) {
            g_autofree char *o = vmi_json(i % N_OBJECTS, 6000 + i);
            g_string_append_printf(ws, "{\"type\":\"MODIFIED\",\"object\":%s}\n", o);
        }
        watch_stream = g_string_free(ws, FALSE);
        SoupServer *server = soup_server_new(NULL, NULL);
        soup_server_add_handler(server, NULL, serve, NULL, NULL);
        soup_server_listen_local(server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, NULL);
        GSList *uris = soup_server_get_uris(server);
        int port = g_uri_get_port(uris->data);
        if (write(pipefd[1], &port, sizeof port) != sizeof port)
            _exit(1);
        close(pipefd[1]);
        GMainLoop *loop = g_main_loop_new(NULL, FALSE);
        g_main_loop_run(loop);
        _exit(0);
    }
    close(pipefd[1]);
    int port = 0;
    if (read(pipefd[0], &port, sizeof port) != sizeof port) {
        fprintf(stderr, "bench: fake server did not start\n");
        return;
    }
    close(pipefd[0]);

    long before = rss_kib();
    size_t inuse_before = mallinfo2().uordblks;
    g_autofree char *url = g_strdup_printf("http://127.0.0.1:%d", port);
    VmigKubeConfig cfg = {.server = url};
    VmigKubeClient *c = vmig_kube_client_new(&cfg, NULL);
    guint n_synced = 0;
    VmigKubeInformerHandlers h = {.synced = synced};
    VmigKubeInformer *vmis =
        vmig_kube_informer_new(c, vmig_kube_resource(VMIG_KUBE_VMI), NULL, &h, &n_synced);
    VmigKubeInformer *vmims =
        vmig_kube_informer_new(c, vmig_kube_resource(VMIG_KUBE_VMIM), NULL, &h, &n_synced);
    double t0 = now_s();
    vmig_kube_informer_start(vmis);
    vmig_kube_informer_start(vmims);
    while (n_synced < 2 && now_s() - t0 < 60)
        g_main_context_iteration(NULL, TRUE);
    double t_sync = now_s() - t0;
    /* the watch burst: until the informer's RV is the last event's */
    g_autofree char *last_rv = g_strdup_printf("%u", 6000 + watch_events - 1);
    double t1 = now_s();
    while (g_strcmp0(vmig_kube_informer_resource_version(vmis), last_rv) != 0 && now_s() - t1 < 120)
        g_main_context_iteration(NULL, TRUE);
    double t_apply = now_s() - t1;
    long peak = rss_kib();
    malloc_trim(0); /* give back the list pages' transient garbage, as a long run would */
    long after = rss_kib();
    g_autoptr(JsonNode) vm1 = vmig_kube_informer_get(vmis, "tenant-1", "vm-1");
    g_autofree char *sample = json_to_string(vm1, FALSE);
    printf("informer memory (1,000 VMIs + 1,000 VMIMs, VMI %zu bytes as JSON; server in a "
           "child process)\n",
           strlen(sample));
    printf("  %-34s %10s\n", "", "RSS MiB");
    printf("  %-34s %10.1f\n", "process before the informers", before / 1024.0);
    printf("  %-34s %10.1f\n", "after sync (peak, list in flight)", peak / 1024.0);
    printf("  %-34s %10.1f\n", "after sync, malloc_trim", after / 1024.0);
    struct mallinfo2 mi = mallinfo2();
    printf("  (malloc in use %.1f MiB, of which the informers %.1f MiB; free in heap %.1f MiB, "
           "mmapped %.1f MiB)\n",
           mi.uordblks / 1048576.0, (double)(mi.uordblks - inuse_before) / 1048576.0,
           mi.fordblks / 1048576.0, mi.hblkhd / 1048576.0);
    printf("  cached: %u VMIs, %u VMIMs; both synced in %.2f s\n", vmig_kube_informer_size(vmis),
           vmig_kube_informer_size(vmims), t_sync);
    printf("  target: <= 16 MiB for the whole process\n\n");
    printf("informer apply rate (VMI MODIFIED events over loopback HTTP: curl + decode + "
           "cache)\n");
    printf("  %u events in %.2f s = %.0f events/s\n", watch_events, t_apply,
           watch_events / t_apply);
    vmig_kube_informer_free(vmis);
    vmig_kube_informer_free(vmims);
    vmig_kube_client_unref(c);
    kill(child, SIGTERM);
    waitpid(child, NULL, 0);
}

int
main(int argc, char **argv)
{
    /* GLib 2.74's slice allocator never returns freed JsonNodes to malloc; vmigrated runs
     * with the system allocator (see docs/kube.md). GLib reads G_SLICE in the libraries'
     * constructors, before main: start again with it set, as vmigrated does. */
    if (!getenv("G_SLICE")) {
        setenv("G_SLICE", "always-malloc", 1);
        execv("/proc/self/exe", argv);
    }
    guint events = argc > 1 ? (guint)atoi(argv[1]) : 20000;
    bench_rss(events); /* first, so the decode run's heap does not count */
    printf("\n");
    bench_decode(events);
    return 0;
}
