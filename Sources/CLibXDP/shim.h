#include <xdp/xsk.h>
#include <xdp/libxdp.h>
