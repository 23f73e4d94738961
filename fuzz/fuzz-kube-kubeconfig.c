/* fuzz-kube-kubeconfig.c - the kubeconfig parser on arbitrary YAML. */
#include <stddef.h>
#include <stdint.h>

#include "vmig/kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *err = NULL;
    VmigKubeConfig *c =
        vmig_kube_config_parse_kubeconfig((const char *)data, size, "/base", NULL, &err);
    if (c)
        vmig_kube_config_free(c);
    g_clear_error(&err);
    return 0;
}
