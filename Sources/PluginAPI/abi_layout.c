/* Compile-time guard of the ABI 1.0 layout on LP64 targets. The runtime golden
 * test (Tests/PluginAPITests) prints and compares the same figures. */
#include "kubeshark_plugin.h"

#if defined(__LP64__)
_Static_assert(sizeof(ks_endpoint) == 24, "ks_endpoint layout changed");
_Static_assert(sizeof(ks_flow_info) == 72, "ks_flow_info layout changed");
_Static_assert(sizeof(ks_chunk) == 48, "ks_chunk layout changed");
_Static_assert(sizeof(ks_parse_result) == 16, "ks_parse_result layout changed");
_Static_assert(sizeof(ks_probe_result) == 20, "ks_probe_result layout changed");
_Static_assert(sizeof(ks_entry_info) == 96, "ks_entry_info layout changed");
_Static_assert(sizeof(ks_protocol) == 72, "ks_protocol layout changed");
#endif

/* SwiftPM needs a source file in a C target. */
int ks_plugin_api_abi_major(void) { return KS_ABI_MAJOR; }
int ks_plugin_api_abi_minor(void) { return KS_ABI_MINOR; }
